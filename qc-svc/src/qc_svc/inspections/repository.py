"""Queries of the inspections domain. Every query is scoped to one org."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, tuple_
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from qc_svc.inspections.models import Defect, Inspection


async def insert_if_absent(session: AsyncSession, values: dict[str, Any]) -> Inspection | None:
    """Insert an inspection unless one exists for (task_id, round); the new row or None."""
    stmt = (
        insert(Inspection)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["task_id", "round"])
        .returning(Inspection)
    )
    result = await session.scalars(stmt, execution_options={"populate_existing": True})
    return result.one_or_none()


async def get_by_task_round(
    session: AsyncSession, *, org_id: uuid.UUID, task_id: uuid.UUID, round: int
) -> Inspection | None:
    stmt = select(Inspection).where(
        Inspection.org_id == org_id, Inspection.task_id == task_id, Inspection.round == round
    )
    return (await session.scalars(stmt)).one_or_none()


async def get(
    session: AsyncSession, *, org_id: uuid.UUID, inspection_id: uuid.UUID, for_update: bool = False
) -> Inspection | None:
    stmt = select(Inspection).where(Inspection.id == inspection_id, Inspection.org_id == org_id)
    if for_update:
        stmt = stmt.with_for_update()
    stmt = stmt.execution_options(populate_existing=True)
    return (await session.scalars(stmt)).one_or_none()


async def defects_of(
    session: AsyncSession, inspection_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[Defect]]:
    out: dict[uuid.UUID, list[Defect]] = {i: [] for i in inspection_ids}
    if not inspection_ids:
        return out
    stmt = (
        select(Defect)
        .where(Defect.inspection_id.in_(inspection_ids))
        .order_by(Defect.created_at, Defect.code, Defect.id)
    )
    for defect in await session.scalars(stmt):
        out[defect.inspection_id].append(defect)
    return out


async def get_defect(
    session: AsyncSession, *, inspection_id: uuid.UUID, defect_id: uuid.UUID
) -> Defect | None:
    stmt = select(Defect).where(Defect.id == defect_id, Defect.inspection_id == inspection_id)
    return (await session.scalars(stmt)).one_or_none()


@dataclass(frozen=True)
class ListFilters:
    status: str | None = None
    project_id: uuid.UUID | None = None
    deliverable_id: uuid.UUID | None = None
    task_id: uuid.UUID | None = None
    inspector_id: uuid.UUID | None = None
    round: int | None = None


async def list_page(
    session: AsyncSession,
    *,
    org_id: uuid.UUID,
    filters: ListFilters,
    after: tuple[datetime, uuid.UUID] | None,
    limit: int,
) -> list[Inspection]:
    """Oldest first, keyset on (created_at, id); `limit + 1` rows to tell if more follow."""
    stmt = select(Inspection).where(Inspection.org_id == org_id)
    if filters.status is not None:
        stmt = stmt.where(Inspection.status == filters.status)
    if filters.project_id is not None:
        stmt = stmt.where(Inspection.project_id == filters.project_id)
    if filters.deliverable_id is not None:
        stmt = stmt.where(Inspection.deliverable_id == filters.deliverable_id)
    if filters.task_id is not None:
        stmt = stmt.where(Inspection.task_id == filters.task_id)
    if filters.inspector_id is not None:
        stmt = stmt.where(Inspection.inspector_id == filters.inspector_id)
    if filters.round is not None:
        stmt = stmt.where(Inspection.round == filters.round)
    if after is not None:
        stmt = stmt.where(tuple_(Inspection.created_at, Inspection.id) > tuple_(*after))
    stmt = stmt.order_by(Inspection.created_at, Inspection.id).limit(limit + 1)
    return list(await session.scalars(stmt))
