"""Deliverable reads."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from servicekit.errors import NotFound
from task_svc.deliverables import repository
from task_svc.deliverables.schemas import DeliverableRead, SignoffRead
from task_svc.projects.schemas import Progress, StatusCounts


async def get_deliverable(
    session: AsyncSession, *, org_id: uuid.UUID, deliverable_id: uuid.UUID
) -> DeliverableRead:
    d = await repository.get_deliverable(session, org_id=org_id, deliverable_id=deliverable_id)
    if d is None:
        raise NotFound(f"deliverable {deliverable_id} does not exist", code="DELIVERABLE_NOT_FOUND")
    totals = await repository.task_totals(session, org_id=org_id, deliverable_id=deliverable_id)
    history = await repository.signoffs(session, org_id=org_id, deliverable_id=deliverable_id)
    counts = {status: int(n) for status, n, _h in totals}
    hours = {status: float(h) for status, _n, h in totals}
    total = sum(counts.values())
    resolved = counts.get("done", 0) + counts.get("cancelled", 0)
    total_hours = sum(h for s, h in hours.items() if s != "cancelled")
    done_hours = hours.get("done", 0.0)
    return DeliverableRead(
        id=d.id,
        project_id=d.project_id,
        name=d.name,
        position=d.position,
        serial=d.serial,
        status=d.status,
        row_version=d.row_version,
        created_at=d.created_at,
        updated_at=d.updated_at,
        signed_off_at=d.signed_off_at,
        signed_off_by=d.signed_off_by,
        task_counts=StatusCounts(**counts),
        progress=Progress(
            by_count=round(resolved / total, 4) if total else 0.0,
            by_estimate=round(done_hours / total_hours, 4) if total_hours else 0.0,
            resolved=resolved,
            total=total,
            resolved_hours=round(done_hours, 2),
            total_hours=round(total_hours, 2),
        ),
        signoffs=[
            SignoffRead(
                id=s.id,
                decision=s.decision,
                comment=s.comment,
                reopen_task_ids=list(s.reopen_task_ids or []),
                actor=s.actor,
                created_at=s.created_at,
            )
            for s in history
        ],
    )
