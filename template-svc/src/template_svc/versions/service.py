"""Rules of template versions: drafts, publishing (validate and freeze), deprecation, diffs."""

from __future__ import annotations

import copy
import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from contracts.templates import TemplateVersionPublishedV1
from servicekit.conditional import ExpectedVersion, check_version
from servicekit.errors import Conflict, NotFound, Unprocessable
from servicekit.events.publish import emit
from servicekit.pagination import as_int, cut_page, decode_cursor, encode_cursor
from template_svc.db import outbox
from template_svc.graph.canonical import checksum
from template_svc.graph.diff import diff_graphs
from template_svc.graph.validation import Problem, validate_graph
from template_svc.templates import repository as template_repo
from template_svc.templates.models import Template
from template_svc.versions import repository as version_repo
from template_svc.versions.models import DEPRECATED, DRAFT, PUBLISHED, TemplateVersion

SOURCE = "template-svc"
EMPTY_GRAPH: dict[str, Any] = {"nodes": [], "edges": []}


def template_not_found(template_id: uuid.UUID) -> NotFound:
    return NotFound(f"template {template_id} does not exist", code="TEMPLATE_NOT_FOUND")


def version_not_found(template_id: uuid.UUID, version: int | str) -> NotFound:
    return NotFound(f"template {template_id} has no version {version}", code="VERSION_NOT_FOUND")


def check_row_version(
    *, what: str, current: int, expected: ExpectedVersion | None, current_status: str
) -> None:
    check_version(expected, current_row_version=current, current_status=current_status, what=what)


def validate(graph: dict[str, Any]) -> list[Problem]:
    """Dry-run validation of a graph, nothing saved."""
    return validate_graph(graph)


async def get_template(
    session: AsyncSession, *, org_id: uuid.UUID, template_id: uuid.UUID, for_update: bool = False
) -> Template:
    template = await template_repo.get(
        session, org_id=org_id, template_id=template_id, for_update=for_update
    )
    if template is None:
        raise template_not_found(template_id)
    return template


async def _writable_template(
    session: AsyncSession, *, org_id: uuid.UUID, template_id: uuid.UUID
) -> Template:
    # The template row lock also serialises version numbering of concurrent drafts.
    template = await get_template(session, org_id=org_id, template_id=template_id, for_update=True)
    if template.archived_at is not None:
        raise Conflict(
            f"template {template.key!r} is archived: unarchive it before adding versions",
            code="TEMPLATE_ARCHIVED",
        )
    return template


async def create_draft(
    session: AsyncSession,
    *,
    org_id: uuid.UUID,
    actor_id: uuid.UUID,
    template_id: uuid.UUID,
    graph: dict[str, Any] | None = None,
    clone_from: int | None = None,
    changelog: str = "",
    template: Template | None = None,
) -> TemplateVersion:
    """A new draft numbered after the highest version: empty, cloned, or with `graph`."""
    if template is None:
        template = await _writable_template(session, org_id=org_id, template_id=template_id)
    if clone_from is not None:
        source = await version_repo.get(
            session, org_id=org_id, template_id=template_id, version=clone_from
        )
        if source is None:
            raise NotFound(
                f"clone_from: template {template_id} has no version {clone_from}",
                code="VERSION_NOT_FOUND",
            )
        graph = copy.deepcopy(source.graph)
    graph = graph if graph is not None else copy.deepcopy(EMPTY_GRAPH)
    now = datetime.now(UTC)
    row = TemplateVersion(
        id=uuid.uuid4(),
        template_id=template.id,
        org_id=org_id,
        version=await version_repo.max_version(session, template_id=template.id) + 1,
        status=DRAFT,
        changelog=changelog,
        graph=graph,
        node_count=len(graph["nodes"]),
        edge_count=len(graph["edges"]),
        cloned_from=clone_from,
        row_version=1,
        created_at=now,
        created_by=actor_id,
        updated_at=now,
        updated_by=actor_id,
    )
    session.add(row)
    await session.flush()
    return row


async def _draft_for_write(
    session: AsyncSession,
    *,
    org_id: uuid.UUID,
    template_id: uuid.UUID,
    version: int,
    expected_row_version: ExpectedVersion | None,
) -> TemplateVersion:
    row = await get_version(
        session, org_id=org_id, template_id=template_id, version=version, for_update=True
    )
    if row.status != DRAFT:
        raise Conflict(
            f"version {version} is {row.status}: a published version never changes; "
            "create a new draft (clone_from it) instead",
            code="VERSION_NOT_DRAFT",
            current_status=row.status,
        )
    check_row_version(
        what=f"version {version}",
        current=row.row_version,
        expected=expected_row_version,
        current_status=row.status,
    )
    return row


async def replace_draft(
    session: AsyncSession,
    *,
    org_id: uuid.UUID,
    actor_id: uuid.UUID,
    template_id: uuid.UUID,
    version: int,
    expected_row_version: ExpectedVersion,
    graph: dict[str, Any],
    changelog: str | None = None,
) -> TemplateVersion:
    row = await _draft_for_write(
        session,
        org_id=org_id,
        template_id=template_id,
        version=version,
        expected_row_version=expected_row_version,
    )
    row.graph = graph
    row.node_count = len(graph["nodes"])
    row.edge_count = len(graph["edges"])
    if changelog is not None:
        row.changelog = changelog
    _touch(row, actor_id)
    await session.flush()
    return row


async def publish(
    session: AsyncSession,
    *,
    org_id: uuid.UUID,
    actor_id: uuid.UUID,
    template_id: uuid.UUID,
    version: int,
    expected_row_version: ExpectedVersion | None = None,
) -> TemplateVersion:
    """Validate the draft and freeze it; writes `template.version.published` to the outbox."""
    template = await get_template(session, org_id=org_id, template_id=template_id)
    if template.archived_at is not None:
        raise Conflict(
            f"template {template.key!r} is archived: unarchive it before publishing",
            code="TEMPLATE_ARCHIVED",
        )
    row = await _draft_for_write(
        session,
        org_id=org_id,
        template_id=template_id,
        version=version,
        expected_row_version=expected_row_version,
    )
    problems = validate_graph(row.graph)
    if problems:
        raise Unprocessable(
            f"version {version} cannot be published: {len(problems)} problem(s): "
            + "; ".join(p.message for p in problems[:5])
            + (f"; and {len(problems) - 5} more" if len(problems) > 5 else ""),
            code="GRAPH_INVALID",
            problems=[p.as_dict() for p in problems],
        )
    now = datetime.now(UTC)
    row.status = PUBLISHED
    row.checksum = checksum(row.graph)
    row.published_at = now
    row.published_by = actor_id
    _touch(row, actor_id, now)
    await session.flush()
    payload = TemplateVersionPublishedV1(
        template_id=template.id,
        org_id=org_id,
        key=template.key,
        version=row.version,
        checksum=row.checksum,
        published_at=now,
        published_by=actor_id,
    )
    await emit(
        session,
        outbox,
        payload,
        source=SOURCE,
        aggregate_type="template_version",
        aggregate_id=row.id,
    )
    return row


async def deprecate(
    session: AsyncSession,
    *,
    org_id: uuid.UUID,
    actor_id: uuid.UUID,
    template_id: uuid.UUID,
    version: int,
    expected_row_version: ExpectedVersion | None = None,
) -> TemplateVersion:
    """Published -> deprecated: no new projects should start from it (existing ones keep it)."""
    row = await get_version(
        session, org_id=org_id, template_id=template_id, version=version, for_update=True
    )
    if row.status != PUBLISHED:
        raise Conflict(
            f"version {version} is {row.status}: only a published version can be deprecated",
            code="VERSION_NOT_PUBLISHED",
            current_status=row.status,
        )
    check_row_version(
        what=f"version {version}",
        current=row.row_version,
        expected=expected_row_version,
        current_status=row.status,
    )
    now = datetime.now(UTC)
    row.status = DEPRECATED
    row.deprecated_at = now
    row.deprecated_by = actor_id
    _touch(row, actor_id, now)
    await session.flush()
    return row


def _touch(row: TemplateVersion, actor_id: uuid.UUID, now: datetime | None = None) -> None:
    row.updated_at = now or datetime.now(UTC)
    row.updated_by = actor_id
    row.row_version += 1


async def get_version(
    session: AsyncSession,
    *,
    org_id: uuid.UUID,
    template_id: uuid.UUID,
    version: int,
    for_update: bool = False,
) -> TemplateVersion:
    row = await version_repo.get(
        session, org_id=org_id, template_id=template_id, version=version, for_update=for_update
    )
    if row is None:
        if await template_repo.get(session, org_id=org_id, template_id=template_id) is None:
            raise template_not_found(template_id)
        raise version_not_found(template_id, version)
    return row


async def get_with_template(
    session: AsyncSession, *, org_id: uuid.UUID, template_id: uuid.UUID, version: int | None
) -> tuple[Template, TemplateVersion]:
    """The template and one of its versions; `version=None` means the latest published one."""
    template = await get_template(session, org_id=org_id, template_id=template_id)
    if version is None:
        row = await version_repo.latest_published(session, org_id=org_id, template_id=template_id)
        if row is None:
            raise NotFound(
                f"template {template_id} has no published version yet", code="VERSION_NOT_FOUND"
            )
    else:
        row = await get_version(session, org_id=org_id, template_id=template_id, version=version)
    return template, row


async def list_versions(
    session: AsyncSession,
    *,
    org_id: uuid.UUID,
    template_id: uuid.UUID,
    status: str | None,
    cursor: str | None,
    limit: int,
) -> tuple[list[TemplateVersion], str | None]:
    """A page of versions, newest first, and the cursor of the next page (None on the last)."""
    await get_template(session, org_id=org_id, template_id=template_id)
    after = decode_cursor(cursor, as_int)
    rows, last = cut_page(
        await version_repo.list_page(
            session,
            org_id=org_id,
            template_id=template_id,
            status=status,
            before_version=after[0] if after else None,
            limit=limit,
        ),
        limit,
    )
    return rows, encode_cursor([last.version]) if last is not None else None


async def diff_versions(
    session: AsyncSession,
    *,
    org_id: uuid.UUID,
    template_id: uuid.UUID,
    from_version: int,
    to_version: int,
) -> dict[str, Any]:
    old = await get_version(session, org_id=org_id, template_id=template_id, version=from_version)
    new = await get_version(session, org_id=org_id, template_id=template_id, version=to_version)
    return {
        "template_id": template_id,
        "from_version": from_version,
        "to_version": to_version,
        **diff_graphs(old.graph, new.graph),
    }


async def export_document(
    session: AsyncSession, *, org_id: uuid.UUID, template_id: uuid.UUID, version: int
) -> tuple[Template, dict[str, Any]]:
    template, row = await get_with_template(
        session, org_id=org_id, template_id=template_id, version=version
    )
    return template, {
        "format": "blueprint.template-version/v1",
        "template": {
            "key": template.key,
            "name": template.name,
            "description": template.description,
        },
        "version": row.version,
        "status": row.status,
        "checksum": row.checksum,
        "changelog": row.changelog,
        "nodes": row.graph["nodes"],
        "edges": row.graph["edges"],
    }
