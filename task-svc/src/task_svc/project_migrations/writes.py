"""The rows one migration writes, collected from its plan per kind (task updates, new tasks,
task events and outbox rows) so that each kind is written in one bulk statement. Pure: no I/O.

Rows hold what the migration itself gives (`TaskOutcome.status`, `direct_open`); what follows
from them is left to the cascade code (`apply.py`).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

from contracts.tasks import TaskStatusChangedV1
from servicekit.jsonutil import dumps
from task_svc.project_migrations.events import PlannedEvent, TaskEvents, deliverable_events
from task_svc.project_migrations.planning import DeliverablePlan, NewTask, TaskOutcome
from task_svc.projects import bootstrap_sql
from task_svc.tasks.history import SYSTEM_ACTOR, EventRow, History, task_event_fields

UPDATE_COLUMNS = (
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


class Writes:
    """The rows of one migration, collected per kind and written in bulk."""

    def __init__(self) -> None:
        self.updates: dict[str, list[Any]] = {k: [] for k in UPDATE_COLUMNS}
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

    def record(self, row: dict[str, Any], events: TaskEvents, now: datetime) -> None:
        """A task's events into the history; its status changes into the outbox."""
        for e in events.events:
            self.history.events.append(
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
            self.history.publish(
                TaskStatusChangedV1(
                    **task_event_fields(row, row_version=e.row_version, now=now),
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


def deliverable_rows(
    writes: Writes,
    d: DeliverablePlan,
    *,
    org_id: uuid.UUID,
    project_id: uuid.UUID,
    meta: dict[str, Any],
    actor: str,
    now: datetime,
) -> None:
    """Collect the task rows and events of one deliverable's plan."""
    events = deliverable_events(d, migration=meta, actor=actor, system_actor=SYSTEM_ACTOR)
    key_to_id = {o.node_key: o.task.id for o in d.outcomes if o.kind == "kept"}
    key_to_id.update({n.node_key: n.id for n in d.added})
    base = {"org_id": org_id, "project_id": project_id, "deliverable_id": d.deliverable.id}
    for o in d.outcomes:
        ev = events.get(o.task.id)
        if ev is not None:
            _kept_row(writes, o, ev, key_to_id, base, now)
    for n in d.added:
        _new_row(writes, n, events[n.id], key_to_id, base, now)


def _kept_row(
    writes: Writes,
    o: TaskOutcome,
    ev: TaskEvents,
    key_to_id: dict[str, uuid.UUID],
    base: dict[str, Any],
    now: datetime,
) -> None:
    t = o.task
    f = dict(t.fields)
    for name, (_before, after) in o.field_changes.items():
        f[name] = after
    completed_at = f.get("completed_at")
    if o.status == "done" and t.status != "done":
        completed_at = now
    elif o.status != "done" and t.status == "done":
        completed_at = None
    parent = key_to_id.get(f["parent_key"]) if f.get("parent_key") else None
    writes.update(
        t.id, o.node_key, f, parent, o.status, o.direct_open, completed_at, ev.row_version
    )
    row = {**base, "id": t.id, "node_key": o.node_key, "assigned_to": f.get("assigned_to")}
    writes.record(row, ev, now)


def _new_row(
    writes: Writes,
    n: NewTask,
    ev: TaskEvents,
    key_to_id: dict[str, uuid.UUID],
    base: dict[str, Any],
    now: datetime,
) -> None:
    parent = key_to_id.get(n.fields["parent_key"]) if n.fields.get("parent_key") else None
    writes.insert(
        n.id,
        base["deliverable_id"],
        n.node_key,
        n.fields,
        parent,
        n.direct_status,
        n.direct_open,
        now if n.direct_status == "done" else None,
        ev.row_version,
    )
    row = {**base, "id": n.id, "node_key": n.node_key, "assigned_to": None}
    writes.record(row, ev, now)
