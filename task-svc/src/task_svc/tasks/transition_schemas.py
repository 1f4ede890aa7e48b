"""Request and response schemas of the transition API, derived from the FSM table.

The request is a discriminated union on `action`: one schema per user action, each with its
payload's fields and a worked example taken from the table, so Swagger UI is a usable manual.
"""

from __future__ import annotations

import functools
import operator
import uuid
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, create_model

from servicekit.bounds import INT4_MAX
from task_svc.tasks.bulk import MAX_BULK
from task_svc.tasks.fsm import MAX_TEXT, TRANSITIONS, USER_ACTIONS, Action, PayloadField

_Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_TEXT)]
_KINDS: dict[str, Any] = {"uuid": uuid.UUID, "text": _Text, "list": list[dict[str, Any]]}

EXAMPLE_ROW_VERSION = 3


def _field(f: PayloadField) -> tuple[Any, Any]:
    kind = _KINDS[f.kind]
    if f.required:
        return kind, Field(description=f.description)
    return kind | None, Field(default=None, description=f.description)


def _camel(action: str) -> str:
    return "".join(part.capitalize() for part in action.split("_"))


def _payload_model(action: Action) -> type[BaseModel]:
    t = TRANSITIONS[action]
    fields = {f.name: _field(f) for f in t.payload}
    return create_model(  # type: ignore[call-overload]
        f"{_camel(action)}Payload",
        __config__=ConfigDict(extra="forbid"),
        __doc__=f"Payload of '{action}'." + ("" if t.payload else " Empty: send {} or omit it."),
        **fields,
    )


def _request_model(action: Action) -> type[BaseModel]:
    t = TRANSITIONS[action]
    payload_model = _payload_model(action)
    action_type: Any = Literal[str(action)]
    example: dict[str, Any] = {
        "action": str(action),
        "payload": dict(t.example),
        "expected_row_version": EXAMPLE_ROW_VERSION,
    }
    payload_default: Any = (
        Field(description="the action's payload")
        if t.payload and any(f.required for f in t.payload)
        else Field(default_factory=payload_model, description="the action's payload")
    )
    return create_model(
        f"{_camel(action)}Transition",
        __config__=ConfigDict(extra="forbid", json_schema_extra={"examples": [example]}),
        __doc__=t.summary,
        action=(action_type, Field(description="the action to apply")),
        payload=(payload_model, payload_default),
        expected_row_version=(
            int | None,
            Field(
                default=None,
                ge=1,
                le=INT4_MAX,
                description='the row_version you last read (or send If-Match: "<row_version>")',
            ),
        ),
        client_event_id=(
            str | None,
            Field(
                default=None,
                min_length=1,
                max_length=200,
                description="your id of this request; sending it again replays the first answer",
            ),
        ),
    )


REQUEST_MODELS: dict[Action, type[BaseModel]] = {a: _request_model(a) for a in USER_ACTIONS}

# The union FastAPI validates and documents (built at import time from the table).
TransitionRequest: Any = Annotated[
    functools.reduce(operator.or_, REQUEST_MODELS.values()), Field(discriminator="action")
]


class SystemTransitionPayload(BaseModel):
    """The payload of qc_accept / qc_reject: the same fields the QC decision events carry."""

    model_config = ConfigDict(extra="forbid")

    inspection_id: uuid.UUID
    reason: _Text | None = None
    defects: list[dict[str, Any]] | None = Field(default=None, max_length=200)
    rework_from_task_id: uuid.UUID | None = Field(
        default=None,
        description=(
            "qc_reject only: an upstream task of the same deliverable whose work caused the "
            "defect; it is reopened and the tasks between are re-blocked"
        ),
    )


class SystemTransitionRequest(BaseModel):
    """A system action from another service (qc-svc): qc_accept or qc_reject."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "action": "qc_reject",
                    "payload": {
                        "inspection_id": "3b2a1c0d-4e5f-4a6b-8c7d-9e0f1a2b3c4d",
                        "reason": "weld porosity",
                        "defects": [{"code": "WELD-POR", "severity": "major"}],
                    },
                    "client_event_id": "inspection-3b2a1c0d-decision",
                }
            ]
        },
    )

    action: Literal["qc_accept", "qc_reject"]
    payload: SystemTransitionPayload
    client_event_id: str = Field(min_length=1, max_length=200)


class BulkTransitionItem(BaseModel):
    """One item of a bulk request: like a single transition, plus the task id."""

    model_config = ConfigDict(extra="forbid")

    task_id: uuid.UUID
    action: str = Field(description="a user action, e.g. assign, start, pause")
    payload: dict[str, Any] = Field(default_factory=dict)
    expected_row_version: int = Field(ge=1, le=INT4_MAX)
    client_event_id: str | None = Field(default=None, min_length=1, max_length=200)


class BulkTransitionRequest(BaseModel):
    """Up to 500 transitions, applied in the order given, each in its own transaction."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "items": [
                        {
                            "task_id": "0b7c1a52-6f0e-4d43-9d0c-2f6d6c1b8e11",
                            "action": "assign",
                            "payload": {"assign_to": "7d1f3c8e-2a4b-4c6d-8e9f-0a1b2c3d4e5f"},
                            "expected_row_version": 1,
                            "client_event_id": "bulk-assign-1",
                        }
                    ]
                }
            ]
        },
    )

    items: list[BulkTransitionItem] = Field(min_length=1, max_length=MAX_BULK)


class TaskAfterTransition(BaseModel):
    id: uuid.UUID
    project_id: uuid.UUID
    deliverable_id: uuid.UUID
    node_key: str
    title: str
    status: str
    assigned_to: uuid.UUID | None
    assigned_at: str | None
    started_at: str | None
    completed_at: str | None
    open_blockers: int
    qc_required: bool
    is_milestone: bool
    row_version: int
    updated_at: str | None
    allowed_actions: list[str]


class TransitionResult(BaseModel):
    task_id: uuid.UUID
    action: str
    from_status: str
    to_status: str
    row_version: int
    task: TaskAfterTransition


class BulkItemResult(BaseModel):
    index: int
    task_id: uuid.UUID
    status: int = Field(description="the HTTP status this item would have had on its own")
    replayed: bool
    body: dict[str, Any] = Field(description="a TransitionResult, or a problem+json body")


class BulkTransitionResult(BaseModel):
    results: list[BulkItemResult]


class TaskEventRead(BaseModel):
    id: int
    action: str
    from_status: str | None
    to_status: str
    actor: str
    payload: dict[str, Any]
    client_event_id: str | None
    row_version: int
    request_id: str | None
    trace_id: str | None
    created_at: str


class TaskEventPage(BaseModel):
    items: list[TaskEventRead]
    next_cursor: str | None


__all__ = [
    "REQUEST_MODELS",
    "BulkTransitionRequest",
    "BulkTransitionResult",
    "SystemTransitionRequest",
    "TaskEventPage",
    "TransitionRequest",
    "TransitionResult",
]
