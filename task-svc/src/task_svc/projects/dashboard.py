"""The dashboard of a project, computed from its tasks and edges (pure: no I/O).

Counts, progress by count and by estimate, per-deliverable progress, blocked tasks with what
blocks them, overdue tasks, workload per assignee and the critical path of the remaining work.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from task_svc.graph.critical_path import WorkItem, critical_path
from task_svc.projects.schemas import (
    BlockedTask,
    CriticalPathRead,
    CriticalPathStep,
    Dashboard,
    DeliverableProgress,
    OverdueTask,
    Progress,
    StatusCounts,
    TaskBrief,
    Workload,
)

RESOLVED = frozenset({"done", "cancelled"})
LIST_LIMIT = 100  # blocked and overdue lists are cut here (the task list has the rest)


def _hours(value: Any) -> float:
    return float(value) if value is not None else 0.0


def _progress(tasks: Sequence[Any]) -> Progress:
    total = len(tasks)
    resolved = [t for t in tasks if t.status in RESOLVED]
    # Cancelled work is not done work: it leaves the estimate total instead.
    total_hours = sum(_hours(t.estimate_hours) for t in tasks if t.status != "cancelled")
    done_hours = sum(_hours(t.estimate_hours) for t in tasks if t.status == "done")
    return Progress(
        by_count=round(len(resolved) / total, 4) if total else 0.0,
        by_estimate=round(done_hours / total_hours, 4) if total_hours else 0.0,
        resolved=len(resolved),
        total=total,
        resolved_hours=round(done_hours, 2),
        total_hours=round(total_hours, 2),
    )


def build_dashboard(
    *,
    project: Any,
    deliverables: Sequence[Any],
    tasks: Sequence[Any],
    edges: Sequence[Any],
    now: datetime,
) -> Dashboard:
    """`tasks` rows need id, deliverable_id, node_key, title, status, assigned_to, due_at,
    estimate_hours; `edges` rows are (blocker_id, task_id)."""
    by_id = {t.id: t for t in tasks}
    counts: dict[str, int] = {}
    for t in tasks:
        counts[t.status] = counts.get(t.status, 0) + 1

    blockers_of: dict[uuid.UUID, list[uuid.UUID]] = {}
    for blocker_id, task_id in edges:
        blockers_of.setdefault(task_id, []).append(blocker_id)

    per_deliverable: dict[uuid.UUID, list[Any]] = {}
    for t in tasks:
        per_deliverable.setdefault(t.deliverable_id, []).append(t)

    blocked: list[BlockedTask] = []
    for t in tasks:
        if t.status != "blocked" or len(blocked) >= LIST_LIMIT:
            continue
        open_ones = [
            by_id[b] for b in blockers_of.get(t.id, ()) if by_id[b].status not in RESOLVED
        ]
        blocked.append(
            BlockedTask(
                id=t.id,
                title=t.title,
                deliverable_id=t.deliverable_id,
                blocked_by=[
                    TaskBrief(id=b.id, title=b.title, status=b.status)
                    for b in sorted(open_ones, key=lambda b: (b.title, str(b.id)))
                ],
            )
        )

    overdue_rows = sorted(
        (t for t in tasks if t.due_at is not None and t.due_at < now and t.status not in RESOLVED),
        key=lambda t: (t.due_at, str(t.id)),
    )
    overdue = [
        OverdueTask(
            id=t.id,
            title=t.title,
            status=t.status,
            deliverable_id=t.deliverable_id,
            assigned_to=t.assigned_to,
            due_at=t.due_at,
        )
        for t in overdue_rows[:LIST_LIMIT]
    ]

    load: dict[uuid.UUID | None, list[Any]] = {}
    for t in tasks:
        if t.status not in RESOLVED:
            load.setdefault(t.assigned_to, []).append(t)
    workload = [
        Workload(
            assigned_to=who,
            open_tasks=len(ts),
            in_progress=sum(1 for t in ts if t.status == "in_progress"),
            remaining_hours=round(sum(_hours(t.estimate_hours) for t in ts), 2),
        )
        for who, ts in sorted(load.items(), key=lambda kv: (kv[0] is None, str(kv[0])))
    ]

    items = [
        WorkItem(
            id=t.id,
            status=t.status,
            estimate_hours=_hours(t.estimate_hours),
            order=f"{t.node_key}\x00{t.deliverable_id}",
        )
        for t in tasks
    ]
    cp = critical_path(items, blockers_of, as_of=now)
    steps: list[CriticalPathStep] = []
    elapsed = 0.0
    for task_id in cp.path:
        t = by_id[task_id]
        elapsed += _hours(t.estimate_hours)
        steps.append(
            CriticalPathStep(
                id=t.id,
                title=t.title,
                status=t.status,
                deliverable_id=t.deliverable_id,
                estimate_hours=_hours(t.estimate_hours),
                finish_after_hours=round(elapsed, 2),
            )
        )
    late = None
    if project.due_at is not None:
        finish = cp.estimated_finish or now
        late = finish > project.due_at

    return Dashboard(
        project_id=project.id,
        status=project.status,
        due_at=project.due_at,
        counts=StatusCounts(**counts),
        progress=_progress(tasks),
        deliverables=[
            DeliverableProgress(
                id=d.id,
                name=d.name,
                serial=d.serial,
                status=d.status,
                progress=_progress(per_deliverable.get(d.id, [])),
            )
            for d in deliverables
        ],
        blocked=blocked,
        overdue=overdue,
        workload=workload,
        critical_path=CriticalPathRead(
            steps=steps,
            remaining_hours=round(cp.remaining_hours, 2),
            estimated_finish=cp.estimated_finish,
            as_of=now,
        ),
        late=late,
    )
