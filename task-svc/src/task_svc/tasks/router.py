"""Task reads: `GET /api/v1/tasks` and `GET /api/v1/tasks/{id}`."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Response
from sqlalchemy.ext.asyncio import AsyncSession

from servicekit.auth import Principal
from servicekit.conditional import etag
from servicekit.db import unit_of_work
from servicekit.errors import BadRequest
from servicekit.pagination import DEFAULT_LIMIT, Cursor, Limit
from task_svc.roles import CurrentUser
from task_svc.tasks import service
from task_svc.tasks.fsm import Status
from task_svc.tasks.queries import SORTS, TaskFilters
from task_svc.tasks.schemas import TaskPage, TaskRead

router = APIRouter(prefix="/api/v1/tasks", tags=["tasks"])


def _assignee(value: str | None, principal: Principal) -> tuple[uuid.UUID | None, bool]:
    if value is None:
        return None, False
    if value == "me":
        return principal.user_id, False
    if value == "none":
        return None, True
    try:
        return uuid.UUID(value), False
    except ValueError:
        raise BadRequest(
            f"assignee must be a user id, 'me' or 'none', got {value!r}",
            code="ASSIGNEE_INVALID",
            errors=[{"in": "query", "field": "assignee", "message": "a user id, me or none"}],
        ) from None


def _statuses(values: list[str] | None) -> list[str] | None:
    if not values:
        return None
    flat = [s.strip() for v in values for s in v.split(",") if s.strip()]
    unknown = [s for s in flat if s not in frozenset(Status)]
    if unknown:
        raise BadRequest(
            f"unknown status {unknown[0]!r}: use any of {', '.join(Status)}",
            code="STATUS_INVALID",
            errors=[{"in": "query", "field": "status", "message": "unknown status"}],
        )
    return flat


@router.get("", response_model=TaskPage, summary="List tasks (filters, sort, cursor pages)")
async def list_tasks(
    principal: CurrentUser,
    project_id: uuid.UUID | None = None,
    deliverable_id: uuid.UUID | None = None,
    status: Annotated[
        list[str] | None, Query(description="one or more statuses (repeat or comma-separate)")
    ] = None,
    assignee: Annotated[str | None, Query(description="a user id, 'me' or 'none'")] = None,
    kind: Annotated[str | None, Query(max_length=64)] = None,
    milestone: bool | None = None,
    overdue: Annotated[
        bool | None, Query(description="due date passed and not done or cancelled")
    ] = None,
    blocked: Annotated[bool | None, Query(description="has unresolved blockers")] = None,
    text: Annotated[
        str | None, Query(min_length=1, max_length=200, description="words of title/description")
    ] = None,
    sort: Annotated[str, Query(description=f"one of {', '.join(SORTS)}")] = "created_at",
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
    session: AsyncSession = unit_of_work(),
) -> TaskPage:
    who, unassigned = _assignee(assignee, principal)
    filters = TaskFilters(
        project_id=project_id,
        deliverable_id=deliverable_id,
        statuses=_statuses(status),
        assignee=who,
        unassigned=unassigned,
        kind=kind,
        milestone=milestone,
        overdue=overdue,
        blocked=blocked,
        text=text,
    )
    return await service.list_tasks(
        session, principal=principal, filters=filters, sort=sort, cursor=cursor, limit=limit
    )


@router.get("/{task_id:uuid}", response_model=TaskRead, summary="One task with its neighbours")
async def get_task(
    principal: CurrentUser,
    task_id: uuid.UUID,
    response: Response,
    session: AsyncSession = unit_of_work(),
) -> TaskRead:
    task = await service.get_task(session, principal=principal, task_id=task_id)
    response.headers["ETag"] = etag(task.row_version)
    return task
