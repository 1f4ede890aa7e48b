"""Queries of task reads: the filtered list, one task with its neighbours (org-scoped)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, func, literal, literal_column, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from servicekit.pagination import as_datetime, as_int, as_str
from task_svc.tasks.fsm import RESOLVED
from task_svc.tasks.models import Task, TaskDependency

_RESOLVED = sorted(RESOLVED)  # a stable order, so the statement caches

# The list's columns: everything but the heavy ones (description, checklist).
LIST_COLUMNS = (
    Task.id,
    Task.project_id,
    Task.deliverable_id,
    Task.node_key,
    Task.title,
    Task.kind,
    Task.work_kind,
    Task.priority,
    Task.status,
    Task.assigned_to,
    Task.due_at,
    Task.is_milestone,
    Task.qc_required,
    Task.open_blockers,
    Task.estimate_hours,
    Task.row_version,
    Task.created_at,
    Task.updated_at,
)

FAR_FUTURE = datetime(9999, 12, 31, tzinfo=UTC)


def _due_key() -> ColumnElement[Any]:
    return func.coalesce(Task.due_at, literal(FAR_FUTURE))


# sort name -> (sort expression, descending, how a cursor's sort value is read back)
SORTS: dict[str, tuple[Any, bool, Callable[[Any], Any]]] = {
    "created_at": (Task.created_at, False, as_datetime),
    "-created_at": (Task.created_at, True, as_datetime),
    "due_at": (None, False, as_datetime),  # due soonest first, no due date last
    "-priority": (Task.priority, True, as_int),
    "priority": (Task.priority, False, as_int),
    "title": (Task.title, False, as_str),
}


def sort_expression(sort: str) -> tuple[ColumnElement[Any], bool]:
    expr, desc, _ = SORTS[sort]
    return (_due_key() if expr is None else expr), desc


def sort_value_parser(sort: str) -> Callable[[Any], Any]:
    return SORTS[sort][2]


@dataclass(frozen=True)
class TaskFilters:
    project_id: uuid.UUID | None = None
    deliverable_id: uuid.UUID | None = None
    statuses: Sequence[str] | None = None
    assignee: uuid.UUID | None = None
    unassigned: bool = False
    kind: str | None = None
    milestone: bool | None = None
    overdue: bool | None = None
    blocked: bool | None = None
    text: str | None = None


def _conditions(org_id: uuid.UUID, f: TaskFilters, now: datetime) -> list[ColumnElement[bool]]:
    cond: list[ColumnElement[bool]] = [Task.org_id == org_id]
    if f.project_id is not None:
        cond.append(Task.project_id == f.project_id)
    if f.deliverable_id is not None:
        cond.append(Task.deliverable_id == f.deliverable_id)
    if f.statuses:
        cond.append(Task.status.in_(f.statuses))
    if f.assignee is not None:
        cond.append(Task.assigned_to == f.assignee)
    if f.unassigned:
        cond.append(Task.assigned_to.is_(None))
    if f.kind is not None:
        cond.append(Task.kind == f.kind)
    if f.milestone is not None:
        cond.append(Task.is_milestone.is_(f.milestone))
    if f.overdue is True:
        cond += [Task.due_at.is_not(None), Task.due_at < now, Task.status.not_in(_RESOLVED)]
    elif f.overdue is False:
        cond.append((Task.due_at.is_(None)) | (Task.due_at >= now) | Task.status.in_(_RESOLVED))
    if f.blocked is True:
        cond.append(Task.open_blockers > 0)
    elif f.blocked is False:
        cond.append(Task.open_blockers == 0)
    if f.text:
        # Spelled exactly as the expression of ix_tasks_search, so the index serves it.
        document: ColumnElement[Any] = literal_column(
            "to_tsvector('simple', tasks.title || ' ' || tasks.description)"
        )
        query = func.plainto_tsquery(literal_column("'simple'::regconfig"), f.text)
        cond.append(document.bool_op("@@")(query))
    return cond


async def list_tasks(
    session: AsyncSession,
    *,
    org_id: uuid.UUID,
    filters: TaskFilters,
    sort: str,
    after: tuple[Any, uuid.UUID] | None,
    limit: int,
    now: datetime,
) -> Sequence[Any]:
    stmt = list_statement(
        org_id=org_id, filters=filters, sort=sort, after=after, limit=limit, now=now
    )
    return (await session.execute(stmt)).all()


def list_statement(
    *,
    org_id: uuid.UUID,
    filters: TaskFilters,
    sort: str,
    after: tuple[Any, uuid.UUID] | None,
    limit: int,
    now: datetime,
) -> Any:
    """The list's SELECT (a Select), kept apart so its plan can be checked."""
    key, desc = sort_expression(sort)
    stmt = select(*LIST_COLUMNS, key.label("sort_value")).where(*_conditions(org_id, filters, now))
    if after is not None:
        pair = tuple_(key, Task.id)
        stmt = stmt.where(pair < tuple_(*after) if desc else pair > tuple_(*after))
    order = (key.desc(), Task.id.desc()) if desc else (key.asc(), Task.id.asc())
    return stmt.order_by(*order).limit(limit)


async def get_task(session: AsyncSession, *, org_id: uuid.UUID, task_id: uuid.UUID) -> Task | None:
    stmt = select(Task).where(Task.id == task_id, Task.org_id == org_id)
    return (await session.execute(stmt)).scalar_one_or_none()


async def neighbours(session: AsyncSession, *, task_id: uuid.UUID) -> tuple[list[Any], list[Any]]:
    """(blockers, dependents) of a task as (id, title, status) rows, in ONE query."""
    blockers = (
        select(literal("b").label("side"), Task.id, Task.title, Task.status)
        .join(TaskDependency, TaskDependency.blocker_id == Task.id)
        .where(TaskDependency.task_id == task_id)
    )
    dependents = (
        select(literal("d").label("side"), Task.id, Task.title, Task.status)
        .join(TaskDependency, TaskDependency.task_id == Task.id)
        .where(TaskDependency.blocker_id == task_id)
    )
    rows = (await session.execute(blockers.union_all(dependents).order_by("side", "title"))).all()
    return [r for r in rows if r.side == "b"], [r for r in rows if r.side == "d"]


async def project_graph(
    session: AsyncSession, *, org_id: uuid.UUID, project_id: uuid.UUID
) -> tuple[Sequence[Any], Sequence[Any]]:
    """Every task of a project (the columns a dashboard or drawing needs) and every edge."""
    tasks = (
        await session.execute(
            select(
                Task.id,
                Task.deliverable_id,
                Task.node_key,
                Task.title,
                Task.status,
                Task.assigned_to,
                Task.due_at,
                Task.estimate_hours,
                Task.open_blockers,
                Task.is_milestone,
                Task.priority,
            )
            .where(Task.org_id == org_id, Task.project_id == project_id)
            .order_by(Task.deliverable_id, Task.node_key)
        )
    ).all()
    edges = (
        await session.execute(
            select(TaskDependency.blocker_id, TaskDependency.task_id)
            .join(Task, Task.id == TaskDependency.task_id)
            .where(Task.org_id == org_id, Task.project_id == project_id)
        )
    ).all()
    return tasks, edges
