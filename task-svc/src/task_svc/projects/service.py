"""Rules of projects: reading them and changing their status (starting one: `creation.py`)."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from contracts.tasks import (
    ProjectStatusChangedV1,
)
from servicekit.auth import Principal
from servicekit.conditional import ExpectedVersion, check_version
from servicekit.errors import Conflict, NotFound
from servicekit.events import emit
from servicekit.pagination import as_datetime, as_uuid, cut_page, decode_cursor, encode_cursor
from task_svc.db import outbox
from task_svc.projects import repository
from task_svc.projects.models import Project
from task_svc.projects.schemas import (
    DeliverableSummary,
    ProjectListItem,
    ProjectPage,
    ProjectRead,
    StatusCounts,
    TemplateRef,
)
from task_svc.tasks import history
from task_svc.tasks.fsm import RESOLVED

# Project status changes a planner may ask for: action -> (allowed sources, target).
STATUS_ACTIONS: dict[str, tuple[tuple[str, ...], str]] = {
    "hold": (("active",), "on_hold"),
    "resume": (("on_hold",), "active"),
    "cancel": (("active", "on_hold"), "cancelled"),
}


def progress(counts: dict[str, int]) -> float:
    """Resolved tasks / all tasks, from counts per status."""
    total = sum(counts.values())
    if total == 0:
        return 0.0
    return round(sum(counts.get(s, 0) for s in RESOLVED) / total, 4)


def _template_ref(p: Project) -> TemplateRef:
    return TemplateRef(
        id=p.template_id,
        key=p.template_key,
        version=p.template_version,
        checksum=p.template_checksum,
    )


async def get_project(
    session: AsyncSession,
    *,
    org_id: uuid.UUID,
    project_id: uuid.UUID,
    include_snapshot: bool = False,
) -> ProjectRead:
    project = await repository.get_project(
        session, org_id=org_id, project_id=project_id, with_snapshot=include_snapshot
    )
    if project is None:
        raise NotFound(f"project {project_id} does not exist", code="PROJECT_NOT_FOUND")
    deliverables = await repository.list_deliverables(session, org_id=org_id, project_id=project_id)
    counts = await repository.task_counts_by_deliverable(
        session, org_id=org_id, project_id=project_id
    )
    total: dict[str, int] = {}
    for per in counts.values():
        for s, c in per.items():
            total[s] = total.get(s, 0) + c
    return ProjectRead(
        id=project.id,
        org_id=project.org_id,
        name=project.name,
        status=project.status,
        template=_template_ref(project),
        start_at=project.start_at,
        due_at=project.due_at,
        row_version=project.row_version,
        created_at=project.created_at,
        created_by=project.created_by,
        updated_at=project.updated_at,
        completed_at=project.completed_at,
        task_count=sum(total.values()),
        task_counts=StatusCounts(**total),
        deliverables=[
            DeliverableSummary(
                id=d.id,
                name=d.name,
                position=d.position,
                serial=d.serial,
                status=d.status,
                row_version=d.row_version,
                task_counts=StatusCounts(**counts.get(d.id, {})),
                progress=progress(counts.get(d.id, {})),
            )
            for d in deliverables
        ],
        snapshot=project.snapshot if include_snapshot else None,
    )


async def list_projects(
    session: AsyncSession,
    *,
    org_id: uuid.UUID,
    statuses: list[str] | None,
    template_id: uuid.UUID | None,
    cursor: str | None,
    limit: int,
) -> ProjectPage:
    after = decode_cursor(cursor, as_datetime, as_uuid)
    fetched = await repository.list_projects(
        session,
        org_id=org_id,
        statuses=statuses,
        template_id=template_id,
        after=after,
        limit=limit + 1,
    )
    rows, last = cut_page(fetched, limit)
    items = [
        ProjectListItem(
            id=p.id,
            name=p.name,
            status=p.status,
            template=_template_ref(p),
            start_at=p.start_at,
            due_at=p.due_at,
            row_version=p.row_version,
            created_at=p.created_at,
            updated_at=p.updated_at,
        )
        for p in rows
    ]
    next_cursor = encode_cursor([last.created_at, last.id]) if last is not None else None
    return ProjectPage(items=items, next_cursor=next_cursor)


async def change_status(
    session: AsyncSession,
    *,
    principal: Principal,
    project_id: uuid.UUID,
    action: str,
    expected: ExpectedVersion,
    reason: str | None,
) -> ProjectRead:
    """hold / resume / cancel with optimistic locking (the row_version the caller read: a
    stale body version is a 409, a stale If-Match a 412)."""
    org_id = principal.org
    project = await repository.get_project(
        session, org_id=org_id, project_id=project_id, for_update=True
    )
    if project is None:
        raise NotFound(f"project {project_id} does not exist", code="PROJECT_NOT_FOUND")
    check_version(
        expected,
        current_row_version=project.row_version,
        current_status=project.status,
        what=f"project {project_id}",
    )
    sources, target = STATUS_ACTIONS[action]
    if project.status not in sources:
        raise Conflict(
            f"cannot {action} a project that is {project.status} (only from "
            f"{' or '.join(sources)})",
            code="PROJECT_STATUS_CONFLICT",
            current_status=project.status,
            current_row_version=project.row_version,
        )
    from_status = project.status
    stamps = await repository.set_project_status(session, project_id=project_id, status=target)
    event = ProjectStatusChangedV1(
        project_id=project_id,
        org_id=org_id,
        action=action,
        from_status=from_status,
        to_status=target,
        reason=reason,
        actor=principal.sub,
        row_version=stamps.row_version,
    )
    await emit(
        session,
        outbox,
        event,
        source=history.SOURCE,
        aggregate_type="project",
        aggregate_id=project_id,
    )
    session.expire(project)
    return await get_project(session, org_id=org_id, project_id=project_id)
