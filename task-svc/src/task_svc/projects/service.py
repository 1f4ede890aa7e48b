"""Rules of projects: starting one from a pinned template version, reading, status changes."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from contracts.tasks import (
    ProjectCreatedV1,
    ProjectDeliverableV1,
    ProjectStatusChangedV1,
)
from servicekit import idempotency
from servicekit.auth import Principal
from servicekit.context import current_trace_ids, request_id_var
from servicekit.errors import AppError, Conflict, NotFound, VersionConflict
from servicekit.events import emit
from servicekit.idempotency import Answer, IdempotencyTable
from servicekit.jsonutil import dumps
from servicekit.pagination import as_datetime, as_uuid, cut_page, decode_cursor, encode_cursor
from task_svc.db import outbox
from task_svc.graph.bootstrap import GraphPlan, SnapshotError, due_at, plan_graph
from task_svc.projects import bootstrap_sql, repository
from task_svc.projects.models import IdempotencyKey, Project
from task_svc.projects.schemas import (
    DeliverableSummary,
    ProjectCreate,
    ProjectListItem,
    ProjectPage,
    ProjectRead,
    StatusCounts,
    TemplateRef,
)
from task_svc.settings import Settings
from task_svc.templates_client import TemplateNotFound, TemplatesClient

SOURCE = "task-svc"
RESOLVED = ("done", "cancelled")

# Project status changes a planner may ask for: action -> (allowed sources, target).
STATUS_ACTIONS: dict[str, tuple[tuple[str, ...], str]] = {
    "hold": (("active",), "on_hold"),
    "resume": (("on_hold",), "active"),
    "cancel": (("active", "on_hold"), "cancelled"),
}


IDEMPOTENCY = IdempotencyTable(IdempotencyKey.__table__)


def _invalid(field: str, message: str, *, code: str, status: int = 422, **extra: Any) -> AppError:
    return AppError(
        f"{field}: {message}",
        code=code,
        status=status,
        title="Request is not valid",
        errors=[{"in": "body", "field": field, "message": message}],
        **extra,
    )


async def create_project(
    session: AsyncSession,
    *,
    principal: Principal,
    body: ProjectCreate,
    idempotency_key: str | None,
    templates: TemplatesClient,
    settings: Settings,
) -> Answer:
    """Start a project: fetch the pinned version, then create everything in this transaction."""
    org_id = principal.org
    key = idempotency.check_key(idempotency_key)
    req_hash = idempotency.request_hash("POST /api/v1/projects", body.model_dump_json().encode())
    if key is not None:
        # A replay answers before the slow part (the call to template-svc).
        stored = await idempotency.find_answer(
            session, IDEMPOTENCY, org_id=org_id, key=key, req_hash=req_hash
        )
        if stored is not None:
            return stored
        # Nothing written yet: end the read so no connection idles in a transaction while
        # template-svc answers (the writes below start a fresh one).
        await session.rollback()

    if body.due_at is not None and body.due_at < body.start_at:
        raise _invalid(
            "due_at",
            f"must not be before start_at ({body.start_at.isoformat()}), got "
            f"{body.due_at.isoformat()}",
            code="DUE_BEFORE_START",
        )
    if body.deliverable_count > settings.max_deliverables:
        raise _invalid(
            "deliverables",
            f"at most {settings.max_deliverables} deliverables per project, got "
            f"{body.deliverable_count}",
            code="TOO_MANY_DELIVERABLES",
            limit=settings.max_deliverables,
        )
    names = body.deliverable_names()

    version = await _fetch_version(templates, org_id=org_id, body=body)
    nodes = version["nodes"]
    if not nodes:
        raise _invalid(
            "template_version", "the template version has no nodes", code="TEMPLATE_EMPTY"
        )
    task_total = len(nodes) * len(names)
    if task_total > settings.max_tasks_per_project:
        raise _invalid(
            "deliverables",
            f"{len(names)} deliverables x {len(nodes)} nodes = {task_total} tasks, more than "
            f"the limit of {settings.max_tasks_per_project} tasks per project",
            code="TOO_MANY_TASKS",
            limit=settings.max_tasks_per_project,
        )
    try:
        plan = plan_graph(nodes, version["edges"])
    except SnapshotError as exc:
        raise AppError(
            f"template-svc returned a graph that cannot be started: {exc}",
            code="TEMPLATE_GRAPH_INVALID",
            status=502,
        ) from exc

    async def create() -> tuple[dict[str, Any], dict[str, str]]:
        read = await _bootstrap(
            session,
            principal=principal,
            body=body,
            names=names,
            version=version,
            plan=plan,
            settings=settings,
        )
        return read.model_dump(mode="json"), {}

    # Serialises requests with the same key and looks again: the first one may have won.
    return await idempotency.run_idempotent(
        session, IDEMPOTENCY, org_id=org_id, key=key, req_hash=req_hash, create=create
    )


async def _fetch_version(
    templates: TemplatesClient, *, org_id: uuid.UUID, body: ProjectCreate
) -> dict[str, Any]:
    which = body.template_version
    try:
        version = await templates.get_version(
            org_id=org_id, template_id=body.template_id, version=which
        )
    except TemplateNotFound:
        if which is None:
            raise _invalid(
                "template_id",
                f"template {body.template_id} does not exist in this org or has no published "
                "version",
                code="TEMPLATE_NOT_FOUND",
            ) from None
        raise _invalid(
            "template_version",
            f"template {body.template_id} has no version {which} in this org",
            code="TEMPLATE_VERSION_NOT_FOUND",
        ) from None
    if str(version.get("org_id")) != str(org_id):
        raise _invalid(
            "template_id",
            f"template {body.template_id} does not exist in this org",
            code="TEMPLATE_NOT_FOUND",
        )
    status = version.get("status")
    number = version.get("version")
    if status == "draft":
        raise _invalid(
            "template_version",
            f"version {number} of template {body.template_id} is a draft: publish it first",
            code="TEMPLATE_VERSION_NOT_PUBLISHED",
        )
    if status == "deprecated" and not body.allow_deprecated:
        raise _invalid(
            "template_version",
            f"version {number} of template {body.template_id} is deprecated: pick a newer "
            "version, or send allow_deprecated: true to start from it anyway",
            code="TEMPLATE_VERSION_DEPRECATED",
        )
    if status not in ("published", "deprecated"):
        raise AppError(
            f"template-svc returned version {number} with an unknown status {status!r}",
            code="TEMPLATE_SVC_ERROR",
            status=502,
        )
    return version


def _decimal(value: Any) -> Decimal | None:
    return None if value is None else Decimal(str(value))


async def _bootstrap(
    session: AsyncSession,
    *,
    principal: Principal,
    body: ProjectCreate,
    names: list[str],
    version: dict[str, Any],
    plan: GraphPlan,
    settings: Settings,
) -> ProjectRead:
    """Every row of the new project, a constant number of bulk statements."""
    org_id = principal.org
    project_id = uuid.uuid4()
    nodes: list[dict[str, Any]] = version["nodes"]
    stamps = await repository.insert_project(
        session,
        {
            "id": project_id,
            "org_id": org_id,
            "name": body.name,
            "template_id": uuid.UUID(str(version["template_id"])),
            "template_key": str(version.get("key", "")),
            "template_version": int(version["version"]),
            "template_checksum": str(version.get("checksum", "")),
            "snapshot": version,
            "status": "active",
            "start_at": body.start_at,
            "due_at": body.due_at,
            "row_version": 1,
            "created_by": principal.sub,
        },
    )
    now: datetime = stamps.created_at

    serials = await bootstrap_sql.allocate_serials(
        session,
        org_id=org_id,
        count=len(names),
        prefix=settings.serial_prefix,
        format=settings.serial_format,
    )
    deliverable_ids = [uuid.uuid4() for _ in names]
    serial_list = [serials.serial(i) for i in range(len(names))]
    await bootstrap_sql.insert_deliverables(
        session,
        org_id=org_id,
        project_id=project_id,
        now=now,
        ids=deliverable_ids,
        names=names,
        serials=serial_list,
    )

    # Per node, the values every deliverable shares.
    checklists = [dumps(n.get("qc_checklist") or []).decode() for n in nodes]
    dues = [due_at(body.start_at, p.due_offset_hours) for p in plan.nodes]
    estimates = [_decimal(n.get("estimate_hours")) for n in nodes]

    rows = bootstrap_sql.TaskRows()
    events = bootstrap_sql.EventRows()
    dep_tasks: list[uuid.UUID] = []
    dep_blockers: list[uuid.UUID] = []
    actor = principal.sub
    for deliverable_id in deliverable_ids:
        ids = [uuid.uuid4() for _ in nodes]
        for p in plan.nodes:
            node = nodes[p.index]
            task_id = ids[p.index]
            rows.ids.append(task_id)
            rows.deliverable_ids.append(deliverable_id)
            rows.node_keys.append(p.key)
            rows.titles.append(str(node["title"]))
            rows.descriptions.append(str(node.get("description") or ""))
            rows.kinds.append(str(node.get("kind") or "task"))
            rows.work_kinds.append(str(node.get("work_kind") or "work"))
            rows.priorities.append(int(node.get("priority") or 0))
            rows.statuses.append(p.status)
            rows.due_ats.append(dues[p.index])
            rows.completed_ats.append(now if p.auto_completed else None)
            rows.qc_requireds.append(bool(node.get("qc_required")))
            rows.qc_checklists.append(checklists[p.index])
            rows.parent_ids.append(ids[p.parent] if p.parent is not None else None)
            rows.open_blockers.append(p.open_blockers)
            rows.estimates.append(estimates[p.index])
            rows.role_hints.append(node.get("role_hint"))
            rows.row_versions.append(2 if p.auto_completed else 1)
            for b in p.blockers:
                dep_tasks.append(task_id)
                dep_blockers.append(ids[b])
            events.add(
                task_id,
                "create",
                None,
                p.initial_status,
                actor,
                {
                    "status": p.initial_status,
                    "open_blockers": p.open_blockers,
                    "assigned_to": None,
                    "node_key": p.key,
                },
                1,
            )
            if p.auto_completed:
                events.add(task_id, "auto_complete", "ready", "done", "system", {}, 2)

    await bootstrap_sql.insert_tasks(
        session, org_id=org_id, project_id=project_id, now=now, rows=rows
    )
    await bootstrap_sql.insert_dependencies(
        session, project_id=project_id, task_ids=dep_tasks, blocker_ids=dep_blockers
    )
    trace_id, _span = current_trace_ids()
    await bootstrap_sql.insert_events(
        session,
        org_id=org_id,
        now=now,
        request_id=request_id_var.get(),
        trace_id=trace_id,
        rows=events,
    )

    per_deliverable = {s: plan.count(s) for s in ("blocked", "ready", "done")}
    counts = StatusCounts(**{s: c * len(names) for s, c in per_deliverable.items()})
    template = TemplateRef(
        id=uuid.UUID(str(version["template_id"])),
        key=str(version.get("key", "")),
        version=int(version["version"]),
        checksum=str(version.get("checksum", "")),
    )
    read = ProjectRead(
        id=project_id,
        org_id=org_id,
        name=body.name,
        status="active",
        template=template,
        start_at=body.start_at,
        due_at=body.due_at,
        row_version=1,
        created_at=now,
        created_by=principal.sub,
        updated_at=stamps.updated_at,
        completed_at=None,
        task_count=len(rows.ids),
        task_counts=counts,
        deliverables=[
            DeliverableSummary(
                id=d_id,
                name=name,
                position=i + 1,
                serial=serial_list[i],
                status="in_progress",
                row_version=1,
                task_counts=StatusCounts(**per_deliverable),
                progress=_progress(per_deliverable),
            )
            for i, (d_id, name) in enumerate(zip(deliverable_ids, names, strict=True))
        ],
    )
    event = ProjectCreatedV1(
        project_id=project_id,
        org_id=org_id,
        name=body.name,
        template_id=template.id,
        template_key=template.key,
        template_version=template.version,
        template_checksum=template.checksum,
        start_at=body.start_at,
        due_at=body.due_at,
        created_by=principal.sub,
        deliverables=[
            ProjectDeliverableV1(id=d.id, name=d.name, serial=d.serial, position=d.position)
            for d in read.deliverables
        ],
        task_count=read.task_count,
        ready_count=counts.ready,
        blocked_count=counts.blocked,
    )
    await emit(
        session, outbox, event, source=SOURCE, aggregate_type="project", aggregate_id=project_id
    )
    return read


def _progress(counts: dict[str, int]) -> float:
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
                progress=_progress(counts.get(d.id, {})),
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
    expected_row_version: int,
    reason: str | None,
) -> ProjectRead:
    """hold / resume / cancel with optimistic locking (the row_version the caller read)."""
    org_id = principal.org
    expected = expected_row_version
    project = await repository.get_project(
        session, org_id=org_id, project_id=project_id, for_update=True
    )
    if project is None:
        raise NotFound(f"project {project_id} does not exist", code="PROJECT_NOT_FOUND")
    if project.row_version != expected:
        raise VersionConflict(
            f"project {project_id} is at row_version {project.row_version}, not {expected}: "
            "read it again and retry",
            current_row_version=project.row_version,
            current_status=project.status,
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
        session, outbox, event, source=SOURCE, aggregate_type="project", aggregate_id=project_id
    )
    session.expire(project)
    return await get_project(session, org_id=org_id, project_id=project_id)
