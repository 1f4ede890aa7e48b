"""Applying a migration: ONE transaction per project, on rows locked in the fixed order.

The plan is computed again on the locked rows (the same pure planner), so what is written is
exactly what was planned when nothing changed since; `apply_plan` refuses with what changed
otherwise. Every write is one bulk statement per kind of row: new tasks, task updates,
dependencies removed and added, every task event and outbox row, deliverables (through the
cascade code), the project's snapshot and version, and the audit row keeping the snapshot it
replaced.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from contracts.tasks import ProjectMigratedV1, TaskStatusChangedV1
from servicekit import idempotency
from servicekit.auth import Principal
from servicekit.conditional import check_version, required_version
from servicekit.db import Database
from servicekit.errors import Conflict
from servicekit.idempotency import Answer
from servicekit.jsonutil import dumps
from task_svc.project_migrations import repository
from task_svc.project_migrations.events import PlannedEvent, TaskEvents, deliverable_events
from task_svc.project_migrations.planning import DeliverablePlan, MigrationPlan, Rules
from task_svc.project_migrations.schemas import MigrationApply, MigrationRead, MigrationRules
from task_svc.project_migrations.service import (
    ProjectState,
    as_json,
    check_migratable,
    compute,
    counts,
    db_now,
    invalid,
    project_not_found,
    read_state,
    to_rules,
)
from task_svc.projects import bootstrap_sql
from task_svc.projects.creation import IDEMPOTENCY
from task_svc.tasks import cascades
from task_svc.tasks import repository as task_repository
from task_svc.tasks.history import SYSTEM_ACTOR, EventRow, History, task_event_fields

STALE_LISTED = 50


def conflicts_problem(plan: MigrationPlan) -> Conflict:
    return Conflict(
        f"the plan has {len(plan.conflicts)} conflict(s) the rules do not settle: make a new "
        "plan with rules for them",
        code="MIGRATION_PLAN_HAS_CONFLICTS",
        blocking_conflicts=[
            {
                "code": c.code,
                "node_key": c.node_key,
                "task_id": str(c.task_id) if c.task_id else None,
                "deliverable_id": str(c.deliverable_id),
                "message": c.message,
                "settle_with": c.settle_with,
            }
            for c in plan.conflicts[:STALE_LISTED]
        ],
    )


class _Writes:
    """The rows of one migration, collected per kind and written in bulk."""

    def __init__(self) -> None:
        self.updates: dict[str, list[Any]] = {
            k: []
            for k in (
                "ids",
                "node_keys",
                "titles",
                "descriptions",
                "kinds",
                "work_kinds",
                "priorities",
                "estimates",
                "due_ats",
                "role_hints",
                "qc_requireds",
                "qc_checklists",
                "parent_ids",
                "statuses",
                "open_blockers",
                "completed_ats",
                "row_versions",
            )
        }
        self.new = bootstrap_sql.TaskRows()
        self.history = History()

    def update(
        self,
        task_id: uuid.UUID,
        node_key: str,
        f: dict[str, Any],
        parent_id: uuid.UUID | None,
        status: str,
        open_blockers: int,
        completed_at: datetime | None,
        row_version: int,
    ) -> None:
        u = self.updates
        u["ids"].append(task_id)
        u["node_keys"].append(node_key)
        u["titles"].append(f["title"])
        u["descriptions"].append(f["description"] or "")
        u["kinds"].append(f["kind"])
        u["work_kinds"].append(f["work_kind"])
        u["priorities"].append(int(f["priority"] or 0))
        u["estimates"].append(
            None if f["estimate_hours"] is None else Decimal(str(f["estimate_hours"]))
        )
        u["due_ats"].append(f["due_at"])
        u["role_hints"].append(f["role_hint"])
        u["qc_requireds"].append(bool(f["qc_required"]))
        u["qc_checklists"].append(dumps(f["qc_checklist"] or []).decode())
        u["parent_ids"].append(parent_id)
        u["statuses"].append(status)
        u["open_blockers"].append(open_blockers)
        u["completed_ats"].append(completed_at)
        u["row_versions"].append(row_version)

    def insert(
        self,
        task_id: uuid.UUID,
        deliverable_id: uuid.UUID,
        node_key: str,
        f: dict[str, Any],
        parent_id: uuid.UUID | None,
        status: str,
        open_blockers: int,
        completed_at: datetime | None,
        row_version: int,
    ) -> None:
        r = self.new
        r.ids.append(task_id)
        r.deliverable_ids.append(deliverable_id)
        r.node_keys.append(node_key)
        r.titles.append(f["title"])
        r.descriptions.append(f["description"] or "")
        r.kinds.append(f["kind"])
        r.work_kinds.append(f["work_kind"])
        r.priorities.append(int(f["priority"] or 0))
        r.statuses.append(status)
        r.due_ats.append(f["due_at"])
        r.completed_ats.append(completed_at)
        r.qc_requireds.append(bool(f["qc_required"]))
        r.qc_checklists.append(dumps(f["qc_checklist"] or []).decode())
        r.parent_ids.append(parent_id)
        r.open_blockers.append(open_blockers)
        r.estimates.append(f["estimate_hours"])
        r.role_hints.append(f["role_hint"])
        r.row_versions.append(row_version)


def _record(writes: _Writes, row: dict[str, Any], events: TaskEvents, now: datetime) -> None:
    """A task's events into the history; its status changes into the outbox."""
    for e in events.events:
        writes.history.events.append(
            EventRow(
                row["org_id"],
                e.task_id,
                e.action,
                e.from_status,
                e.to_status,
                e.actor,
                e.payload,
                e.row_version,
            )
        )
        if e.from_status is None or e.from_status == e.to_status:
            continue
        base = task_event_fields(row, row_version=e.row_version, now=now)
        writes.history.publish(
            TaskStatusChangedV1(
                **base,
                action=e.action,
                from_status=e.from_status,
                to_status=e.to_status,
                actor=e.actor,
                assigned_to=row.get("assigned_to"),
                payload=_brief(e),
            ),
            aggregate_type="task",
            aggregate_id=e.task_id,
        )


def _brief(e: PlannedEvent) -> dict[str, Any]:
    return {k: v for k, v in e.payload.items() if k in ("migration_id", "reason", "to_version")}


def _deliverable_rows(
    writes: _Writes,
    d: DeliverablePlan,
    *,
    org_id: uuid.UUID,
    project_id: uuid.UUID,
    meta: dict[str, Any],
    actor: str,
    now: datetime,
) -> None:
    events = deliverable_events(d, migration=meta, actor=actor, system_actor=SYSTEM_ACTOR)
    key_to_id = {o.node_key: o.task.id for o in d.outcomes if o.kind == "kept"}
    key_to_id.update({n.node_key: n.id for n in d.added})
    for o in d.outcomes:
        ev = events.get(o.task.id)
        if ev is None:
            continue
        t = o.task
        f = dict(t.fields)
        for name, (_before, after) in o.field_changes.items():
            f[name] = after
        completed_at = f.get("completed_at")
        if o.final_status == "done" and t.status != "done":
            completed_at = now
        elif o.final_status != "done" and t.status == "done":
            completed_at = None
        parent = key_to_id.get(f["parent_key"]) if f.get("parent_key") else None
        writes.update(
            t.id,
            o.node_key,
            f,
            parent,
            o.final_status,
            o.open_blockers,
            completed_at,
            ev.row_version,
        )
        row = {
            "id": t.id,
            "org_id": org_id,
            "project_id": project_id,
            "deliverable_id": d.deliverable.id,
            "node_key": o.node_key,
            "assigned_to": f.get("assigned_to"),
        }
        _record(writes, row, ev, now)
    for n in d.added:
        parent = key_to_id.get(n.fields["parent_key"]) if n.fields.get("parent_key") else None
        ev = events[n.id]
        writes.insert(
            n.id,
            d.deliverable.id,
            n.node_key,
            n.fields,
            parent,
            n.final_status,
            n.open_blockers,
            now if n.final_status == "done" else None,
            ev.row_version,
        )
        row = {
            "id": n.id,
            "org_id": org_id,
            "project_id": project_id,
            "deliverable_id": d.deliverable.id,
            "node_key": n.node_key,
            "assigned_to": None,
        }
        _record(writes, row, ev, now)


async def migrate(
    session: AsyncSession,
    *,
    state: ProjectState,
    target: dict[str, Any],
    rules: Rules,
    actor: str,
    plan_id: uuid.UUID,
    job_id: uuid.UUID | None,
    now: datetime,
    plan: MigrationPlan | None = None,
) -> MigrationRead:
    """Move the locked project to `target` (in the caller's transaction); refuse on conflicts.

    `plan`: already computed on these locked rows."""
    project = state.project
    org_id, project_id = project["org_id"], project["id"]
    plan = plan or compute(state, target, rules)
    if plan.conflicts:
        raise conflicts_problem(plan)
    migration_id = uuid.uuid4()
    from_version, to_version = int(project["template_version"]), int(target["version"])
    meta = {
        "migration_id": str(migration_id),
        "from_version": from_version,
        "to_version": to_version,
    }
    writes = _Writes()
    final_edges: set[tuple[uuid.UUID, uuid.UUID]] = set()
    for d in plan.deliverables:
        final_edges |= d.edges
        if not d.untouched:
            _deliverable_rows(
                writes, d, org_id=org_id, project_id=project_id, meta=meta, actor=actor, now=now
            )
    current_edges = set(state.edges)
    await bootstrap_sql.insert_tasks(
        session, org_id=org_id, project_id=project_id, now=now, rows=writes.new
    )
    await repository.update_tasks(session, now=now, rows=writes.updates)
    await repository.delete_edges(session, edges=sorted(current_edges - final_edges))
    added_edges = sorted(final_edges - current_edges)
    await bootstrap_sql.insert_dependencies(
        session,
        project_id=project_id,
        task_ids=[t for t, _ in added_edges],
        blocker_ids=[b for _, b in added_edges],
    )
    conn = await session.connection()
    # Deliverables through the cascade code: ready for sign-off when every task is resolved,
    # back in progress when a task is open again.
    ready = {
        d.deliverable.id
        for d in plan.deliverables
        if not d.untouched
        and d.status_after == "ready_for_signoff"
        and d.deliverable.status == "in_progress"
    }
    await cascades.mark_ready_for_signoff(
        conn, org_id=org_id, deliverable_ids=ready, history=writes.history, now=now, locked=True
    )
    for d in plan.deliverables:
        if (
            not d.untouched
            and d.status_after == "in_progress"
            and d.deliverable.status == "ready_for_signoff"
        ):
            await task_repository.back_in_progress(
                conn, deliverable_id=d.deliverable.id, org_id=org_id, now=now
            )
    row_version = await repository.update_project(
        session,
        project_id=project_id,
        snapshot=target,
        version=to_version,
        checksum=str(target.get("checksum", "")),
        now=now,
    )
    tally = counts(plan)
    writes.history.publish(
        ProjectMigratedV1(
            project_id=project_id,
            org_id=org_id,
            migration_id=migration_id,
            plan_id=plan_id,
            template_id=project["template_id"],
            from_version=from_version,
            to_version=to_version,
            actor=actor,
            row_version=row_version,
            **tally,
        ),
        aggregate_type="project",
        aggregate_id=project_id,
    )
    await task_repository.write_history(conn, writes.history, now)
    record = {
        "id": migration_id,
        "org_id": org_id,
        "project_id": project_id,
        "plan_id": plan_id,
        "job_id": job_id,
        "from_version": from_version,
        "to_version": to_version,
        "previous_snapshot": as_json(project["snapshot"]),
        "previous_checksum": project["template_checksum"],
        "counts": tally,
        "applied_by": actor,
        "applied_at": now,
    }
    await repository.insert_migration(session, record)
    return MigrationRead(
        id=migration_id,
        project_id=project_id,
        plan_id=plan_id,
        job_id=job_id,
        from_version=from_version,
        to_version=to_version,
        counts=tally,
        applied_by=actor,
        applied_at=now,
        project_row_version=row_version,
    )


def _stale(plan_row: dict[str, Any], state: ProjectState) -> list[dict[str, Any]]:
    """What changed since the plan: the project's version, and tasks changed, added or gone."""
    changed: list[dict[str, Any]] = []
    project = state.project
    if project["template_version"] != plan_row["from_version"]:
        changed.append(
            {
                "what": "project",
                "field": "template_version",
                "planned": plan_row["from_version"],
                "current": project["template_version"],
            }
        )
    planned = as_json(plan_row["task_versions"])
    current = {str(t.id): t for t in state.tasks}
    for tid, t in current.items():
        was = planned.get(tid)
        if was != t.row_version:
            changed.append(
                {
                    "what": "task",
                    "task_id": tid,
                    "node_key": t.node_key,
                    "status": t.status,
                    "planned_row_version": was,
                    "current_row_version": t.row_version,
                }
            )
    for tid in planned.keys() - current.keys():
        changed.append(
            {
                "what": "task",
                "task_id": tid,
                "planned_row_version": planned[tid],
                "current_row_version": None,
            }
        )
    return changed


async def apply_plan(
    session: AsyncSession,
    *,
    db: Database,
    principal: Principal,
    project_id: uuid.UUID,
    body: MigrationApply,
    if_match: str | None,
    idempotency_key: str | None,
) -> Answer:
    """Apply a stored plan in this transaction (Idempotency-Key: the same answer again)."""
    org_id = principal.org
    expected = required_version(body.expected_row_version, if_match)
    key = idempotency.check_key(idempotency_key)
    req_hash = idempotency.request_hash(
        f"POST /api/v1/projects/{project_id}/migrations", body.model_dump_json().encode()
    )
    if key is not None:
        async with db.sessionmaker() as lookup:
            stored = await idempotency.find_answer(
                lookup, IDEMPOTENCY, org_id=org_id, key=key, req_hash=req_hash
            )
        if stored is not None:
            return stored

    async def create() -> tuple[dict[str, Any], dict[str, str]]:
        plan_row = await repository.plan(session, org_id=org_id, plan_id=body.plan_id)
        if plan_row is None:
            raise invalid(
                "plan_id",
                f"there is no migration plan {body.plan_id}",
                code="MIGRATION_PLAN_NOT_FOUND",
            )
        if plan_row["project_id"] != project_id:
            raise invalid(
                "plan_id",
                f"plan {body.plan_id} is a plan of another project, not of project {project_id}",
                code="MIGRATION_PLAN_OF_ANOTHER_PROJECT",
            )
        project = await repository.project(session, org_id=org_id, project_id=project_id)
        if project is None:
            raise project_not_found(project_id)
        if plan_row["migration_id"] is not None:
            raise Conflict(
                f"plan {body.plan_id} was already applied (migration {plan_row['migration_id']})",
                code="MIGRATION_PLAN_APPLIED",
                migration_id=str(plan_row["migration_id"]),
            )
        if plan_row["blocking_conflicts"]:
            raise Conflict(
                f"plan {body.plan_id} has {plan_row['blocking_conflicts']} blocking "
                "conflict(s): make a new plan with rules that settle them",
                code="MIGRATION_PLAN_HAS_CONFLICTS",
            )
        state = await read_state(session, org_id=org_id, project=project, lock=True)
        now = await db_now(session)
        if plan_row["expires_at"] <= now:
            raise Conflict(
                f"plan {body.plan_id} expired at {plan_row['expires_at'].isoformat()}: "
                "make a new plan",
                code="MIGRATION_PLAN_EXPIRED",
                expired_at=plan_row["expires_at"].isoformat(),
            )
        locked = state.project
        check_migratable(locked)
        check_version(
            expected,
            current_row_version=locked["row_version"],
            current_status=locked["status"],
            what=f"project {project_id}",
        )
        changed = _stale(plan_row, state)
        if changed:
            raise Conflict(
                f"{len(changed)} change(s) since the plan was made: make a new plan",
                code="MIGRATION_PLAN_STALE",
                changed=changed[:STALE_LISTED],
                changed_count=len(changed),
            )
        rules = to_rules(MigrationRules.model_validate(as_json(plan_row["rules"])))
        read = await migrate(
            session,
            state=state,
            target=as_json(plan_row["target"]),
            rules=rules,
            actor=principal.sub,
            plan_id=plan_row["id"],
            job_id=None,
            now=now,
        )
        await repository.mark_plan_applied(session, plan_id=plan_row["id"], migration_id=read.id)
        return read.model_dump(mode="json"), {
            "Location": f"/api/v1/projects/{project_id}/migrations/{read.id}",
            "ETag": f'"{read.project_row_version}"',
        }

    return await idempotency.run_idempotent(
        session, IDEMPOTENCY, org_id=org_id, key=key, req_hash=req_hash, create=create
    )
