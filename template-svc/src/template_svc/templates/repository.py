"""Queries on templates, always scoped to one org."""

from __future__ import annotations

import uuid

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from template_svc.templates.models import Template


async def get(
    session: AsyncSession, *, org_id: uuid.UUID, template_id: uuid.UUID, for_update: bool = False
) -> Template | None:
    stmt = select(Template).where(Template.id == template_id, Template.org_id == org_id)
    if for_update:
        stmt = stmt.with_for_update()
    return await session.scalar(stmt)


async def get_by_key(session: AsyncSession, *, org_id: uuid.UUID, key: str) -> Template | None:
    return await session.scalar(
        select(Template).where(Template.org_id == org_id, Template.key == key)
    )


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


async def list_page(
    session: AsyncSession,
    *,
    org_id: uuid.UUID,
    q: str | None,
    archived: bool | None,
    after_key: str | None,
    limit: int,
) -> list[Template]:
    """Templates ordered by key; one row more than `limit` tells whether a next page exists."""
    stmt = select(Template).where(Template.org_id == org_id)
    if q:
        pattern = f"%{_escape_like(q)}%"
        stmt = stmt.where(
            or_(
                Template.key.ilike(pattern, escape="\\"),
                Template.name.ilike(pattern, escape="\\"),
                Template.description.ilike(pattern, escape="\\"),
            )
        )
    if archived is True:
        stmt = stmt.where(Template.archived_at.is_not(None))
    elif archived is False:
        stmt = stmt.where(Template.archived_at.is_(None))
    if after_key is not None:
        stmt = stmt.where(Template.key > after_key)
    stmt = stmt.order_by(Template.key).limit(limit + 1)
    return list((await session.scalars(stmt)).all())
