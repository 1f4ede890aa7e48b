"""Request and response bodies of the inspections API."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from qc_svc.inspections.rules import Decision, Result, Severity, Status
from servicekit.bounds import INT4_MAX
from servicekit.pagination import CursorPage

CODE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$"
MAX_NOTE = 2000
MAX_REASON = 2000
MAX_DESCRIPTION = 4000

_VERSION = Field(
    default=None,
    ge=1,
    le=INT4_MAX,
    description='the row_version you read; or send `If-Match: "<row_version>"` instead',
    examples=[1],
)
_CLIENT_EVENT_ID = Field(
    default=None,
    description=(
        "your id for this command: sending it again replays the first answer; required unless "
        "an `Idempotency-Key` header carries it"
    ),
    examples=["7d0c7c86-3d5e-4a4f-9b7c-2a9f1d7c3e11"],
)


class ClaimRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "expected_row_version": 1,
                    "client_event_id": "7d0c7c86-3d5e-4a4f-9b7c-2a9f1d7c3e11",
                }
            ]
        },
    )

    expected_row_version: int | None = _VERSION
    client_event_id: uuid.UUID | None = _CLIENT_EVENT_ID


class ResultIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: str = Field(min_length=1, max_length=64, examples=["WELD-01"])
    result: Result = Field(description="pass, fail or na (not applicable)")
    note: str | None = Field(default=None, max_length=MAX_NOTE)


class ResultsRequest(BaseModel):
    """Answers for some checklist items; items not named keep their current answer."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "results": [
                        {"code": "WELD-01", "result": "pass"},
                        {"code": "WELD-02", "result": "fail", "note": "porosity at joint 3"},
                    ],
                    "expected_row_version": 2,
                    "client_event_id": "0b6a8f2e-6f0e-4a53-8d8e-0f5d9c2b7a10",
                }
            ]
        },
    )

    results: list[ResultIn] = Field(min_length=1, max_length=500)
    expected_row_version: int | None = _VERSION
    client_event_id: uuid.UUID | None = _CLIENT_EVENT_ID


class DefectCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "code": "POROSITY",
                    "severity": "major",
                    "description": "Porosity along the seam at joint 3",
                    "expected_row_version": 3,
                    "client_event_id": "5f1e3b9a-2c4d-4e6f-8a0b-1c2d3e4f5a6b",
                }
            ]
        },
    )

    code: str = Field(min_length=1, max_length=64, pattern=CODE_PATTERN, examples=["POROSITY"])
    severity: Severity = Field(examples=["major"])
    description: str = Field(min_length=1, max_length=MAX_DESCRIPTION)
    expected_row_version: int | None = _VERSION
    client_event_id: uuid.UUID | None = _CLIENT_EVENT_ID


class DecisionRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "decision": "reject",
                    "reason": "Seam porosity; reweld joint 3",
                    "expected_row_version": 4,
                    "client_event_id": "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d",
                },
                {
                    "decision": "accept",
                    "expected_row_version": 4,
                    "client_event_id": "1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d",
                },
            ]
        },
    )

    decision: Decision
    reason: str | None = Field(default=None, max_length=MAX_REASON)
    rework_from_task_id: uuid.UUID | None = Field(
        default=None,
        description=(
            "reject only: an upstream task of the same deliverable whose work caused the defect; "
            "it is reopened and the tasks between are re-blocked"
        ),
    )
    expected_row_version: int | None = _VERSION
    client_event_id: uuid.UUID | None = _CLIENT_EVENT_ID


class OutcomeErrorRead(BaseModel):
    """Why task-svc refused the decision."""

    code: str = Field(examples=["REWORK_TASK_NOT_UPSTREAM"])
    detail: str


class RefusalRead(BaseModel):
    """A decision task-svc refused; the inspection went back to its inspector."""

    decision: Decision = Field(description="the refused decision")
    reason: str | None
    rework_from_task_id: uuid.UUID | None
    decided_at: datetime
    code: str = Field(examples=["REWORK_TASK_NOT_UPSTREAM"])
    detail: str
    refused_at: datetime = Field(description="when task-svc refused it")
    reopened_at: datetime = Field(description="when the inspection went back to the inspector")


class ChecklistItemRead(BaseModel):
    code: str
    text: str
    required: bool
    result: Result | None
    note: str | None


class DefectRead(BaseModel):
    id: uuid.UUID
    code: str
    severity: Severity
    description: str
    created_by: uuid.UUID
    created_at: datetime


class InspectionRead(BaseModel):
    id: uuid.UUID
    org_id: uuid.UUID
    project_id: uuid.UUID
    deliverable_id: uuid.UUID
    task_id: uuid.UUID
    task_title: str
    node_key: str
    template_id: uuid.UUID | None
    template_version: int | None
    assignee_id: uuid.UUID | None
    round: int
    status: Status
    inspector_id: uuid.UUID | None
    claimed_at: datetime | None
    checklist: list[ChecklistItemRead]
    defects: list[DefectRead]
    decision: Decision | None
    reason: str | None
    rework_from_task_id: uuid.UUID | None
    decided_at: datetime | None
    outcome: Literal["applied", "refused"] | None = Field(
        description=(
            "`refused` while the inspection is back with its inspector because task-svc refused "
            "the last decision; null again once the inspector decides anew"
        )
    )
    outcome_error: OutcomeErrorRead | None = Field(
        description="why the last decision was refused (code, detail)"
    )
    outcome_at: datetime | None = Field(description="when the last decision was refused")
    refusals: list[RefusalRead] = Field(
        description="every decision of this inspection task-svc refused, oldest first"
    )
    allowed_actions: list[str] = Field(description="commands the inspection's status allows now")
    row_version: int
    created_at: datetime
    updated_at: datetime


class InspectionPage(CursorPage[InspectionRead]):
    """A page of inspections, oldest first; `next_cursor` is null on the last page."""
