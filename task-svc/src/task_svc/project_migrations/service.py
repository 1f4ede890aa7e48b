"""Migration plans: the project's state read, the target version fetched from template-svc,
the pure planner run, the plan stored and answered; reads of plans and of applied migrations."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from servicekit.auth import Principal
from servicekit.errors import AppError, Conflict, NotFound
from servicekit.pagination import as_datetime, as_uuid, cut_page, decode_cursor, encode_cursor
from task_svc.graph.bootstrap import SnapshotError
from task_svc.project_migrations import planning, repository
from task_svc.project_migrations.plan_view import as_json, plan_body, plan_read
from task_svc.project_migrations.planning import (
    DeliverableState,
    Graph,
    MigrationPlan,
    Rules,
    RulesError,
    TaskState,
)
from task_svc.project_migrations.schemas import (
    MigrationPage,
    MigrationPlanCreate,
    MigrationPlanRead,
    MigrationRead,
    MigrationRules,
)
from task_svc.settings import Settings
from task_svc.templates_client import TemplateNotFound, TemplatesClient

MIGRATABLE = ("active", "on_hold")


def invalid(field: str, message: str, *, code: str, **extra: Any) -> AppError:
    return AppError(
        f"{field}: {message}",
        code=code,
        status=422,
        title="Request is not valid",
        errors=[{"in": "body", "field": field, "message": message}],
        **extra,
    )


def project_not_found(project_id: uuid.UUID) -> NotFound:
    return NotFound(f"project {project_id} not found", code="PROJECT_NOT_FOUND")


def check_migratable(project: dict[str, Any]) -> None:
    if project["status"] not in MIGRATABLE:
        raise Conflict(
            f"project {project['id']} is {project['status']}: only active or on-hold projects "
            "can move to another template version",
            code="PROJECT_STATUS_CONFLICT",
            current_status=project["status"],
        )


async def fetch_target(
    templates: TemplatesClient,
    *,
    org_id: uuid.UUID,
    template_id: uuid.UUID,
    version: int,
    field: str = "to_version",
) -> dict[str, Any]:
    """The target version from template-svc: published or deprecated, of this org."""
    try:
        target = await templates.get_version(
            org_id=org_id, template_id=template_id, version=version
        )
    except TemplateNotFound:
        raise invalid(
            field,
            f"template {template_id} has no version {version}",
            code="TEMPLATE_VERSION_NOT_FOUND",
        ) from None
    if str(target.get("org_id")) != str(org_id):
        raise invalid(
            field,
            f"template {template_id} has no version {version}",
            code="TEMPLATE_VERSION_NOT_FOUND",
        )
    if target.get("status") not in ("published", "deprecated"):
        raise invalid(
            field,
            f"version {version} of template {template_id} is a {target.get('status')}: publish "
            "it first",
            code="TEMPLATE_VERSION_NOT_PUBLISHED",
        )
    return target


def to_rules(rules: MigrationRules) -> Rules:
    return Rules(
        rename=dict(rules.rename),
        removed_started=rules.removed_started,
        blocker_added_to_started=rules.blocker_added_to_started,
        added_behind_started=rules.added_behind_started,
        update_finished=rules.update_finished,
    )


@dataclass
class ProjectState:
    project: dict[str, Any]
    tasks: list[TaskState]
    rows: dict[uuid.UUID, dict[str, Any]]
    deliverables: list[DeliverableState]
    edges: list[tuple[uuid.UUID, uuid.UUID]]


async def read_state(
    session: AsyncSession, *, org_id: uuid.UUID, project: dict[str, Any], lock: bool
) -> ProjectState:
    """The project's tasks, deliverables and dependencies (`lock`: tasks, then deliverables, in
    id order, then the project row: the fixed order of the write path)."""
    project_id = project["id"]
    rows = await repository.tasks(session, org_id=org_id, project_id=project_id, lock=lock)
    deliverables = await repository.deliverables(
        session, org_id=org_id, project_id=project_id, lock=lock
    )
    if lock:
        locked = await repository.project(session, org_id=org_id, project_id=project_id, lock=True)
        if locked is None:
            raise project_not_found(project_id)
        project = locked
    edges = await repository.edges(session, project_id=project_id)
    tasks = []
    for r in rows:
        fields = {f: r.get(f) for f in planning.NODE_FIELDS if f in r or f == "parent_key"}
        fields["qc_checklist"] = as_json(r["qc_checklist"]) or []
        fields["completed_at"] = r["completed_at"]
        fields["assigned_to"] = r["assigned_to"]
        tasks.append(
            TaskState(
                r["id"],
                r["deliverable_id"],
                r["node_key"],
                r["status"],
                r["open_blockers"],
                r["row_version"],
                fields,
            )
        )
    return ProjectState(
        project=project,
        tasks=tasks,
        rows={r["id"]: r for r in rows},
        deliverables=[
            DeliverableState(d["id"], d["status"], d["name"], d["serial"]) for d in deliverables
        ],
        edges=edges,
    )


def compute(state: ProjectState, target: dict[str, Any], rules: Rules) -> MigrationPlan:
    project = state.project
    snapshot = as_json(project["snapshot"])
    try:
        return planning.plan_migration(
            old=Graph.of(snapshot),
            new=Graph.of(target),
            rules=rules,
            tasks=state.tasks,
            deliverables=state.deliverables,
            edges=state.edges,
            start_at=project["start_at"],
        )
    except RulesError as exc:
        raise invalid(exc.field, str(exc), code=exc.code) from None
    except SnapshotError as exc:
        raise AppError(
            f"the target version's graph cannot be used: {exc}",
            code="TEMPLATE_GRAPH_INVALID",
            status=502,
        ) from exc


# ---------------------------------------------------------------------------------------------
# Use cases


async def create_plan(
    session: AsyncSession,
    *,
    principal: Principal,
    project_id: uuid.UUID,
    body: MigrationPlanCreate,
    templates: TemplatesClient,
    settings: Settings,
) -> MigrationPlanRead:
    """Plan the move of a project to `body.to_version` and store the plan."""
    org_id = principal.org
    project = await repository.project(session, org_id=org_id, project_id=project_id)
    if project is None:
        raise project_not_found(project_id)
    check_migratable(project)
    target = await fetch_target(
        templates, org_id=org_id, template_id=project["template_id"], version=body.to_version
    )
    state = await read_state(session, org_id=org_id, project=project, lock=False)
    plan = compute(state, target, to_rules(body.rules))
    content = plan_body(plan)
    now = await db_now(session)
    row = {
        "id": uuid.uuid4(),
        "org_id": org_id,
        "project_id": project_id,
        "from_version": project["template_version"],
        "to_version": body.to_version,
        "rules": body.rules.model_dump(mode="json"),
        "target": target,
        "content": content,
        "project_row_version": project["row_version"],
        "task_versions": {str(t.id): t.row_version for t in state.tasks},
        "blocking_conflicts": len(plan.conflicts),
        "created_by": principal.sub,
        "created_at": now,
        "expires_at": now + timedelta(seconds=settings.migration_plan_ttl_seconds),
    }
    await repository.insert_plan(session, row)
    return plan_read({**row, "migration_id": None}, template_id=project["template_id"], now=now)


async def db_now(session: AsyncSession) -> datetime:
    now: datetime = (await session.execute(text("SELECT now()"))).scalar_one()
    return now


async def get_plan(
    session: AsyncSession, *, org_id: uuid.UUID, project_id: uuid.UUID, plan_id: uuid.UUID
) -> MigrationPlanRead:
    project = await repository.project(session, org_id=org_id, project_id=project_id)
    row = await repository.plan(session, org_id=org_id, plan_id=plan_id)
    if project is None or row is None or row["project_id"] != project_id:
        raise NotFound(
            f"migration plan {plan_id} not found for project {project_id}",
            code="MIGRATION_PLAN_NOT_FOUND",
        )
    return plan_read(row, template_id=project["template_id"], now=await db_now(session))


def migration_read(row: dict[str, Any]) -> MigrationRead:
    snapshot = row.get("previous_snapshot")
    return MigrationRead(
        id=row["id"],
        project_id=row["project_id"],
        plan_id=row["plan_id"],
        job_id=row["job_id"],
        from_version=row["from_version"],
        to_version=row["to_version"],
        counts=as_json(row["counts"]),
        applied_by=row["applied_by"],
        applied_at=row["applied_at"],
        previous_snapshot=as_json(snapshot) if snapshot is not None else None,
    )


async def list_migrations(
    session: AsyncSession,
    *,
    org_id: uuid.UUID,
    project_id: uuid.UUID,
    cursor: str | None,
    limit: int,
    include_snapshot: bool,
) -> MigrationPage:
    after = decode_cursor(cursor, as_datetime, as_uuid)
    project = await repository.project(session, org_id=org_id, project_id=project_id)
    if project is None:
        raise project_not_found(project_id)
    rows = await repository.migrations(
        session,
        org_id=org_id,
        project_id=project_id,
        after=(after[0], after[1]) if after else None,
        limit=limit + 1,
        include_snapshot=include_snapshot,
    )
    page, last = cut_page(rows, limit)
    return MigrationPage(
        items=[migration_read(r) for r in page],
        next_cursor=encode_cursor([last["applied_at"], last["id"]]) if last else None,
    )
