"""Moving one locked project to another template version, in the caller's transaction: the
plan's rows written in bulk (new tasks, task updates, dependencies removed and added, every
task event and outbox row), then what follows from them through the state machine's cascade
code (tasks left blocked with no open blocker freed, milestones completing, deliverables ready
for sign-off or back in progress), the project's snapshot and version, one `project.migrated`
event and the audit row keeping the snapshot it replaced. Used by a plan's apply (`apply.py`)
and by batch jobs (`batches.py`).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from contracts.tasks import ProjectMigratedV1
from servicekit.errors import Conflict
from task_svc.project_migrations import repository
from task_svc.project_migrations.plan_view import as_json, counts
from task_svc.project_migrations.planning import RESOLVED, MigrationPlan, Rules
from task_svc.project_migrations.schemas import MigrationRead
from task_svc.project_migrations.service import ProjectState, compute
from task_svc.project_migrations.writes import Writes, deliverable_rows
from task_svc.projects import bootstrap_sql
from task_svc.tasks import cascades
from task_svc.tasks import repository as task_repository
from task_svc.tasks.history import History

LISTED_CONFLICTS = 50


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
            for c in plan.conflicts[:LISTED_CONFLICTS]
        ],
    )


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
    plan = plan or compute(state, target, rules)
    if plan.conflicts:
        raise conflicts_problem(plan)
    migration = _Migration(
        id=uuid.uuid4(),
        org_id=project["org_id"],
        project_id=project["id"],
        plan_id=plan_id,
        job_id=job_id,
        from_version=int(project["template_version"]),
        to_version=int(target["version"]),
        actor=actor,
        now=now,
    )
    writes = await _write_tasks(session, state, plan, migration)
    conn = await session.connection()
    await _run_cascades(conn, state, plan, migration, writes.history)
    row_version = await repository.update_project(
        session,
        project_id=migration.project_id,
        snapshot=target,
        version=migration.to_version,
        checksum=str(target.get("checksum", "")),
        now=now,
    )
    tally = counts(plan)
    _publish_migrated(writes.history, project, migration, row_version, tally)
    await task_repository.write_history(conn, writes.history, now)
    await _insert_audit_row(session, project, migration, tally)
    return MigrationRead(
        id=migration.id,
        project_id=migration.project_id,
        plan_id=plan_id,
        job_id=job_id,
        from_version=migration.from_version,
        to_version=migration.to_version,
        counts=tally,
        applied_by=actor,
        applied_at=now,
        project_row_version=row_version,
    )


@dataclass(frozen=True)
class _Migration:
    id: uuid.UUID
    org_id: uuid.UUID
    project_id: uuid.UUID
    plan_id: uuid.UUID
    job_id: uuid.UUID | None
    from_version: int
    to_version: int
    actor: str
    now: datetime

    @property
    def meta(self) -> dict[str, Any]:
        """What every `migrated` and `create` event's payload names."""
        return {
            "migration_id": str(self.id),
            "from_version": self.from_version,
            "to_version": self.to_version,
        }


async def _write_tasks(
    session: AsyncSession, state: ProjectState, plan: MigrationPlan, migration: _Migration
) -> Writes:
    """New tasks, task updates and dependencies, each kind in one statement; the events of the
    migration itself collected (written with the cascades' at the end)."""
    writes = Writes()
    final_edges: set[tuple[uuid.UUID, uuid.UUID]] = set()
    for d in plan.deliverables:
        final_edges |= d.edges
        if not d.untouched:
            deliverable_rows(
                writes,
                d,
                org_id=migration.org_id,
                project_id=migration.project_id,
                meta=migration.meta,
                actor=migration.actor,
                now=migration.now,
            )
    current_edges = set(state.edges)
    await bootstrap_sql.insert_tasks(
        session,
        org_id=migration.org_id,
        project_id=migration.project_id,
        now=migration.now,
        rows=writes.new,
    )
    await repository.update_tasks(session, now=migration.now, rows=writes.updates)
    await repository.delete_edges(session, edges=sorted(current_edges - final_edges))
    added_edges = sorted(final_edges - current_edges)
    await bootstrap_sql.insert_dependencies(
        session,
        project_id=migration.project_id,
        task_ids=[t for t, _ in added_edges],
        blocker_ids=[b for _, b in added_edges],
    )
    return writes


async def _run_cascades(
    conn: AsyncConnection,
    state: ProjectState,
    plan: MigrationPlan,
    migration: _Migration,
    history: History,
) -> None:
    """What follows from the migration's rows, through the state machine's cascade code: tasks
    left blocked with no open blocker are freed (milestones complete, freeing their dependents
    in turn), deliverables whose tasks are all resolved become ready for sign-off, and those
    with a task open again go back in progress."""
    org_id, now = migration.org_id, migration.now
    await cascades.release_blocked(
        conn, org_id=org_id, released_by=released_by(state, plan), history=history, now=now
    )
    touched = [d for d in plan.deliverables if not d.untouched]
    await cascades.mark_ready_for_signoff(
        conn,
        org_id=org_id,
        deliverable_ids={
            d.deliverable.id for d in touched if d.deliverable.status == "in_progress"
        },
        history=history,
        now=now,
        locked=True,
    )
    for d in touched:
        if d.status_after == "in_progress" and d.deliverable.status == "ready_for_signoff":
            await cascades.reopen_deliverable(
                conn, org_id=org_id, deliverable_id=d.deliverable.id, now=now
            )


def released_by(state: ProjectState, plan: MigrationPlan) -> dict[uuid.UUID, uuid.UUID]:
    """Every task the migration leaves blocked with no open blocker, and the blocker its
    `task.unblocked` names: one it waited for before that the migration took away (preferably
    one still open before the migration)."""
    before = {t.id: t.status for t in state.tasks}
    old_blockers: dict[uuid.UUID, list[uuid.UUID]] = {}
    for task_id, blocker_id in state.edges:
        old_blockers.setdefault(task_id, []).append(blocker_id)
    out: dict[uuid.UUID, uuid.UUID] = {}
    for d in plan.deliverables:
        if d.untouched:
            continue
        for o in d.outcomes:
            old = old_blockers.get(o.task.id)
            if o.kind == "kept" and o.status == "blocked" and o.direct_open == 0 and old:
                out[o.task.id] = min(old, key=lambda b: (before.get(b) in RESOLVED, b))
    return out


def _publish_migrated(
    history: History,
    project: dict[str, Any],
    migration: _Migration,
    row_version: int,
    tally: dict[str, int],
) -> None:
    history.publish(
        ProjectMigratedV1(
            project_id=migration.project_id,
            org_id=migration.org_id,
            migration_id=migration.id,
            plan_id=migration.plan_id,
            template_id=project["template_id"],
            from_version=migration.from_version,
            to_version=migration.to_version,
            actor=migration.actor,
            row_version=row_version,
            **tally,
        ),
        aggregate_type="project",
        aggregate_id=migration.project_id,
    )


async def _insert_audit_row(
    session: AsyncSession,
    project: dict[str, Any],
    migration: _Migration,
    tally: dict[str, int],
) -> None:
    """The applied migration, keeping the snapshot it replaced."""
    await repository.insert_migration(
        session,
        {
            "id": migration.id,
            "org_id": migration.org_id,
            "project_id": migration.project_id,
            "plan_id": migration.plan_id,
            "job_id": migration.job_id,
            "from_version": migration.from_version,
            "to_version": migration.to_version,
            "previous_snapshot": as_json(project["snapshot"]),
            "previous_checksum": project["template_checksum"],
            "counts": tally,
            "applied_by": migration.actor,
            "applied_at": migration.now,
        },
    )
