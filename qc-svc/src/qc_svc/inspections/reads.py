"""Reading inspections: one by id, and pages of a filtered list."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from qc_svc.inspections import repository as repo
from qc_svc.inspections.models import Inspection
from qc_svc.inspections.views import InspectionView
from servicekit.auth import Principal
from servicekit.errors import NotFound
from servicekit.pagination import as_datetime, as_uuid, cut_page, decode_cursor, encode_cursor


async def get_inspection(
    session: AsyncSession, *, principal: Principal, inspection_id: uuid.UUID
) -> InspectionView:
    inspection = await get_or_404(session, principal.org, inspection_id)
    return await view_of(session, inspection)


async def list_inspections(
    session: AsyncSession,
    *,
    principal: Principal,
    filters: repo.ListFilters,
    cursor: str | None,
    limit: int,
) -> tuple[list[InspectionView], str | None]:
    """A page of inspections, oldest first, and the cursor of the next page (None at the end)."""
    after = decode_cursor(cursor, as_datetime, as_uuid)
    rows = await repo.list_page(
        session, org_id=principal.org, filters=filters, after=after, limit=limit
    )
    page, last = cut_page(rows, limit)
    defects = await repo.defects_of(session, [i.id for i in page])
    next_cursor = encode_cursor([last.created_at, last.id]) if last is not None else None
    return [InspectionView(i, defects[i.id]) for i in page], next_cursor


async def get_or_404(
    session: AsyncSession, org_id: uuid.UUID, inspection_id: uuid.UUID, *, for_update: bool = False
) -> Inspection:
    """The inspection of this org (404 for another org's, as for one that does not exist)."""
    inspection = await repo.get(
        session, org_id=org_id, inspection_id=inspection_id, for_update=for_update
    )
    if inspection is None:
        raise NotFound(f"no inspection {inspection_id}", code="INSPECTION_NOT_FOUND")
    return inspection


async def view_of(session: AsyncSession, inspection: Inspection) -> InspectionView:
    defects = await repo.defects_of(session, [inspection.id])
    return InspectionView(inspection, defects[inspection.id])
