"""The task rows of a new project: one task per node of the planned version per deliverable,
with its initial state from the plan, its first events and its dependencies, inserted in a
constant number of bulk statements (`bootstrap_sql.py`)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from servicekit.context import current_trace_ids, request_id_var
from servicekit.jsonutil import dumps
from task_svc.graph.bootstrap import GraphPlan, NodePlan, due_at
from task_svc.projects import bootstrap_sql


def _decimal(value: Any) -> Decimal | None:
    return None if value is None else Decimal(str(value))


@dataclass
class TaskGraph:
    """The rows of every task of a project: tasks, their `create` events, dependencies."""

    rows: bootstrap_sql.TaskRows = field(default_factory=bootstrap_sql.TaskRows)
    events: bootstrap_sql.EventRows = field(default_factory=bootstrap_sql.EventRows)
    dep_tasks: list[uuid.UUID] = field(default_factory=list)
    dep_blockers: list[uuid.UUID] = field(default_factory=list)


def task_graph(
    nodes: list[dict[str, Any]],
    plan: GraphPlan,
    deliverable_ids: list[uuid.UUID],
    *,
    start_at: datetime,
    now: datetime,
    actor: str,
) -> TaskGraph:
    """One task per node per deliverable, with its initial state from the plan."""
    # Per node, the values every deliverable shares.
    checklists = [dumps(n.get("qc_checklist") or []).decode() for n in nodes]
    dues = [due_at(start_at, p.due_offset_hours) for p in plan.nodes]
    estimates = [_decimal(n.get("estimate_hours")) for n in nodes]
    graph = TaskGraph()
    rows = graph.rows
    for deliverable_id in deliverable_ids:
        ids = [uuid.uuid4() for _ in nodes]
        for p in plan.nodes:
            node = nodes[p.index]
            task_id = ids[p.index]
            rows.ids.append(task_id)
            rows.deliverable_ids.append(deliverable_id)
            rows.node_keys.append(p.key)
            rows.titles.append(str(node["title"]))
            rows.descriptions.append(str(node.get("description") or ""))
            rows.kinds.append(str(node.get("kind") or "task"))
            rows.work_kinds.append(str(node.get("work_kind") or "work"))
            rows.priorities.append(int(node.get("priority") or 0))
            rows.statuses.append(p.status)
            rows.due_ats.append(dues[p.index])
            rows.completed_ats.append(now if p.auto_completed else None)
            rows.qc_requireds.append(bool(node.get("qc_required")))
            rows.qc_checklists.append(checklists[p.index])
            rows.parent_ids.append(ids[p.parent] if p.parent is not None else None)
            rows.open_blockers.append(p.open_blockers)
            rows.estimates.append(estimates[p.index])
            rows.role_hints.append(node.get("role_hint"))
            rows.row_versions.append(2 if p.auto_completed else 1)
            graph.dep_tasks.extend(task_id for _ in p.blockers)
            graph.dep_blockers.extend(ids[b] for b in p.blockers)
            _add_create_events(graph.events, task_id, p, actor)
    return graph


def _add_create_events(
    events: bootstrap_sql.EventRows, task_id: uuid.UUID, p: NodePlan, actor: str
) -> None:
    """A task's first events: `create`, then `auto_complete` for a milestone done at once."""
    created = {
        "status": p.initial_status,
        "open_blockers": p.open_blockers,
        "assigned_to": None,
        "node_key": p.key,
    }
    events.add(task_id, "create", None, p.initial_status, actor, created, 1)
    if p.auto_completed:
        events.add(task_id, "auto_complete", "ready", "done", "system", {}, 2)


async def insert_task_graph(
    session: AsyncSession,
    graph: TaskGraph,
    *,
    org_id: uuid.UUID,
    project_id: uuid.UUID,
    now: datetime,
) -> None:
    await bootstrap_sql.insert_tasks(
        session, org_id=org_id, project_id=project_id, now=now, rows=graph.rows
    )
    await bootstrap_sql.insert_dependencies(
        session, project_id=project_id, task_ids=graph.dep_tasks, blocker_ids=graph.dep_blockers
    )
    trace_id, _span = current_trace_ids()
    await bootstrap_sql.insert_events(
        session,
        org_id=org_id,
        now=now,
        request_id=request_id_var.get(),
        trace_id=trace_id,
        rows=graph.events,
    )
