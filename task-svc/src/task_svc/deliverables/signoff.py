"""Deliverable sign-off: an approver approves a deliverable (ready_for_signoff -> signed_off) or
rejects it naming the tasks to reopen (back to in_progress). Approving the last deliverable of a
project completes the project.

Lock order matches the transitions: tasks (by id), then the deliverable, then the project.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, Literal

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from contracts.tasks import DeliverableSignedOffV1, ProjectCompletedV1
from servicekit.conditional import ExpectedVersion, check_version
from servicekit.errors import Conflict, NotFound, Unprocessable
from task_svc.deliverables import repository
from task_svc.tasks import repository as task_repository
from task_svc.tasks import transitions
from task_svc.tasks.fsm import Action
from task_svc.tasks.history import History

Decision = Literal["approved", "rejected"]


async def sign_off(
    session: AsyncSession,
    *,
    org_id: uuid.UUID,
    deliverable_id: uuid.UUID,
    decision: Decision,
    comment: str | None,
    reopen_task_ids: list[uuid.UUID],
    expected: ExpectedVersion,
    caller: transitions.Caller,
) -> dict[str, Any]:
    """Approve or reject a deliverable that is ready for sign-off (optimistic lock: a stale
    body version is a 409, a stale If-Match a 412)."""
    conn = await session.connection()
    now = datetime.now(UTC)
    rejected = decision == "rejected"
    tasks = await _lock_tasks_to_reopen(conn, org_id, deliverable_id, reopen_task_ids, rejected)
    dl = await _lock_ready_deliverable(conn, org_id, deliverable_id, expected)
    history = History()
    if rejected:
        reopened = await _reopen(conn, tasks, comment=comment, caller=caller)
        status, version = await repository.deliverable_state(conn, deliverable_id=deliverable_id)
    else:
        reopened = []
        version = await repository.sign(
            conn, deliverable_id=deliverable_id, org_id=org_id, actor=caller.actor, now=now
        )
        status = "signed_off"
    await repository.record_signoff(
        conn,
        org_id=org_id,
        deliverable_id=deliverable_id,
        decision=decision,
        comment=comment,
        reopen_task_ids=[t["id"] for t in tasks],
        actor=caller.actor,
        now=now,
    )
    signed = DeliverableSignedOffV1(
        deliverable_id=deliverable_id,
        org_id=org_id,
        project_id=dl["project_id"],
        serial=dl["serial"],
        decision=decision,
        comment=comment,
        reopen_task_ids=reopened,
        actor=caller.actor,
        row_version=version,
        occurred_at=now,
    )
    history.publish(signed, aggregate_type="deliverable", aggregate_id=deliverable_id)
    project_completed = not rejected and await _complete_project(conn, dl, history, now)
    await task_repository.write_history(conn, history, now)
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


async def _lock_tasks_to_reopen(
    conn: AsyncConnection,
    org_id: uuid.UUID,
    deliverable_id: uuid.UUID,
    task_ids: list[uuid.UUID],
    rejected: bool,
) -> list[dict[str, Any]]:
    """For a rejection, the named tasks locked (first in the lock order); they must exist and
    belong to the deliverable. An approval reopens nothing."""
    if not rejected:
        return []
    if not task_ids:
        raise Unprocessable(
            "a rejection must name the tasks to reopen in reopen_task_ids",
            code="PAYLOAD_INVALID",
            field="reopen_task_ids",
        )
    ids = sorted(set(task_ids))
    rows = await task_repository.lock_tasks(conn, task_ids=ids, org_id=org_id)
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
    return rows


async def _lock_ready_deliverable(
    conn: AsyncConnection, org_id: uuid.UUID, deliverable_id: uuid.UUID, expected: ExpectedVersion
) -> dict[str, Any]:
    dl = await repository.lock_deliverable(conn, deliverable_id=deliverable_id, org_id=org_id)
    if dl is None:
        raise NotFound(f"deliverable {deliverable_id} not found", code="DELIVERABLE_NOT_FOUND")
    check_version(
        expected,
        current_row_version=dl["row_version"],
        current_status=dl["status"],
        what=f"deliverable {deliverable_id}",
    )
    if dl["status"] != "ready_for_signoff":
        raise Conflict(
            f"deliverable {deliverable_id} is '{dl['status']}': only a deliverable "
            "ready_for_signoff can be signed off or rejected",
            code="DELIVERABLE_NOT_READY",
            current_status=dl["status"],
        )
    return dl


async def _reopen(
    conn: AsyncConnection,
    tasks: list[dict[str, Any]],
    *,
    comment: str | None,
    caller: transitions.Caller,
) -> list[str]:
    """Reopen each task through the transition service (its events and cascades)."""
    reopened: list[str] = []
    for task in tasks:
        outcome = await transitions.apply_locked(
            conn,
            task=task,
            act=Action.REOPEN,
            clean={"reason": comment or "rejected at sign-off"},
            caller=caller,
            authorized=True,  # the approver's rejection is what reopens it
        )
        reopened.append(outcome.body["task_id"])
    return reopened


async def _complete_project(
    conn: AsyncConnection, dl: dict[str, Any], history: History, now: datetime
) -> bool:
    """Complete the project when this was its last deliverable to sign off."""
    project_id = dl["project_id"]
    version = await repository.complete_project(
        conn, project_id=project_id, org_id=dl["org_id"], now=now
    )
    if version is None:
        return False
    completed = ProjectCompletedV1(
        project_id=project_id, org_id=dl["org_id"], row_version=version, completed_at=now
    )
    history.publish(completed, aggregate_type="project", aggregate_id=project_id)
    return True
