"""The dashboard of a project, computed from its tasks and edges (pure: no I/O).

Counts, progress by count and by estimate, per-deliverable progress, blocked tasks with what
blocks them, overdue tasks, workload per assignee and the critical path of the remaining work.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from task_svc.graph.critical_path import longest_path
from task_svc.projects.schemas import (
    BlockedTask,
    CriticalPathRead,
    Dashboard,
    DeliverableProgress,
    OverdueTask,
    Progress,
    StatusCounts,
    TaskBrief,
    Workload,
)
from task_svc.tasks.fsm import RESOLVED

LIST_LIMIT = 100  # blocked and overdue lists are cut here (the task list has the rest)


def _hours(value: Any) -> float:
    return float(value) if value is not None else 0.0


@dataclass
class Tally:
    """Task counts and estimate hours by status, of a project or one deliverable."""

    counts: dict[str, int] = field(default_factory=dict)
    hours: dict[str, float] = field(default_factory=dict)

    def add(self, status: str, count: int, hours: float) -> None:
        self.counts[status] = self.counts.get(status, 0) + count
        self.hours[status] = self.hours.get(status, 0.0) + hours

    def merge(self, other: Tally) -> None:
        for status, count in other.counts.items():
            self.add(status, count, other.hours.get(status, 0.0))


@dataclass
class Load:
    """Open work of one assignee (None: unassigned)."""

    open_tasks: int = 0
    in_progress: int = 0
    remaining_hours: float = 0.0

    def add(self, status: str, count: int, hours: float) -> None:
        if status in RESOLVED:
            return
        self.open_tasks += count
        if status == "in_progress":
            self.in_progress += count
        self.remaining_hours += hours


@dataclass
class RemainingWork:
    """The unresolved tasks in rank order (node key, deliverable, id), as parallel lists, and
    the edges between them as (blocker index, dependent index) lists."""

    ids: Sequence[uuid.UUID]
    deliverable_ids: Sequence[uuid.UUID]
    titles: Sequence[str]
    statuses: Sequence[str]
    hours: Sequence[float]
    edge_from: Sequence[int]
    edge_to: Sequence[int]


def _progress(tally: Tally) -> Progress:
    total = sum(tally.counts.values())
    resolved = sum(tally.counts.get(s, 0) for s in RESOLVED)
    # Cancelled work is not done work: it leaves the estimate total instead.
    total_hours = sum(h for s, h in tally.hours.items() if s != "cancelled")
    done_hours = tally.hours.get("done", 0.0)
    return Progress(
        by_count=round(resolved / total, 4) if total else 0.0,
        by_estimate=round(done_hours / total_hours, 4) if total_hours else 0.0,
        resolved=resolved,
        total=total,
        resolved_hours=round(done_hours, 2),
        total_hours=round(total_hours, 2),
    )


def blocked_task(task: Any, open_blockers: Sequence[Any]) -> BlockedTask:
    """A blocked task and its unresolved blockers (rows with id, title, status)."""
    return BlockedTask(
        id=task.id,
        title=task.title,
        deliverable_id=task.deliverable_id,
        blocked_by=[
            TaskBrief(id=b.id, title=b.title, status=b.status)
            for b in sorted(open_blockers, key=lambda b: (b.title, str(b.id)))
        ],
    )


def overdue_task(t: Any) -> OverdueTask:
    return OverdueTask(
        id=t.id,
        title=t.title,
        status=t.status,
        deliverable_id=t.deliverable_id,
        assigned_to=t.assigned_to,
        due_at=t.due_at,
    )


def _workload(loads: Mapping[uuid.UUID | None, Load]) -> list[Workload]:
    """Open work per assignee (unassigned last), leaving out assignees with nothing open."""
    return [
        Workload(
            assigned_to=who,
            open_tasks=load.open_tasks,
            in_progress=load.in_progress,
            remaining_hours=round(load.remaining_hours, 2),
        )
        for who, load in sorted(loads.items(), key=lambda kv: (kv[0] is None, str(kv[0])))
        if load.open_tasks
    ]


def _critical_path(
    remaining: RemainingWork, *, now: datetime, due_at: datetime | None
) -> tuple[CriticalPathRead, bool | None]:
    """The longest chain through the remaining work, and whether it finishes after `due_at`."""
    path, remaining_hours = longest_path(remaining.hours, remaining.edge_from, remaining.edge_to)
    # Plain dicts, validated in one go by the model below: for a path of thousands of steps
    # that is about half the cost of constructing each step model in Python.
    steps: list[dict[str, Any]] = []
    elapsed = 0.0
    for n in path:
        hours = remaining.hours[n]
        elapsed += hours
        steps.append(
            {
                "id": remaining.ids[n],
                "title": remaining.titles[n],
                "status": remaining.statuses[n],
                "deliverable_id": remaining.deliverable_ids[n],
                "estimate_hours": hours,
                "finish_after_hours": round(elapsed, 2),
            }
        )
    estimated_finish = now + timedelta(hours=remaining_hours) if path else None
    late = None if due_at is None else (estimated_finish or now) > due_at
    read = CriticalPathRead.model_validate(
        {
            "steps": steps,
            "remaining_hours": round(remaining_hours, 2),
            "estimated_finish": estimated_finish,
            "as_of": now,
        }
    )
    return read, late


def assemble_dashboard(
    *,
    project: Any,
    deliverables: Sequence[Any],
    tallies: Mapping[uuid.UUID, Tally],
    loads: Mapping[uuid.UUID | None, Load],
    blocked: list[BlockedTask],
    overdue: list[OverdueTask],
    remaining: RemainingWork,
    now: datetime,
) -> Dashboard:
    """The dashboard from what the database aggregates: per-deliverable tallies, per-assignee
    loads, the first blocked and overdue tasks, and the remaining work."""
    total = Tally()
    for tally in tallies.values():
        total.merge(tally)
    critical_path, late = _critical_path(remaining, now=now, due_at=project.due_at)
    return Dashboard(
        project_id=project.id,
        status=project.status,
        due_at=project.due_at,
        counts=StatusCounts(**total.counts),
        progress=_progress(total),
        deliverables=[
            DeliverableProgress(
                id=d.id,
                name=d.name,
                serial=d.serial,
                status=d.status,
                progress=_progress(tallies.get(d.id, Tally())),
            )
            for d in deliverables
        ],
        blocked=blocked,
        overdue=overdue,
        workload=_workload(loads),
        critical_path=critical_path,
        late=late,
    )


def _remaining_work(tasks: Sequence[Any], edges: Sequence[Any]) -> RemainingWork:
    """The unresolved tasks in rank order, and the edges between them by rank."""
    ranked = sorted(
        (t for t in tasks if t.status not in RESOLVED),
        key=lambda t: (f"{t.node_key}\x00{t.deliverable_id}", str(t.id)),
    )
    index = {t.id: n for n, t in enumerate(ranked)}
    edge_from: list[int] = []
    edge_to: list[int] = []
    for blocker_id, task_id in edges:
        if blocker_id in index and task_id in index:
            edge_from.append(index[blocker_id])
            edge_to.append(index[task_id])
    return RemainingWork(
        ids=[t.id for t in ranked],
        deliverable_ids=[t.deliverable_id for t in ranked],
        titles=[t.title for t in ranked],
        statuses=[t.status for t in ranked],
        hours=[_hours(t.estimate_hours) for t in ranked],
        edge_from=edge_from,
        edge_to=edge_to,
    )


def build_dashboard(
    *,
    project: Any,
    deliverables: Sequence[Any],
    tasks: Sequence[Any],
    edges: Sequence[Any],
    now: datetime,
) -> Dashboard:
    """The dashboard from every task and edge of a project (what `dashboard_sql` computes in the
    database instead). `tasks` rows need id, deliverable_id, node_key, title, status,
    assigned_to, due_at, estimate_hours; `edges` rows are (blocker_id, task_id)."""
    by_id = {t.id: t for t in tasks}
    blockers_of: dict[uuid.UUID, list[uuid.UUID]] = {}
    for blocker_id, task_id in edges:
        blockers_of.setdefault(task_id, []).append(blocker_id)

    tallies: dict[uuid.UUID, Tally] = {}
    loads: dict[uuid.UUID | None, Load] = {}
    for t in tasks:
        hours = _hours(t.estimate_hours)
        tallies.setdefault(t.deliverable_id, Tally()).add(t.status, 1, hours)
        loads.setdefault(t.assigned_to, Load()).add(t.status, 1, hours)

    ordered = sorted(tasks, key=lambda t: (str(t.deliverable_id), t.node_key))
    blocked = [
        blocked_task(
            t, [by_id[b] for b in blockers_of.get(t.id, ()) if by_id[b].status not in RESOLVED]
        )
        for t in ordered
        if t.status == "blocked"
    ][:LIST_LIMIT]
    overdue = [
        overdue_task(t)
        for t in sorted(
            (
                t
                for t in tasks
                if t.due_at is not None and t.due_at < now and t.status not in RESOLVED
            ),
            key=lambda t: (t.due_at, str(t.id)),
        )[:LIST_LIMIT]
    ]
    remaining = _remaining_work(tasks, edges)
    return assemble_dashboard(
        project=project,
        deliverables=deliverables,
        tallies=tallies,
        loads=loads,
        blocked=blocked,
        overdue=overdue,
        remaining=remaining,
        now=now,
    )
