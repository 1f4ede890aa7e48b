"""Rules of templates: create (optionally with a first draft), read, list, rename, archive."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from servicekit.conditional import ExpectedVersion
from servicekit.errors import Conflict
from servicekit.pagination import as_str, cut_page, decode_cursor, encode_cursor
from template_svc.templates import repository
from template_svc.templates.models import Template
from template_svc.versions import service as version_service
from template_svc.versions.models import TemplateVersion


def _key_taken(key: str) -> Conflict:
    return Conflict(
        f"the key {key!r} is already used by a template of this org: choose another key",
        code="TEMPLATE_KEY_TAKEN",
        key=key,
    )


async def create_template(
    session: AsyncSession,
    *,
    org_id: uuid.UUID,
    actor_id: uuid.UUID,
    key: str,
    name: str,
    description: str = "",
    draft: dict[str, Any] | None = None,
    changelog: str = "",
) -> tuple[Template, TemplateVersion | None]:
    if await repository.get_by_key(session, org_id=org_id, key=key) is not None:
        raise _key_taken(key)
    now = datetime.now(UTC)
    template = Template(
        id=uuid.uuid4(),
        org_id=org_id,
        key=key,
        name=name,
        description=description,
        row_version=1,
        created_at=now,
        created_by=actor_id,
        updated_at=now,
        updated_by=actor_id,
    )
    try:
        async with session.begin_nested():
            session.add(template)
            await session.flush()
    except IntegrityError as exc:  # a concurrent create won the key
        raise _key_taken(key) from exc
    version = None
    if draft is not None:
        version = await version_service.create_draft(
            session,
            org_id=org_id,
            actor_id=actor_id,
            template_id=template.id,
            graph=draft,
            changelog=changelog,
            template=template,
        )
    return template, version


async def get_template(
    session: AsyncSession, *, org_id: uuid.UUID, template_id: uuid.UUID
) -> Template:
    return await version_service.get_template(session, org_id=org_id, template_id=template_id)


async def list_templates(
    session: AsyncSession,
    *,
    org_id: uuid.UUID,
    q: str | None,
    archived: bool | None,
    cursor: str | None,
    limit: int,
) -> tuple[list[Template], str | None]:
    """A page of templates ordered by key, and the cursor of the next page (None on the last)."""
    after = decode_cursor(cursor, as_str)
    rows, last = cut_page(
        await repository.list_page(
            session,
            org_id=org_id,
            q=q,
            archived=archived,
            after_key=after[0] if after else None,
            limit=limit,
        ),
        limit,
    )
    return rows, encode_cursor([last.key]) if last is not None else None


async def _for_write(
    session: AsyncSession,
    *,
    org_id: uuid.UUID,
    template_id: uuid.UUID,
    expected: ExpectedVersion | None,
) -> Template:
    template = await version_service.get_template(
        session, org_id=org_id, template_id=template_id, for_update=True
    )
    version_service.check_row_version(
        what=f"template {template.key!r}",
        current=template.row_version,
        expected=expected,
        current_status="archived" if template.archived else "active",
    )
    return template


def _touch(template: Template, actor_id: uuid.UUID, now: datetime) -> None:
    template.updated_at = now
    template.updated_by = actor_id
    template.row_version += 1


async def update_template(
    session: AsyncSession,
    *,
    org_id: uuid.UUID,
    actor_id: uuid.UUID,
    template_id: uuid.UUID,
    expected_row_version: ExpectedVersion | None,
    name: str | None = None,
    description: str | None = None,
) -> Template:
    template = await _for_write(
        session, org_id=org_id, template_id=template_id, expected=expected_row_version
    )
    if name is not None:
        template.name = name
    if description is not None:
        template.description = description
    _touch(template, actor_id, datetime.now(UTC))
    await session.flush()
    return template


async def set_archived(
    session: AsyncSession,
    *,
    org_id: uuid.UUID,
    actor_id: uuid.UUID,
    template_id: uuid.UUID,
    archived: bool,
    expected_row_version: ExpectedVersion | None,
) -> Template:
    """Archive (hidden from the default list, no new versions) or unarchive; idempotent."""
    template = await _for_write(
        session, org_id=org_id, template_id=template_id, expected=expected_row_version
    )
    if template.archived == archived:
        return template
    now = datetime.now(UTC)
    template.archived_at = now if archived else None
    template.archived_by = actor_id if archived else None
    _touch(template, actor_id, now)
    await session.flush()
    return template
