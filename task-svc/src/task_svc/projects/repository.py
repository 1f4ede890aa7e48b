"""Queries of projects and their deliverables (org-scoped, explicit loads only)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import defer

from task_svc.deliverables.models import Deliverable
from task_svc.projects.models import Project
from task_svc.tasks.models import Task


async def insert_project(session: AsyncSession, values: dict[str, Any]) -> Any:
    """Insert a project; returns its server-set timestamps (the transaction's `now()`)."""
    return (
        await session.execute(
            insert(Project).values(**values).returning(Project.created_at, Project.updated_at)
        )
    ).one()


async def get_project(
    session: AsyncSession,
    *,
    org_id: uuid.UUID,
    project_id: uuid.UUID,
    for_update: bool = False,
    with_snapshot: bool = False,
) -> Project | None:
    """One project; its frozen snapshot (megabytes for a big template) only when asked for."""
    stmt = select(Project).where(Project.id == project_id, Project.org_id == org_id)
    if with_snapshot:
        stmt = stmt.execution_options(populate_existing=True)
    else:
        stmt = stmt.options(defer(Project.snapshot, raiseload=True))
    if for_update:
        stmt = stmt.with_for_update()
    return (await session.execute(stmt)).scalar_one_or_none()


async def list_deliverables(
    session: AsyncSession, *, org_id: uuid.UUID, project_id: uuid.UUID
) -> Sequence[Deliverable]:
    stmt = (
        select(Deliverable)
        .where(Deliverable.org_id == org_id, Deliverable.project_id == project_id)
        .order_by(Deliverable.position)
    )
    return (await session.execute(stmt)).scalars().all()


async def task_counts_by_deliverable(
    session: AsyncSession, *, org_id: uuid.UUID, project_id: uuid.UUID
) -> dict[uuid.UUID, dict[str, int]]:
    stmt = (
        select(Task.deliverable_id, Task.status, func.count())
        .where(Task.org_id == org_id, Task.project_id == project_id)
        .group_by(Task.deliverable_id, Task.status)
    )
    out: dict[uuid.UUID, dict[str, int]] = {}
    for deliverable_id, status, count in (await session.execute(stmt)).all():
        out.setdefault(deliverable_id, {})[status] = int(count)
    return out


async def list_projects(
    session: AsyncSession,
    *,
    org_id: uuid.UUID,
    statuses: Sequence[str] | None,
    template_id: uuid.UUID | None,
    after: tuple[datetime, uuid.UUID] | None,
    limit: int,
) -> Sequence[Project]:
    """Newest first; `after` is the (created_at, id) of the last row of the previous page."""
    stmt = select(Project).where(Project.org_id == org_id)
    if statuses:
        stmt = stmt.where(Project.status.in_(statuses))
    if template_id is not None:
        stmt = stmt.where(Project.template_id == template_id)
    if after is not None:
        stmt = stmt.where(tuple_(Project.created_at, Project.id) < tuple_(*after))
    stmt = stmt.order_by(Project.created_at.desc(), Project.id.desc()).limit(limit)
    # The list never shows the snapshot: do not fetch it.
    stmt = stmt.options(defer(Project.snapshot, raiseload=True))
    return (await session.execute(stmt)).scalars().all()


async def set_project_status(
    session: AsyncSession,
    *,
    project_id: uuid.UUID,
    status: str,
    now_completed: bool = False,
) -> Any:
    values: dict[str, Any] = {
        "status": status,
        "row_version": Project.row_version + 1,
        "updated_at": func.now(),
    }
    if now_completed:
        values["completed_at"] = func.now()
    stmt = (
        update(Project)
        .where(Project.id == project_id)
        .values(**values)
        .returning(Project.row_version, Project.updated_at)
    )
    return (await session.execute(stmt)).one()
