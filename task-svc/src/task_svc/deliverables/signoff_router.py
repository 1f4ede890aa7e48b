"""`POST /api/v1/deliverables/{id}/signoff`: an approver's decision on a deliverable."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.ext.asyncio import AsyncSession

from servicekit.bounds import INT4_MAX
from servicekit.conditional import required_version
from servicekit.db import unit_of_work
from task_svc.deliverables import signoff as service
from task_svc.roles import Approver
from task_svc.tasks.transition_request import Caller

router = APIRouter(tags=["deliverables"])


class SignoffRequest(BaseModel):
    """Approve a deliverable, or reject it naming the tasks to reopen."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"decision": "approved", "comment": "all good", "expected_row_version": 2},
                {
                    "decision": "rejected",
                    "comment": "scratch on the left panel",
                    "reopen_task_ids": ["0b7c1a52-6f0e-4d43-9d0c-2f6d6c1b8e11"],
                    "expected_row_version": 2,
                },
            ]
        },
    )

    decision: Literal["approved", "rejected"]
    comment: str | None = Field(default=None, max_length=2000)
    reopen_task_ids: list[uuid.UUID] = Field(default_factory=list, max_length=500)
    expected_row_version: int | None = Field(
        default=None,
        ge=1,
        le=INT4_MAX,
        description='the row_version you last read (or send If-Match: "<row_version>")',
    )


class SignoffResult(BaseModel):
    deliverable_id: uuid.UUID
    project_id: uuid.UUID
    serial: str
    decision: str
    status: str
    row_version: int
    reopened_task_ids: list[uuid.UUID]
    project_completed: bool


@router.post(
    "/api/v1/deliverables/{deliverable_id}/signoff",
    summary="Sign a deliverable off (or reject it, reopening tasks)",
    response_model=SignoffResult,
    responses={
        400: {
            "description": "IF_MATCH_INVALID (not a quoted row version) or IF_MATCH_MISMATCH "
            "(If-Match and expected_row_version disagree)"
        },
        404: {"description": "DELIVERABLE_NOT_FOUND"},
        409: {
            "description": "the deliverable's state forbids it: VERSION_CONFLICT (a stale "
            "expected_row_version; with current_row_version and current_status) or "
            "DELIVERABLE_NOT_READY (not ready_for_signoff)"
        },
        412: {
            "description": "VERSION_CONFLICT: the If-Match row version is stale (or a weak "
            "tag); with current_row_version and current_status"
        },
        422: {
            "description": "PAYLOAD_INVALID: a rejection without (or with foreign) reopen_task_ids"
        },
        428: {"description": "ROW_VERSION_REQUIRED: neither expected_row_version nor If-Match"},
    },
)
async def post_signoff(
    deliverable_id: uuid.UUID,
    body: SignoffRequest,
    principal: Approver,
    if_match: Annotated[
        str | None,
        Header(
            alias="If-Match",
            description='`"<row_version>"`: an alternative to expected_row_version in the body',
        ),
    ] = None,
    session: AsyncSession = unit_of_work(),
) -> dict[str, Any]:
    expected = required_version(body.expected_row_version, if_match)
    return await service.sign_off(
        session,
        org_id=principal.org,
        deliverable_id=deliverable_id,
        decision=body.decision,
        comment=body.comment,
        reopen_task_ids=body.reopen_task_ids,
        expected=expected,
        caller=Caller(actor=principal.sub, roles=principal.roles, user_id=principal.user_id),
    )
