"""Queries of deliverables (org-scoped)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from task_svc.deliverables.models import Deliverable, DeliverableSignoff
from task_svc.tasks.models import Task


async def get_deliverable(
    session: AsyncSession, *, org_id: uuid.UUID, deliverable_id: uuid.UUID
) -> Deliverable | None:
    stmt = select(Deliverable).where(
        Deliverable.id == deliverable_id, Deliverable.org_id == org_id
    )
    return (await session.execute(stmt)).scalar_one_or_none()


async def task_totals(
    session: AsyncSession, *, org_id: uuid.UUID, deliverable_id: uuid.UUID
) -> Sequence[Any]:
    """(status, count, estimate hours) of the deliverable's tasks."""
    stmt = (
        select(Task.status, func.count(), func.coalesce(func.sum(Task.estimate_hours), 0))
        .where(Task.org_id == org_id, Task.deliverable_id == deliverable_id)
        .group_by(Task.status)
    )
    return (await session.execute(stmt)).all()


async def signoffs(
    session: AsyncSession, *, org_id: uuid.UUID, deliverable_id: uuid.UUID
) -> Sequence[DeliverableSignoff]:
    stmt = (
        select(DeliverableSignoff)
        .where(
            DeliverableSignoff.org_id == org_id,
            DeliverableSignoff.deliverable_id == deliverable_id,
        )
        .order_by(DeliverableSignoff.created_at, DeliverableSignoff.id)
    )
    return (await session.execute(stmt)).scalars().all()
