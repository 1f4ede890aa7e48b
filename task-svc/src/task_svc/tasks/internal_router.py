"""/internal/tasks reads for notify-svc (service token): one task's summary, and the open tasks
whose due date falls in a window (deadline reminders and overdue notices).

The window read walks `ix_tasks_due_at_open` (open tasks with a due date, by due date), so it
reads the rows in the window and no others, whatever the number of tasks.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field
from sqlalchemy import select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from servicekit.db import unit_of_work
from servicekit.errors import NotFound, Unprocessable
from servicekit.pagination import as_datetime, as_uuid, cut_page, decode_cursor, encode_cursor
from task_svc.projects.models import Project
from task_svc.roles import ServiceCaller
from task_svc.tasks.models import Task

router = APIRouter(prefix="/internal/tasks", tags=["internal"])

CLOSED = ("done", "cancelled")


class TaskSummary(BaseModel):
    task_id: uuid.UUID
    org_id: uuid.UUID
    project_id: uuid.UUID
    deliverable_id: uuid.UUID
    title: str
    status: str
    assigned_to: uuid.UUID | None
    due_at: datetime | None
    project_name: str
    planner: str = Field(description="who started the project (its planner)")


class DueTaskPage(BaseModel):
    items: list[TaskSummary]
    next_cursor: str | None


_COLUMNS = (
    Task.id,
    Task.org_id,
    Task.project_id,
    Task.deliverable_id,
    Task.title,
    Task.status,
    Task.assigned_to,
    Task.due_at,
    Project.name,
    Project.created_by,
)


def _summary(row: tuple[object, ...]) -> TaskSummary:
    keys = ("task_id", "org_id", "project_id", "deliverable_id", "title", "status",
            "assigned_to", "due_at", "project_name", "planner")  # fmt: skip
    return TaskSummary.model_validate(dict(zip(keys, row, strict=True)))


@router.get("/due", response_model=DueTaskPage, summary="Open tasks due in a window")
async def due_tasks(
    *,
    due_after: datetime = Query(description="due at or after (with a time zone)"),
    due_before: datetime = Query(description="due before (with a time zone)"),
    limit: int = Query(default=500, ge=1, le=1000),
    cursor: str | None = Query(default=None),
    caller: ServiceCaller,
    session: AsyncSession = unit_of_work(),
) -> DueTaskPage:
    if due_after.tzinfo is None or due_before.tzinfo is None:
        raise Unprocessable(
            "due_after and due_before need a time zone, e.g. 2026-12-01T09:00:00Z",
            code="VALIDATION_FAILED",
            errors=[{"in": "query", "field": "due_after", "message": "needs a time zone"}],
        )
    query = (
        select(*_COLUMNS)
        .join(Project, Project.id == Task.project_id)
        .where(
            Task.status.not_in(CLOSED),
            Task.due_at.is_not(None),
            Task.due_at >= due_after,
            Task.due_at < due_before,
        )
    )
    after = decode_cursor(cursor, as_datetime, as_uuid)
    if after is not None:
        query = query.where(tuple_(Task.due_at, Task.id) > tuple_(after[0], after[1]))
    query = query.order_by(Task.due_at, Task.id).limit(limit + 1)
    rows = [tuple(r) for r in (await session.execute(query)).all()]
    page, last = cut_page(rows, limit)
    items = [_summary(r) for r in page]
    next_cursor = encode_cursor([last[7], last[0]]) if last is not None else None
    return DueTaskPage(items=items, next_cursor=next_cursor)


@router.get("/{task_id}", response_model=TaskSummary, summary="One task's summary")
async def task_summary(
    *,
    task_id: uuid.UUID,
    org_id: uuid.UUID = Query(description="the org the task must belong to"),
    caller: ServiceCaller,
    session: AsyncSession = unit_of_work(),
) -> TaskSummary:
    query = (
        select(*_COLUMNS)
        .join(Project, Project.id == Task.project_id)
        .where(Task.id == task_id, Task.org_id == org_id)
    )
    row = (await session.execute(query)).first()
    if row is None:
        raise NotFound(f"no task {task_id} in org {org_id}", code="TASK_NOT_FOUND")
    return _summary(tuple(row))
