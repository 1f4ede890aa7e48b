"""What one task's transition does to the others: dependency counters, milestones, deliverables.

- A blocker resolved (done or cancelled): its dependents' `open_blockers` drop in one statement;
  those reaching zero go `blocked -> ready` (system `unblock`), milestones straight on to `done`
  (system `auto_complete`), which resolves them in turn.
- A blocker taken away (a project migration removing the dependency or the blocker's node):
  dependents left `blocked` with no open blocker are freed the same way (`release_blocked`).
- A resolved blocker reopened or restored: `ready` dependents go back to `blocked` (system
  `block`); started or finished ones are left alone and get a `blocker_reopened` event.
- A deliverable whose tasks are all resolved becomes `ready_for_signoff`; one whose task is
  reopened goes back to `in_progress`.
- A QC reject naming an upstream task: see `rework.py`.

Lock order is fixed: the transitioning task first, then dependents in id order (one statement
with `ORDER BY id FOR UPDATE`), then deliverables, then the project. The statements live in
`graph_repository.py`.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from contracts.tasks import DeliverableReadyForSignoffV1, TaskUnblockedV1
from servicekit.errors import Conflict
from task_svc.tasks import graph_repository
from task_svc.tasks.fsm import Action, EventKind, Status
from task_svc.tasks.history import SYSTEM_ACTOR, EventRow, History, task_event_fields
from task_svc.tasks.sql import Conn

_STARTED = frozenset({Status.IN_PROGRESS, Status.ON_HOLD, Status.IN_QC, Status.REWORK, Status.DONE})


@dataclass
class CascadeResult:
    unblocked: list[uuid.UUID] = field(default_factory=list)
    auto_completed: list[uuid.UUID] = field(default_factory=list)
    reblocked: list[uuid.UUID] = field(default_factory=list)
    flagged: list[uuid.UUID] = field(default_factory=list)
    resolved_deliverables: set[uuid.UUID] = field(default_factory=set)


# ---------------------------------------------------------------------------------------------
# Dependency counters


async def resolve_blockers(
    conn: Conn,
    *,
    org_id: uuid.UUID,
    blocker_ids: Sequence[uuid.UUID],
    history: History,
    now: datetime,
) -> CascadeResult:
    """Blockers became resolved: drop their dependents' counters, unblock those reaching zero.

    Milestones freed this way complete at once and resolve their own dependents (wave by wave).
    """
    result = CascadeResult()
    wave = sorted(set(blocker_ids))
    while wave:
        rows = await graph_repository.resolve_dependents(
            conn, blocker_ids=wave, org_id=org_id, now=now
        )
        next_wave = [
            row["id"] for row in rows if row["freed"] and _free(row, wave[0], history, now, result)
        ]
        wave = sorted(next_wave)
    return result


async def release_blocked(
    conn: Conn,
    *,
    org_id: uuid.UUID,
    released_by: Mapping[uuid.UUID, uuid.UUID],
    history: History,
    now: datetime,
) -> CascadeResult:
    """Tasks whose last open blocker was taken away rather than resolved (a project migration
    removed the dependency or the blocker) are freed exactly as `resolve_blockers` frees them:
    those still `blocked` with no open blocker go ready, milestones on to done, resolving their
    own dependents in turn. `released_by`: task -> the blocker its `task.unblocked` names."""
    result = CascadeResult()
    if not released_by:
        return result
    rows = await graph_repository.release_blocked(
        conn, task_ids=sorted(released_by), org_id=org_id, now=now
    )
    completed = [
        row["id"] for row in rows if _free(row, released_by[row["id"]], history, now, result)
    ]
    if completed:
        more = await resolve_blockers(
            conn, org_id=org_id, blocker_ids=completed, history=history, now=now
        )
        result.unblocked += more.unblocked
        result.auto_completed += more.auto_completed
        result.resolved_deliverables |= more.resolved_deliverables
    return result


def _free(
    row: dict[str, Any],
    blocker_id: uuid.UUID,
    history: History,
    now: datetime,
    result: CascadeResult,
) -> bool:
    """Record a freed task's `unblock` (and a milestone's `auto_complete`); True when it is now
    resolved (a milestone), so that its own dependents are resolved next."""
    tid = row["id"]
    result.unblocked.append(tid)
    if not row["is_milestone"]:
        _record_unblock(row, blocker_id, row["row_version"], history, now)
        return False
    _record_unblock(row, blocker_id, row["row_version"] - 1, history, now)
    history.auto_complete(row, row_version=row["row_version"], now=now)
    result.auto_completed.append(tid)
    result.resolved_deliverables.add(row["deliverable_id"])
    return True


def _record_unblock(
    row: dict[str, Any], blocker_id: uuid.UUID, version: int, history: History, now: datetime
) -> None:
    history.status_change(
        row,
        action=Action.UNBLOCK,
        from_status=Status.BLOCKED,
        to_status=Status.READY,
        actor=SYSTEM_ACTOR,
        row_version=version,
        payload={},
        now=now,
    )
    unblocked = TaskUnblockedV1(
        **task_event_fields(row, row_version=version, now=now),
        # With several blockers resolved in one wave, the first one is named.
        resolved_blocker_id=blocker_id,
        assigned_to=row["assigned_to"],
    )
    history.publish(unblocked, aggregate_type="task", aggregate_id=row["id"])


async def unresolve_blocker(
    conn: Conn,
    *,
    org_id: uuid.UUID,
    blocker_id: uuid.UUID,
    history: History,
    now: datetime,
) -> CascadeResult:
    """A resolved blocker was reopened or restored: re-block ready dependents, flag started ones."""
    result = CascadeResult()
    rows = await graph_repository.unresolve_dependents(
        conn, blocker_id=blocker_id, org_id=org_id, now=now
    )
    payload = {"blocker_id": str(blocker_id)}
    for row in rows:
        old = row["old_status"]
        if old == Status.READY:
            history.status_change(
                row,
                action=Action.BLOCK,
                from_status=Status.READY,
                to_status=Status.BLOCKED,
                actor=SYSTEM_ACTOR,
                row_version=row["row_version"],
                payload=payload,
                now=now,
            )
            result.reblocked.append(row["id"])
        elif old in _STARTED:
            history.events.append(
                EventRow(
                    org_id,
                    row["id"],
                    EventKind.BLOCKER_REOPENED,
                    old,
                    old,
                    SYSTEM_ACTOR,
                    payload,
                    row["row_version"],
                )
            )
            result.flagged.append(row["id"])
    return result


# ---------------------------------------------------------------------------------------------
# Deliverables


async def mark_ready_for_signoff(
    conn: Conn,
    *,
    org_id: uuid.UUID,
    deliverable_ids: set[uuid.UUID],
    history: History,
    now: datetime,
    locked: bool = False,
) -> list[uuid.UUID]:
    """Deliverables whose every task is now resolved become `ready_for_signoff`.

    The deliverable rows are locked first and checked in a second statement, so two
    transactions resolving a deliverable's last two tasks at once cannot both miss it.
    `locked`: the caller already locked them, in an earlier statement of this transaction.
    """
    if not deliverable_ids:
        return []
    ids = sorted(deliverable_ids)
    if not locked:
        await graph_repository.lock_deliverables(conn, deliverable_ids=ids, org_id=org_id)
    rows = await graph_repository.mark_ready_for_signoff(
        conn, deliverable_ids=ids, org_id=org_id, now=now
    )
    publish_ready(rows, history=history, now=now)
    return [r["id"] for r in rows]


def publish_ready(rows: Sequence[Mapping[str, Any]], *, history: History, now: datetime) -> None:
    """`deliverable.ready_for_signoff` for each deliverable row that just became ready."""
    for r in rows:
        event = DeliverableReadyForSignoffV1(**r, deliverable_id=r["id"], occurred_at=now)
        history.publish(event, aggregate_type="deliverable", aggregate_id=r["id"])


async def reopen_deliverable(
    conn: Conn, *, org_id: uuid.UUID, deliverable_id: uuid.UUID, now: datetime
) -> None:
    """A task of the deliverable is unresolved again: back to `in_progress`.

    A signed-off deliverable is final: reopening or restoring its tasks is refused.
    """
    statuses = await graph_repository.lock_deliverables(
        conn, deliverable_ids=[deliverable_id], org_id=org_id
    )
    if statuses.get(deliverable_id) == "signed_off":
        raise Conflict(
            f"deliverable {deliverable_id} is signed off; its tasks can no longer be reopened "
            "or restored",
            code="DELIVERABLE_SIGNED_OFF",
            deliverable_id=str(deliverable_id),
        )
    await graph_repository.back_in_progress(
        conn, deliverable_id=deliverable_id, org_id=org_id, now=now
    )
