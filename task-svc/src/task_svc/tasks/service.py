"""Task reads: the filtered list, one task with its neighbours and allowed actions, and a
task's history."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from servicekit.auth import Principal
from servicekit.errors import BadRequest, NotFound
from servicekit.jsonutil import loads
from servicekit.pagination import (
    as_uuid,
    cursor_invalid,
    cut_page,
    decode_cursor,
    encode_cursor,
)
from task_svc.tasks import fsm, queries, repository
from task_svc.tasks.models import Task
from task_svc.tasks.queries import TaskFilters
from task_svc.tasks.schemas import TaskListItem, TaskPage, TaskRead, TaskRef


def _estimate(value: Any) -> float | None:
    return None if value is None else float(value)


async def list_tasks(
    session: AsyncSession,
    *,
    principal: Principal,
    filters: TaskFilters,
    sort: str,
    cursor: str | None,
    limit: int,
) -> TaskPage:
    if sort not in queries.SORTS:
        raise BadRequest(
            f"sort must be one of {', '.join(queries.SORTS)}, got {sort!r}",
            code="SORT_INVALID",
            errors=[{"in": "query", "field": "sort", "message": "unknown sort"}],
        )
    after = decode_cursor(cursor, queries.sort_value_parser(sort), as_uuid)
    fetched = await queries.list_tasks(
        session,
        org_id=principal.org,
        filters=filters,
        sort=sort,
        after=after,
        limit=limit + 1,
        now=datetime.now(UTC),
    )
    rows, last = cut_page(fetched, limit)
    items = [
        TaskListItem(
            id=r.id,
            project_id=r.project_id,
            deliverable_id=r.deliverable_id,
            node_key=r.node_key,
            title=r.title,
            kind=r.kind,
            work_kind=r.work_kind,
            priority=r.priority,
            status=r.status,
            assigned_to=r.assigned_to,
            due_at=r.due_at,
            is_milestone=r.is_milestone,
            qc_required=r.qc_required,
            open_blockers=r.open_blockers,
            estimate_hours=_estimate(r.estimate_hours),
            row_version=r.row_version,
            created_at=r.created_at,
            updated_at=r.updated_at,
        )
        for r in rows
    ]
    next_cursor = encode_cursor([last.sort_value, last.id]) if last is not None else None
    return TaskPage(items=items, next_cursor=next_cursor)


def allowed_actions_for(task: Task, principal: Principal) -> list[str]:
    return fsm.allowed_actions(
        task.status,
        roles=principal.roles,
        user_id=None if principal.is_service else principal.user_id,
        assigned_to=task.assigned_to,
        open_blockers=task.open_blockers,
        qc_required=task.qc_required,
        is_milestone=task.is_milestone,
    )


def task_read(
    task: Task, *, blockers: list[TaskRef], dependents: list[TaskRef], allowed: list[str]
) -> TaskRead:
    return TaskRead(
        id=task.id,
        project_id=task.project_id,
        deliverable_id=task.deliverable_id,
        node_key=task.node_key,
        title=task.title,
        kind=task.kind,
        work_kind=task.work_kind,
        priority=task.priority,
        status=task.status,
        assigned_to=task.assigned_to,
        due_at=task.due_at,
        is_milestone=task.is_milestone,
        qc_required=task.qc_required,
        open_blockers=task.open_blockers,
        estimate_hours=_estimate(task.estimate_hours),
        row_version=task.row_version,
        created_at=task.created_at,
        updated_at=task.updated_at,
        description=task.description,
        assigned_at=task.assigned_at,
        started_at=task.started_at,
        completed_at=task.completed_at,
        qc_checklist=list(task.qc_checklist or []),
        parent_id=task.parent_id,
        role_hint=task.role_hint,
        blockers=blockers,
        dependents=dependents,
        allowed_actions=allowed,
    )


async def get_task(session: AsyncSession, *, principal: Principal, task_id: uuid.UUID) -> TaskRead:
    task = await queries.get_task(session, org_id=principal.org, task_id=task_id)
    if task is None:
        raise NotFound(f"task {task_id} does not exist", code="TASK_NOT_FOUND")
    blockers, dependents = await queries.neighbours(session, task_id=task_id)
    return task_read(
        task,
        blockers=[TaskRef(id=r.id, title=r.title, status=r.status) for r in blockers],
        dependents=[TaskRef(id=r.id, title=r.title, status=r.status) for r in dependents],
        allowed=allowed_actions_for(task, principal),
    )


def _iso(v: datetime | None) -> str | None:
    return v.isoformat() if v is not None else None


def _event_item(r: dict[str, Any]) -> dict[str, Any]:
    payload = r["payload"]
    return {
        **r,
        "payload": loads(payload) if isinstance(payload, str) else payload,
        "created_at": _iso(r["created_at"]),
    }


async def list_events(
    session: AsyncSession,
    *,
    org_id: uuid.UUID,
    task_id: uuid.UUID,
    limit: int,
    cursor: str | None,
) -> dict[str, Any]:
    """A task's history, oldest first, with a cursor on the event id."""
    after = 0
    if cursor:
        try:
            after = int(cursor)
        except ValueError:
            raise cursor_invalid() from None
    conn = await session.connection()
    if not await repository.task_exists(conn, task_id=task_id, org_id=org_id):
        raise NotFound(f"task {task_id} not found", code="TASK_NOT_FOUND")
    rows = await repository.list_events(
        conn, task_id=task_id, org_id=org_id, after=after, limit=limit + 1
    )
    next_cursor = str(rows[limit - 1]["id"]) if len(rows) > limit else None
    return {"items": [_event_item(r) for r in rows[:limit]], "next_cursor": next_cursor}
