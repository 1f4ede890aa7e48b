"""Deliverable reads: `GET /api/v1/deliverables/{id}`."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Response
from sqlalchemy.ext.asyncio import AsyncSession

from servicekit.conditional import etag
from servicekit.db import unit_of_work
from task_svc.deliverables import service
from task_svc.deliverables.schemas import DeliverableRead
from task_svc.roles import CurrentUser

router = APIRouter(prefix="/api/v1/deliverables", tags=["deliverables"])


@router.get("/{deliverable_id}", response_model=DeliverableRead, summary="One deliverable")
async def get_deliverable(
    deliverable_id: uuid.UUID,
    response: Response,
    principal: CurrentUser,
    session: AsyncSession = unit_of_work(),
) -> DeliverableRead:
    d = await service.get_deliverable(session, org_id=principal.org, deliverable_id=deliverable_id)
    response.headers["ETag"] = etag(d.row_version)
    return d
