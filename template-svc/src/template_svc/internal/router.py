"""/internal/templates: the frozen graph of a version, for other services (service token)."""

from __future__ import annotations

import uuid
from datetime import datetime

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, Field
from sqlalchemy.ext.asyncio import AsyncSession

from servicekit.auth import ServiceCaller
from servicekit.bounds import INT4_MAX
from servicekit.db import unit_of_work
from template_svc.graph.canonical import checksum
from template_svc.graph.schemas import Edge, Node
from template_svc.versions import service as version_service
from template_svc.versions.schemas import VersionStatus

router = APIRouter(prefix="/internal/templates", tags=["internal"])


class InternalVersionRead(BaseModel):
    template_id: uuid.UUID
    org_id: uuid.UUID
    key: str
    name: str
    version: int
    status: VersionStatus
    checksum: str = Field(description="sha256 (hex) of the canonical graph JSON")
    published_at: datetime | None
    nodes: list[Node]
    edges: list[Edge]


async def _read(
    session: AsyncSession, *, org_id: uuid.UUID, template_id: uuid.UUID, version: int | None
) -> InternalVersionRead:
    template, row = await version_service.get_with_template(
        session, org_id=org_id, template_id=template_id, version=version
    )
    return InternalVersionRead.model_validate(
        {
            "template_id": template.id,
            "org_id": template.org_id,
            "key": template.key,
            "name": template.name,
            "version": row.version,
            "status": row.status,
            "checksum": row.checksum or checksum(row.graph),
            "published_at": row.published_at,
            "nodes": row.graph["nodes"],
            "edges": row.graph["edges"],
        }
    )


@router.get(
    "/{template_id}/versions/latest",
    response_model=InternalVersionRead,
    summary="The latest published version of a template",
)
async def latest_published_version(
    *,
    template_id: uuid.UUID,
    org_id: uuid.UUID = Query(description="the org the template must belong to"),
    caller: ServiceCaller,
    session: AsyncSession = unit_of_work(),
) -> InternalVersionRead:
    return await _read(session, org_id=org_id, template_id=template_id, version=None)


@router.get(
    "/{template_id}/versions/{version}",
    response_model=InternalVersionRead,
    summary="One version of a template, with its graph and checksum",
)
async def template_version(
    *,
    template_id: uuid.UUID,
    version: int = Path(ge=1, le=INT4_MAX),
    org_id: uuid.UUID = Query(description="the org the template must belong to"),
    caller: ServiceCaller,
    session: AsyncSession = unit_of_work(),
) -> InternalVersionRead:
    return await _read(session, org_id=org_id, template_id=template_id, version=version)
