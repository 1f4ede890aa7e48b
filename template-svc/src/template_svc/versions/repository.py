"""Queries on template versions, always scoped to one org."""

from __future__ import annotations

import uuid

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import defer

from template_svc.versions.models import PUBLISHED, TemplateVersion


async def get(
    session: AsyncSession,
    *,
    org_id: uuid.UUID,
    template_id: uuid.UUID,
    version: int,
    for_update: bool = False,
) -> TemplateVersion | None:
    stmt = select(TemplateVersion).where(
        TemplateVersion.org_id == org_id,
        TemplateVersion.template_id == template_id,
        TemplateVersion.version == version,
    )
    if for_update:
        stmt = stmt.with_for_update()
    return await session.scalar(stmt)


async def latest_published(
    session: AsyncSession, *, org_id: uuid.UUID, template_id: uuid.UUID
) -> TemplateVersion | None:
    return await session.scalar(
        select(TemplateVersion)
        .where(
            TemplateVersion.org_id == org_id,
            TemplateVersion.template_id == template_id,
            TemplateVersion.status == PUBLISHED,
        )
        .order_by(TemplateVersion.version.desc())
        .limit(1)
    )


async def max_version(session: AsyncSession, *, template_id: uuid.UUID) -> int:
    value = await session.scalar(
        select(func.max(TemplateVersion.version)).where(TemplateVersion.template_id == template_id)
    )
    return int(value or 0)


async def list_page(
    session: AsyncSession,
    *,
    org_id: uuid.UUID,
    template_id: uuid.UUID,
    status: str | None,
    before_version: int | None,
    limit: int,
) -> list[TemplateVersion]:
    """Versions newest first, without their graphs; one extra row tells a next page exists."""
    stmt = (
        select(TemplateVersion)
        .options(defer(TemplateVersion.graph, raiseload=True))
        .where(TemplateVersion.org_id == org_id, TemplateVersion.template_id == template_id)
    )
    if status is not None:
        stmt = stmt.where(TemplateVersion.status == status)
    if before_version is not None:
        stmt = stmt.where(TemplateVersion.version < before_version)
    stmt = stmt.order_by(TemplateVersion.version.desc()).limit(limit + 1)
    return list((await session.scalars(stmt)).all())
