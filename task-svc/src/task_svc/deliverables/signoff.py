"""Deliverable sign-off: an approver approves a deliverable (ready_for_signoff -> signed_off) or
rejects it naming the tasks to reopen (back to in_progress). Approving the last deliverable of a
project completes the project.

Lock order matches the transitions: tasks (by id), then the deliverable, then the project.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from contracts import tasks as contracts
from servicekit.errors import NotFound, Unprocessable, VersionConflict
from task_svc.tasks import cascades
from task_svc.tasks import transitions as task_transitions
from task_svc.tasks.cascades import History, OutboxRow
from task_svc.tasks.fsm import Action

_LOCK_TASKS_SQL = """
SELECT id, org_id, project_id, deliverable_id, node_key, title, status, assigned_to,
  assigned_at, started_at, completed_at, due_at, priority, qc_required, qc_checklist,
  is_milestone, open_blockers, row_version, updated_at
FROM tasks WHERE id = ANY($1::uuid[]) AND org_id = $2 ORDER BY id FOR UPDATE
"""
_LOCK_DELIVERABLE_SQL = """
SELECT id, org_id, project_id, serial, status, row_version FROM deliverables
WHERE id = $1 AND org_id = $2 FOR UPDATE
"""
_SIGN_SQL = """
UPDATE deliverables SET status = 'signed_off', row_version = row_version + 1, updated_at = $3,
  signed_off_at = $3, signed_off_by = $4
WHERE id = $1 AND org_id = $2 RETURNING row_version
"""
_RECORD_SQL = """
INSERT INTO deliverable_signoffs (id, org_id, deliverable_id, decision, comment,
  reopen_task_ids, actor, created_at) VALUES ($1, $2, $3, $4, $5, $6::uuid[], $7, $8)
"""
_LOCK_PROJECT_SQL = "SELECT id, status FROM projects WHERE id = $1 AND org_id = $2 FOR UPDATE"
_COMPLETE_PROJECT_SQL = """
UPDATE projects p SET status = 'completed', row_version = p.row_version + 1, updated_at = $3,
  completed_at = $3
WHERE p.id = $1 AND p.org_id = $2 AND p.status = 'active'
  AND NOT EXISTS (SELECT 1 FROM deliverables d WHERE d.project_id = p.id
                  AND d.status <> 'signed_off')
RETURNING p.row_version
"""
_DELIVERABLE_VERSION_SQL = "SELECT status, row_version FROM deliverables WHERE id = $1"


async def sign_off(
    session: AsyncSession,
    *,
    org_id: uuid.UUID,
    deliverable_id: uuid.UUID,
    decision: str,
    comment: str | None,
    reopen_task_ids: list[uuid.UUID],
    expected_row_version: int,
    caller: task_transitions.Caller,
) -> dict[str, Any]:
    conn = await session.connection()
    now = datetime.now(UTC)
    history = History()
    reopened: list[str] = []
    if decision == "rejected":
        if not reopen_task_ids:
            raise Unprocessable(
                "a rejection must name the tasks to reopen in reopen_task_ids",
                code="PAYLOAD_INVALID",
                field="reopen_task_ids",
            )
        ids = sorted(set(reopen_task_ids))
        res = await conn.exec_driver_sql(_LOCK_TASKS_SQL, (ids, org_id))
        rows = [dict(r) for r in res.mappings()]
        found = {r["id"] for r in rows}
        wrong = [str(i) for i in ids if i not in found] + [
            str(r["id"]) for r in rows if r["deliverable_id"] != deliverable_id
        ]
        if wrong:
            raise Unprocessable(
                f"reopen_task_ids must be tasks of deliverable {deliverable_id}; these are "
                f"not: {', '.join(wrong)}",
                code="PAYLOAD_INVALID",
                field="reopen_task_ids",
                task_ids=wrong,
            )
    else:
        rows = []
    res = await conn.exec_driver_sql(_LOCK_DELIVERABLE_SQL, (deliverable_id, org_id))
    dl = res.mappings().first()
    if dl is None:
        raise NotFound(f"deliverable {deliverable_id} not found", code="DELIVERABLE_NOT_FOUND")
    if dl["row_version"] != expected_row_version:
        raise VersionConflict(
            f"deliverable {deliverable_id} is at row_version {dl['row_version']} (status "
            f"'{dl['status']}'), not {expected_row_version}: reload it and decide again",
            current_row_version=dl["row_version"],
            current_status=dl["status"],
        )
    if dl["status"] != "ready_for_signoff":
        raise Unprocessable(
            f"deliverable {deliverable_id} is '{dl['status']}': only a deliverable "
            "ready_for_signoff can be signed off or rejected",
            code="DELIVERABLE_NOT_READY",
            current_status=dl["status"],
        )
    for row in rows:
        outcome = await task_transitions.apply_locked(
            conn,
            row=row,
            act=Action.REOPEN,
            clean={"reason": comment or "rejected at sign-off"},
            caller=caller,
            skip_permission=True,  # the approver's rejection is what reopens it
        )
        reopened.append(outcome.body["task_id"])
    project_completed = False
    if decision == "approved":
        res = await conn.exec_driver_sql(_SIGN_SQL, (deliverable_id, org_id, now, caller.actor))
        version = int(res.scalar_one())
        status = "signed_off"
    else:
        res = await conn.exec_driver_sql(_DELIVERABLE_VERSION_SQL, (deliverable_id,))
        after = res.mappings().one()
        version, status = after["row_version"], after["status"]
    await conn.exec_driver_sql(
        _RECORD_SQL,
        (
            uuid.uuid4(),
            org_id,
            deliverable_id,
            decision,
            comment,
            ids_or_empty(rows),
            caller.actor,
            now,
        ),
    )
    history.outbox.append(
        OutboxRow(
            contracts.DELIVERABLE_SIGNED_OFF,
            "deliverable",
            deliverable_id,
            {
                "deliverable_id": str(deliverable_id),
                "org_id": str(org_id),
                "project_id": str(dl["project_id"]),
                "serial": dl["serial"],
                "decision": decision,
                "comment": comment,
                "reopen_task_ids": reopened,
                "actor": caller.actor,
                "row_version": version,
                "occurred_at": now,
            },
        )
    )
    if decision == "approved":
        await conn.exec_driver_sql(_LOCK_PROJECT_SQL, (dl["project_id"], org_id))
        res = await conn.exec_driver_sql(_COMPLETE_PROJECT_SQL, (dl["project_id"], org_id, now))
        completed = res.scalar_one_or_none()
        if completed is not None:
            project_completed = True
            history.outbox.append(
                OutboxRow(
                    contracts.PROJECT_COMPLETED,
                    "project",
                    dl["project_id"],
                    {
                        "project_id": str(dl["project_id"]),
                        "org_id": str(org_id),
                        "row_version": int(completed),
                        "completed_at": now,
                    },
                )
            )
    await cascades.write_history(conn, history, now)
    return {
        "deliverable_id": str(deliverable_id),
        "project_id": str(dl["project_id"]),
        "serial": dl["serial"],
        "decision": decision,
        "status": status,
        "row_version": version,
        "reopened_task_ids": reopened,
        "project_completed": project_completed,
    }


def ids_or_empty(rows: list[dict[str, Any]]) -> list[uuid.UUID]:
    return [r["id"] for r in rows]
