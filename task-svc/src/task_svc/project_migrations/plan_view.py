"""A migration plan as answered and stored: per deliverable, what is kept, added, removed, every
counter and status that changes, and the template-level change; the counts. Pure: no I/O."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from servicekit.jsonutil import loads
from task_svc.project_migrations.events import jsonable
from task_svc.project_migrations.planning import (
    Conflict,
    DeliverablePlan,
    MigrationPlan,
    TaskOutcome,
)
from task_svc.project_migrations.schemas import MigrationPlanRead


def _edge(e: tuple[str, str]) -> dict[str, str]:
    return {"blocker": e[0], "dependent": e[1]}


def counts(plan: MigrationPlan) -> dict[str, int]:
    out = {
        "tasks_added": 0,
        "tasks_cancelled": 0,
        "tasks_updated": 0,
        "tasks_kept_as_orphans": 0,
        "status_changes": 0,
    }
    for d in plan.deliverables:
        out["tasks_added"] += len(d.added)
        for o in d.outcomes:
            if o.kind == "cancelled" and o.task.status != "cancelled":
                out["tasks_cancelled"] += 1
            elif o.kind == "orphan":
                out["tasks_kept_as_orphans"] += 1
            elif o.kind == "kept" and o.row_changed:
                out["tasks_updated"] += 1
            if o.final_status != o.task.status:
                out["status_changes"] += 1
        out["status_changes"] += len(d.added)
    return out


def plan_body(plan: MigrationPlan) -> dict[str, Any]:
    """What a plan answers about the migration itself (its stored `content`)."""
    return {
        "changes_anything": plan.changes_anything,
        "counts": counts(plan),
        "graph": {
            "nodes_added": plan.nodes_added,
            "nodes_removed": plan.nodes_removed,
            "nodes_changed": plan.nodes_changed,
            "edges_added": [_edge(e) for e in plan.edges_added],
            "edges_removed": [_edge(e) for e in plan.edges_removed],
            "renamed": plan.renamed,
        },
        "deliverables": [_deliverable_body(d, plan.conflicts) for d in plan.deliverables],
        "blocking_conflicts": [_conflict_body(c) for c in plan.conflicts],
    }


def _conflict_body(c: Conflict) -> dict[str, Any]:
    return {
        "code": c.code,
        "deliverable_id": c.deliverable_id,
        "node_key": c.node_key,
        "task_id": c.task_id,
        "status": c.status,
        "message": c.message,
        "settle_with": c.settle_with,
    }


def _deliverable_body(d: DeliverablePlan, conflicts: list[Conflict]) -> dict[str, Any]:
    renamed_from = {new: old for old, new in d.renamed}
    outcomes = d.outcomes
    return {
        "deliverable_id": d.deliverable.id,
        "name": d.deliverable.name,
        "serial": d.deliverable.serial,
        "status": d.deliverable.status,
        "status_after": d.status_after,
        "untouched": d.untouched,
        "kept": [_kept(o, renamed_from) for o in outcomes if _is_kept_change(o)],
        "added": [
            {
                "node_key": n.node_key,
                "status": n.final_status,
                "open_blockers": n.open_blockers,
                "reason": n.reason,
            }
            for n in d.added
        ],
        "removed": [_removed(o) for o in outcomes if o.kind in ("cancelled", "orphan")]
        + [
            {
                "task_id": c.task_id,
                "node_key": c.node_key,
                "status": c.status,
                "outcome": "conflict",
            }
            for c in conflicts
            if c.deliverable_id == d.deliverable.id and c.code == "REMOVED_TASK_STARTED"
        ],
        "edges_added": [_edge(e) for e in d.edges_added],
        "edges_removed": [_edge(e) for e in d.edges_removed],
        "open_blockers": [
            {
                "task_id": o.task.id,
                "node_key": o.node_key,
                "from": o.task.open_blockers,
                "to": o.open_blockers,
            }
            for o in outcomes
            if o.open_blockers != o.task.open_blockers and o.kind != "untouched"
        ],
        "status_changes": _status_changes(d),
    }


def _is_kept_change(o: TaskOutcome) -> bool:
    return o.kind == "kept" and bool(
        o.field_changes or o.fields_held_back or o.node_key != o.task.node_key
    )


def _kept(o: TaskOutcome, renamed_from: dict[str, str]) -> dict[str, Any]:
    return {
        "task_id": o.task.id,
        "node_key": o.node_key,
        "renamed_from": renamed_from.get(o.node_key),
        "status": o.task.status,
        "changes": [
            {"field": f, "from": jsonable(b), "to": jsonable(a)}
            for f, (b, a) in o.field_changes.items()
        ],
        "held_back": o.fields_held_back,
        "open_qc_round_keeps_checklist": o.qc_round_keeps_checklist,
    }


def _removed(o: TaskOutcome) -> dict[str, Any]:
    t = o.task
    if o.kind == "orphan":
        outcome = "keep_as_orphan"
    elif t.status == "cancelled":
        outcome = "already_cancelled"
    else:
        outcome = "cancel"
    return {"task_id": t.id, "node_key": t.node_key, "status": t.status, "outcome": outcome}


def _status_changes(d: DeliverablePlan) -> list[dict[str, Any]]:
    changes = [
        {
            "task_id": o.task.id,
            "node_key": o.node_key,
            "from": o.task.status,
            "to": o.final_status,
            "reason": o.reason,
        }
        for o in d.outcomes
        if o.final_status != o.task.status
    ]
    changes += [
        {"task_id": None, "node_key": n.node_key, "from": None, "to": n.final_status,
         "reason": n.reason}
        for n in d.added
    ]  # fmt: skip
    return changes


def as_json(value: Any) -> Any:
    return loads(value) if isinstance(value, str | bytes) else value


def plan_read(row: dict[str, Any], *, template_id: uuid.UUID, now: datetime) -> MigrationPlanRead:
    content = as_json(row["content"])
    if row["migration_id"] is not None:
        state = "applied"
    elif row["expires_at"] <= now:
        state = "expired"
    else:
        state = "open"
    return MigrationPlanRead.model_validate(
        {
            **content,
            "id": row["id"],
            "project_id": row["project_id"],
            "template_id": template_id,
            "from_version": row["from_version"],
            "to_version": row["to_version"],
            "rules": as_json(row["rules"]),
            "project_row_version": row["project_row_version"],
            "created_at": row["created_at"],
            "created_by": row["created_by"],
            "expires_at": row["expires_at"],
            "state": state,
            "migration_id": row["migration_id"],
        }
    )
