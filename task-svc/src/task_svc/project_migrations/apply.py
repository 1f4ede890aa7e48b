"""Applying a stored plan: ONE transaction per project, on rows locked in the fixed order.

The plan is checked (this project's, not applied, without conflicts, not expired), the project's
rows are locked (tasks, then deliverables, then the project) and compared with the row versions
the plan was made from: anything changed is refused with what changed. Then the plan is
computed again on the locked rows (the same pure planner), so what is written is exactly what
was planned, and written (`migrate.py`). An `Idempotency-Key` answers a repeated request with
the first answer.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from servicekit import idempotency
from servicekit.auth import Principal
from servicekit.conditional import ExpectedVersion, check_version, required_version
from servicekit.db import Database
from servicekit.errors import Conflict
from servicekit.idempotency import Answer
from task_svc.project_migrations import repository
from task_svc.project_migrations.migrate import migrate
from task_svc.project_migrations.schemas import MigrationApply, MigrationRules
from task_svc.project_migrations.service import (
    ProjectState,
    as_json,
    check_migratable,
    db_now,
    invalid,
    project_not_found,
    read_state,
    to_rules,
)
from task_svc.projects.creation import IDEMPOTENCY

STALE_LISTED = 50


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
        return await _apply(
            session, principal=principal, project_id=project_id, body=body, expected=expected
        )

    return await idempotency.run_idempotent(
        session, IDEMPOTENCY, org_id=org_id, key=key, req_hash=req_hash, create=create
    )


async def _apply(
    session: AsyncSession,
    *,
    principal: Principal,
    project_id: uuid.UUID,
    body: MigrationApply,
    expected: ExpectedVersion | None,
) -> tuple[dict[str, Any], dict[str, str]]:
    """The apply itself: the answer's body and headers."""
    org_id = principal.org
    plan_row = await _usable_plan(session, org_id=org_id, project_id=project_id, body=body)
    project = await repository.project(session, org_id=org_id, project_id=project_id)
    if project is None:
        raise project_not_found(project_id)
    _check_not_applied(plan_row, body)
    state = await read_state(session, org_id=org_id, project=project, lock=True)
    now = await db_now(session)
    if plan_row["expires_at"] <= now:
        raise Conflict(
            f"plan {body.plan_id} expired at {plan_row['expires_at'].isoformat()}: make a new plan",
            code="MIGRATION_PLAN_EXPIRED",
            expired_at=plan_row["expires_at"].isoformat(),
        )
    _check_unchanged(plan_row, state, expected, project_id)
    read = await migrate(
        session,
        state=state,
        target=as_json(plan_row["target"]),
        rules=to_rules(MigrationRules.model_validate(as_json(plan_row["rules"]))),
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


async def _usable_plan(
    session: AsyncSession, *, org_id: uuid.UUID, project_id: uuid.UUID, body: MigrationApply
) -> dict[str, Any]:
    """The stored plan, refused when unknown or another project's."""
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
    return plan_row


def _check_not_applied(plan_row: dict[str, Any], body: MigrationApply) -> None:
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


def _check_unchanged(
    plan_row: dict[str, Any],
    state: ProjectState,
    expected: ExpectedVersion | None,
    project_id: uuid.UUID,
) -> None:
    """The locked project is still migratable, at the expected row version, and nothing the
    plan was made from changed."""
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
