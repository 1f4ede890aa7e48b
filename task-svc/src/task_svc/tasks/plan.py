"""The domain model of a transition: given a locked task row, an action, who asks and the
payload, what must happen — or why not. Pure Python, no I/O (unit-tested without a database).

`plan_transition` decides every refusal the row alone can decide (`refusals.py`: project status,
row version, the FSM table, who may act, the guards) and, when the action is allowed, the
task's new values, the events to write, the answer and which cascades follow. The transition
service (`transitions.py`) loads the row, plans, writes and runs the cascades.

Milestones: a milestone restored with no open blocker completes at once (a `restore` event then
an `auto_complete` one), and a finished milestone is not reopened (reopen the work before it):
a milestone is only ever blocked, done or cancelled.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from typing import Any

from contracts.tasks import TaskAssignedV1
from servicekit.conditional import ExpectedVersion
from task_svc.tasks.fsm import (
    RESOLVED,
    TRANSITIONS,
    Action,
    Status,
    allowed_actions,
    target_status,
)
from task_svc.tasks.history import (
    EventRow,
    History,
    TaskRow,
    task_event_fields,
)
from task_svc.tasks.refusals import Refusal, refusal_of
from task_svc.tasks.transition_request import Caller


class Cascade(Enum):
    """What the transition does to the task's dependents and deliverable."""

    NONE = "none"
    RESOLVED = "resolved"  # the task became done or cancelled
    UNRESOLVED = "unresolved"  # the task was done or cancelled and is not any more


@dataclass
class Plan:
    """An allowed transition: the task's new values, its history, the answer, what follows."""

    action: Action
    new: dict[str, Any]
    body: dict[str, Any]
    history: History = field(default_factory=History)
    cascade: Cascade = Cascade.NONE
    submits_for_qc: bool = False  # to in_qc: a `task.submitted_for_qc` event (needs its round)
    rework_from: uuid.UUID | None = None  # a QC reject naming an upstream task to redo

    @property
    def touches_only_the_task(self) -> bool:
        """Whether the task's own row and history are all it writes: nothing cascades, no QC
        round is asked for, nothing is reworked."""
        return self.cascade is Cascade.NONE and not self.submits_for_qc and self.rework_from is None

    @property
    def locks_deliverable(self) -> bool:
        """Whether the write locks the deliverable: a resolved task with no dependents goes
        straight to its deliverable, the next lock in the fixed order."""
        return self.cascade is Cascade.RESOLVED and not self.new.get("has_dependents", True)


# ---------------------------------------------------------------------------------------------
# Plans


def _iso(v: datetime | None) -> str | None:
    return v.isoformat() if v is not None else None


def task_view(row: TaskRow, caller: Caller) -> dict[str, Any]:
    """The task as a transition answers it (with the caller's allowed actions)."""
    assigned_to = row["assigned_to"]
    return {
        "id": str(row["id"]),
        "project_id": str(row["project_id"]),
        "deliverable_id": str(row["deliverable_id"]),
        "node_key": row["node_key"],
        "title": row["title"],
        "status": row["status"],
        "assigned_to": str(assigned_to) if assigned_to is not None else None,
        "assigned_at": _iso(row["assigned_at"]),
        "started_at": _iso(row["started_at"]),
        "completed_at": _iso(row["completed_at"]),
        "open_blockers": row["open_blockers"],
        "qc_required": row["qc_required"],
        "is_milestone": row["is_milestone"],
        "row_version": row["row_version"],
        "updated_at": _iso(row["updated_at"]),
        "allowed_actions": allowed_actions(
            row["status"],
            roles=caller.roles,
            user_id=caller.user_id,
            assigned_to=assigned_to,
            open_blockers=row["open_blockers"],
            qc_required=row["qc_required"],
            is_milestone=row["is_milestone"],
        ),
    }


def _new_values(
    task: TaskRow, act: Action, caller: Caller, clean: dict[str, Any], now: datetime
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The task's new row and the event's payload (the request's, plus what the action set)."""
    status = task["status"]
    to = target_status(
        act, Status(status), qc_required=task["qc_required"], open_blockers=task["open_blockers"]
    )
    new = dict(task)
    new["status"] = str(to)
    new["row_version"] = task["row_version"] + 1
    new["updated_at"] = now
    event_payload = dict(clean)
    if act is Action.ASSIGN:
        new["assigned_to"] = uuid.UUID(clean["assign_to"])
        new["assigned_at"] = now
    elif act is Action.UNASSIGN:
        new["assigned_to"] = None
        new["assigned_at"] = None
    elif act is Action.START:
        if task["assigned_to"] is None and caller.user_id is not None:
            new["assigned_to"] = caller.user_id
            new["assigned_at"] = now
            event_payload["assigned_to"] = str(caller.user_id)
        if task["started_at"] is None:
            new["started_at"] = now
    if to is Status.DONE and status != Status.DONE:
        new["completed_at"] = now
    elif act is Action.REOPEN:
        new["completed_at"] = None
    return new, event_payload


def _assigned(task: TaskRow, new: dict[str, Any], caller: Caller, now: datetime) -> TaskAssignedV1:
    return TaskAssignedV1(
        **task_event_fields(new, row_version=new["row_version"], now=now),
        assigned_to=new["assigned_to"],
        previous_assignee=task["assigned_to"],
        actor=caller.actor,
    )


def _cascade(from_status: str, to_status: str) -> Cascade:
    was, now_is = from_status in RESOLVED, to_status in RESOLVED
    if now_is and not was:
        return Cascade.RESOLVED
    if was and not now_is:
        return Cascade.UNRESOLVED
    return Cascade.NONE


def _moves(act: Action) -> set[tuple[Status, Status]]:
    """Every (from, to) status pair `act` can make by the table (a restored or freed milestone
    completing at once shows in its plan, not here)."""
    t = TRANSITIONS[act]
    return {
        (source, to) for source in t.sources for to in {t.to or source, t.to_alt or t.to or source}
    }


# Actions whose plan usually touches only the task (never a cascade nor in_qc by the table): the
# hot route tries them without a lock.
TASK_ONLY_ACTIONS: frozenset[Action] = frozenset(
    a
    for a in Action
    if all(_cascade(f, to) is Cascade.NONE and to != Status.IN_QC for f, to in _moves(a))
)
# Actions that by the table can resolve a task: the task's deliverable is locked with it.
MAY_RESOLVE_ACTIONS: frozenset[Action] = frozenset(
    a for a in Action if any(_cascade(f, to) is Cascade.RESOLVED for f, to in _moves(a))
)


def _record_action(
    plan: Plan,
    row: TaskRow,
    *,
    from_status: str,
    actor: str,
    payload: dict[str, Any],
    client_event_id: str | None,
    now: datetime,
) -> None:
    """The action's own event, with the answer (for an idempotent replay); a status change
    also gets its `task.status_changed`."""
    to_status = row["status"]
    if to_status != from_status:
        plan.history.status_change(
            row,
            action=plan.action,
            from_status=from_status,
            to_status=to_status,
            actor=actor,
            row_version=row["row_version"],
            payload=payload,
            now=now,
            client_event_id=client_event_id,
            response=plan.body,
        )
        return
    plan.history.events.append(
        EventRow(
            row["org_id"],
            row["id"],
            plan.action,
            from_status,
            to_status,
            actor,
            payload,
            row["row_version"],
            client_event_id,
            plan.body,
            200,
        )
    )


def _completed_milestone(row: dict[str, Any], now: datetime) -> dict[str, Any]:
    """A milestone restored with nothing open before it completes at once, as it would have
    when its last blocker was resolved."""
    return {
        **row,
        "status": str(Status.DONE),
        "row_version": row["row_version"] + 1,
        "completed_at": now,
    }


def plan_transition(
    task: TaskRow,
    action: Action,
    caller: Caller,
    payload: dict[str, Any],
    *,
    now: datetime,
    expected: ExpectedVersion | None = None,
    client_event_id: str | None = None,
    authorized: bool = False,
    reopened_blockers: int = 0,
) -> Plan | Refusal:
    """What `action` does to the locked `task` (payload already validated), or why not.

    `reopened_blockers`: blockers of the task that a QC reject sends back to rework with it
    (known once the service has planned that rework).
    """
    refused = refusal_of(task, action, caller, expected=expected, authorized=authorized)
    if refused is not None:
        return refused
    after, event_payload = _new_values(task, action, caller, payload, now)
    after["open_blockers"] = task["open_blockers"] + reopened_blockers
    auto_complete = after["status"] == Status.READY and task["is_milestone"]
    new = _completed_milestone(after, now) if auto_complete else after
    body = {
        "task_id": str(task["id"]),
        "action": str(action),
        "from_status": task["status"],
        "to_status": after["status"],
        "row_version": new["row_version"],
        "task": task_view(new, caller),
    }
    plan = Plan(action=action, new=new, body=body)
    if after["assigned_to"] != task["assigned_to"]:
        plan.history.publish(
            _assigned(task, after, caller, now), aggregate_type="task", aggregate_id=task["id"]
        )
    _record_action(
        plan,
        after,
        from_status=task["status"],
        actor=caller.actor,
        payload=event_payload,
        client_event_id=client_event_id,
        now=now,
    )
    if auto_complete:
        plan.history.auto_complete(new, row_version=new["row_version"], now=now)
    plan.cascade = _cascade(task["status"], new["status"])
    plan.submits_for_qc = new["status"] == Status.IN_QC
    if action is Action.QC_REJECT and "rework_from_task_id" in payload:
        plan.rework_from = uuid.UUID(payload["rework_from_task_id"])
    return plan
