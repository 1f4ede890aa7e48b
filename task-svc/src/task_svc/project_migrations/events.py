"""The task events a migration itself writes, derived from its plan: pure, no I/O.

Every existing task whose row the migration changes gets one `migrated` event (its status,
counter, key and node fields before and after, and why), then `blocker_added` (a started task
kept with a new open blocker; the row version does not move, like `blocker_reopened`) and
`blocker_reopened`. A new task starts with `create`, as at project start (a milestone free at
once then `auto_complete`s, as at project start). What follows from the new rows (tasks left
blocked with no open blocker going ready, milestones completing, deliverables ready for
sign-off) is written by the state machine's cascade code (`tasks/cascades.py`), with the very
events a transition gets: `unblock` and `task.unblocked`, `auto_complete`. Folding a task's
events from `create` gives its row.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from task_svc.project_migrations.planning import DeliverablePlan, NewTask, TaskOutcome

MIGRATED = "migrated"
BLOCKER_ADDED = "blocker_added"


@dataclass(frozen=True)
class PlannedEvent:
    task_id: uuid.UUID
    action: str
    from_status: str | None
    to_status: str
    actor: str
    payload: dict[str, Any]
    row_version: int


@dataclass
class TaskEvents:
    """The events of one task and the row version they leave it at."""

    events: list[PlannedEvent] = field(default_factory=list)
    row_version: int = 0


def jsonable(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    return value


def outcome_events(
    o: TaskOutcome, *, migration: dict[str, Any], actor: str, system_actor: str
) -> TaskEvents:
    """The events of an existing task (none when the migration leaves its row as it is)."""
    t = o.task
    out = TaskEvents(row_version=t.row_version)
    if o.kind == "untouched":
        return out
    before: dict[str, Any] = {}
    after: dict[str, Any] = {}
    for name, (b, a) in o.field_changes.items():
        before[name], after[name] = jsonable(b), jsonable(a)
    if o.node_key != t.node_key:
        before["node_key"], after["node_key"] = t.node_key, o.node_key
    if o.status != t.status:
        before["status"], after["status"] = t.status, o.status
    if o.direct_open != t.open_blockers:
        before["open_blockers"], after["open_blockers"] = t.open_blockers, o.direct_open
    if before or after:
        out.row_version += 1
        payload = {**migration, "reason": o.reason, "before": before, "after": after}
        if o.qc_round_keeps_checklist:
            payload["open_qc_round_keeps_checklist"] = True
        out.events.append(
            PlannedEvent(t.id, MIGRATED, t.status, o.status, actor, payload, out.row_version)
        )
    for b in o.blockers_added:
        out.events.append(
            PlannedEvent(
                t.id,
                BLOCKER_ADDED,
                o.status,
                o.status,
                system_actor,
                {"blocker_id": str(b), **migration},
                out.row_version,
            )
        )
    for b in o.blockers_reopened:
        out.events.append(
            PlannedEvent(
                t.id,
                "blocker_reopened",
                o.status,
                o.status,
                system_actor,
                {"blocker_id": str(b)},
                out.row_version,
            )
        )
    return out


def new_task_events(
    n: NewTask, *, migration: dict[str, Any], actor: str, system_actor: str
) -> TaskEvents:
    out = TaskEvents(row_version=1)
    created = {
        "status": n.status,
        "open_blockers": n.direct_open,
        "assigned_to": None,
        "node_key": n.node_key,
        "reason": n.reason,
        **migration,
    }
    out.events.append(PlannedEvent(n.id, "create", None, n.status, actor, created, 1))
    if n.direct_status != n.status:  # a milestone free at creation, as at project start
        out.row_version = 2
        out.events.append(
            PlannedEvent(n.id, "auto_complete", n.status, n.direct_status, system_actor, {}, 2)
        )
    return out


def deliverable_events(
    d: DeliverablePlan, *, migration: dict[str, Any], actor: str, system_actor: str
) -> dict[uuid.UUID, TaskEvents]:
    """Every task's events in one deliverable, by task id."""
    out: dict[uuid.UUID, TaskEvents] = {}
    for o in d.outcomes:
        ev = outcome_events(o, migration=migration, actor=actor, system_actor=system_actor)
        if ev.events:
            out[o.task.id] = ev
    for n in d.added:
        out[n.id] = new_task_events(n, migration=migration, actor=actor, system_actor=system_actor)
    return out
