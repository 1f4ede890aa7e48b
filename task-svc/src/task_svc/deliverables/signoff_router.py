"""`POST /api/v1/deliverables/{id}/signoff`: an approver's decision on a deliverable."""

from __future__ import annotations

import uuid
from typing import Any, Literal

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.ext.asyncio import AsyncSession

from servicekit.auth import Principal, require_roles
from servicekit.bounds import INT4_MAX
from servicekit.db import unit_of_work
from task_svc.deliverables import signoff as service
from task_svc.tasks.transitions import Caller

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
    expected_row_version: int = Field(ge=1, le=INT4_MAX)


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
)
async def post_signoff(
    deliverable_id: uuid.UUID,
    body: SignoffRequest,
    principal: Principal = Depends(require_roles("approver")),
    session: AsyncSession = unit_of_work(),
) -> dict[str, Any]:
    return await service.sign_off(
        session,
        org_id=principal.org,
        deliverable_id=deliverable_id,
        decision=body.decision,
        comment=body.comment,
        reopen_task_ids=body.reopen_task_ids,
        expected_row_version=body.expected_row_version,
        caller=Caller(actor=principal.sub, roles=principal.roles, user_id=principal.user_id),
    )
