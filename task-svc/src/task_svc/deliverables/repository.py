"""Queries of deliverables (org-scoped)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from task_svc.deliverables.models import Deliverable, DeliverableSignoff
from task_svc.tasks.models import Task


async def get_deliverable(
    session: AsyncSession, *, org_id: uuid.UUID, deliverable_id: uuid.UUID
) -> Deliverable | None:
    stmt = select(Deliverable).where(Deliverable.id == deliverable_id, Deliverable.org_id == org_id)
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


# ---------------------------------------------------------------------------------------------
# Sign-off (explicit SQL on the unit of work's connection, in the transitions' lock order)


_LOCK_DELIVERABLE_SQL = """
SELECT id, org_id, project_id, serial, status, row_version FROM deliverables
WHERE id = $1 AND org_id = $2 FOR UPDATE
"""
_SIGN_SQL = """
UPDATE deliverables SET status = 'signed_off', row_version = row_version + 1, updated_at = $3,
  signed_off_at = $3, signed_off_by = $4
WHERE id = $1 AND org_id = $2 RETURNING row_version
"""
_RECORD_SIGNOFF_SQL = """
INSERT INTO deliverable_signoffs (id, org_id, deliverable_id, decision, comment,
  reopen_task_ids, actor, created_at) VALUES ($1, $2, $3, $4, $5, $6::uuid[], $7, $8)
"""
_LOCK_PROJECT_SQL = "SELECT id, status FROM projects WHERE id = $1 AND org_id = $2 FOR UPDATE"
_COMPLETE_PROJECT_SQL = """
UPDATE projects p SET status = 'completed', row_version = p.row_version + 1, updated_at = $3,
  completed_at = $3
WHERE p.id = $1 AND p.org_id = $2 AND p.status = 'active'
  AND NOT EXISTS (SELECT 1 FROM deliverables d WHERE d.project_id = p.id
                  AND d.status <> 'signed_off')
RETURNING p.row_version
"""
_DELIVERABLE_STATE_SQL = "SELECT status, row_version FROM deliverables WHERE id = $1"


async def lock_deliverable(
    conn: AsyncConnection, *, deliverable_id: uuid.UUID, org_id: uuid.UUID
) -> dict[str, Any] | None:
    """id, org_id, project_id, serial, status and row_version of the deliverable, locked."""
    res = await conn.exec_driver_sql(_LOCK_DELIVERABLE_SQL, (deliverable_id, org_id))
    found = res.mappings().first()
    return dict(found) if found is not None else None


async def sign(
    conn: AsyncConnection,
    *,
    deliverable_id: uuid.UUID,
    org_id: uuid.UUID,
    actor: str,
    now: datetime,
) -> int:
    """Mark the deliverable signed off; its new row_version."""
    res = await conn.exec_driver_sql(_SIGN_SQL, (deliverable_id, org_id, now, actor))
    return int(res.scalar_one())


async def deliverable_state(conn: AsyncConnection, *, deliverable_id: uuid.UUID) -> tuple[str, int]:
    """(status, row_version) of the deliverable, as this transaction sees it now."""
    res = await conn.exec_driver_sql(_DELIVERABLE_STATE_SQL, (deliverable_id,))
    row = res.mappings().one()
    return row["status"], row["row_version"]


async def record_signoff(
    conn: AsyncConnection,
    *,
    org_id: uuid.UUID,
    deliverable_id: uuid.UUID,
    decision: str,
    comment: str | None,
    reopen_task_ids: list[uuid.UUID],
    actor: str,
    now: datetime,
) -> None:
    await conn.exec_driver_sql(
        _RECORD_SIGNOFF_SQL,
        (uuid.uuid4(), org_id, deliverable_id, decision, comment, reopen_task_ids, actor, now),
    )


async def complete_project(
    conn: AsyncConnection, *, project_id: uuid.UUID, org_id: uuid.UUID, now: datetime
) -> int | None:
    """Lock the project and complete it if every deliverable is signed off; its new
    row_version, None when it stays as it is."""
    await conn.exec_driver_sql(_LOCK_PROJECT_SQL, (project_id, org_id))
    res = await conn.exec_driver_sql(_COMPLETE_PROJECT_SQL, (project_id, org_id, now))
    completed = res.scalar_one_or_none()
    return int(completed) if completed is not None else None
