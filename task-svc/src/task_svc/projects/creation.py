"""Starting a project from a pinned template version: the request's own checks, the version
fetched from template-svc and planned, then every row in one transaction (a constant number of
bulk statements), its `project.created` event and the stored `Idempotency-Key` answer."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from contracts.tasks import ProjectCreatedV1, ProjectDeliverableV1
from servicekit import idempotency
from servicekit.auth import Principal
from servicekit.db import Database
from servicekit.errors import AppError
from servicekit.events import emit
from servicekit.idempotency import Answer, IdempotencyTable
from task_svc.db import outbox
from task_svc.graph.bootstrap import GraphPlan, SnapshotError, plan_graph
from task_svc.projects import bootstrap_sql, new_tasks, repository
from task_svc.projects.models import IdempotencyKey
from task_svc.projects.schemas import (
    DeliverableSummary,
    ProjectCreate,
    ProjectRead,
    StatusCounts,
    TemplateRef,
)
from task_svc.projects.service import progress
from task_svc.settings import Settings
from task_svc.tasks.history import SOURCE
from task_svc.templates_client import TemplateNotFound, TemplatesClient

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
    db: Database,
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
        # A replay answers before the slow part (the call to template-svc), read in a scope of
        # its own: the unit of work starts no transaction before the writes, so no connection
        # idles in one while template-svc answers.
        async with db.sessionmaker() as lookup:
            stored = await idempotency.find_answer(
                lookup, IDEMPOTENCY, org_id=org_id, key=key, req_hash=req_hash
            )
        if stored is not None:
            return stored
    _check_request(body, settings)
    names = body.deliverable_names()
    version = await _fetch_version(templates, org_id=org_id, body=body)
    plan = _plan_version(version, deliverables=len(names), settings=settings)

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


def _check_request(body: ProjectCreate, settings: Settings) -> None:
    """What the request says on its own: dates in order, deliverables within the limit."""
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


def _plan_version(version: dict[str, Any], *, deliverables: int, settings: Settings) -> GraphPlan:
    """The initial state of every node of the version, within the task limit."""
    nodes = version["nodes"]
    if not nodes:
        raise _invalid(
            "template_version", "the template version has no nodes", code="TEMPLATE_EMPTY"
        )
    task_total = len(nodes) * deliverables
    if task_total > settings.max_tasks_per_project:
        raise _invalid(
            "deliverables",
            f"{deliverables} deliverables x {len(nodes)} nodes = {task_total} tasks, more than "
            f"the limit of {settings.max_tasks_per_project} tasks per project",
            code="TOO_MANY_TASKS",
            limit=settings.max_tasks_per_project,
        )
    try:
        return plan_graph(nodes, version["edges"])
    except SnapshotError as exc:
        raise AppError(
            f"template-svc returned a graph that cannot be started: {exc}",
            code="TEMPLATE_GRAPH_INVALID",
            status=502,
        ) from exc


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
    stamps = await repository.insert_project(
        session, _project_row(project_id, principal=principal, body=body, version=version)
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
    graph = new_tasks.task_graph(
        version["nodes"],
        plan,
        deliverable_ids,
        start_at=body.start_at,
        now=now,
        actor=principal.sub,
    )
    await new_tasks.insert_task_graph(session, graph, org_id=org_id, project_id=project_id, now=now)
    deliverables = [
        (d_id, name, serial)
        for d_id, name, serial in zip(deliverable_ids, names, serial_list, strict=True)
    ]
    read = _created_read(
        project_id, principal=principal, body=body, version=version, plan=plan, now=now,
        updated_at=stamps.updated_at, deliverables=deliverables, task_count=len(graph.rows.ids),
    )  # fmt: skip
    await emit(
        session,
        outbox,
        _created_event(read, body=body),
        source=SOURCE,
        aggregate_type="project",
        aggregate_id=project_id,
    )
    return read


def _project_row(
    project_id: uuid.UUID, *, principal: Principal, body: ProjectCreate, version: dict[str, Any]
) -> dict[str, Any]:
    return {
        "id": project_id,
        "org_id": principal.org,
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
    }


def _created_read(
    project_id: uuid.UUID,
    *,
    principal: Principal,
    body: ProjectCreate,
    version: dict[str, Any],
    plan: GraphPlan,
    now: datetime,
    updated_at: datetime,
    deliverables: list[tuple[uuid.UUID, str, str]],
    task_count: int,
) -> ProjectRead:
    """The new project as `GET /api/v1/projects/{id}` would answer it."""
    per_deliverable = {s: plan.count(s) for s in ("blocked", "ready", "done")}
    counts = StatusCounts(**{s: c * len(deliverables) for s, c in per_deliverable.items()})
    return ProjectRead(
        id=project_id,
        org_id=principal.org,
        name=body.name,
        status="active",
        template=TemplateRef(
            id=uuid.UUID(str(version["template_id"])),
            key=str(version.get("key", "")),
            version=int(version["version"]),
            checksum=str(version.get("checksum", "")),
        ),
        start_at=body.start_at,
        due_at=body.due_at,
        row_version=1,
        created_at=now,
        created_by=principal.sub,
        updated_at=updated_at,
        completed_at=None,
        task_count=task_count,
        task_counts=counts,
        deliverables=[
            DeliverableSummary(
                id=d_id,
                name=name,
                position=i + 1,
                serial=serial,
                status="in_progress",
                row_version=1,
                task_counts=StatusCounts(**per_deliverable),
                progress=progress(per_deliverable),
            )
            for i, (d_id, name, serial) in enumerate(deliverables)
        ],
    )


def _created_event(read: ProjectRead, *, body: ProjectCreate) -> ProjectCreatedV1:
    return ProjectCreatedV1(
        project_id=read.id,
        org_id=read.org_id,
        name=read.name,
        template_id=read.template.id,
        template_key=read.template.key,
        template_version=read.template.version,
        template_checksum=read.template.checksum,
        start_at=body.start_at,
        due_at=body.due_at,
        created_by=read.created_by,
        deliverables=[
            ProjectDeliverableV1(id=d.id, name=d.name, serial=d.serial, position=d.position)
            for d in read.deliverables
        ],
        task_count=read.task_count,
        ready_count=read.task_counts.ready,
        blocked_count=read.task_counts.blocked,
    )
