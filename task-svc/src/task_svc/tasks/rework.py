"""A QC reject naming an upstream task (`rework_from_task_id`): the branch between is redone.

That task goes `done -> rework` (system `qc_rework`), the tasks on the paths between it and the
inspected task that are done, ready or in rework go to `blocked` (system `reblock`), then the
counters follow as for any reopened blocker. `plan_rework` validates and locks the branch (the
branch and its dependents in one `ORDER BY id FOR UPDATE` statement) before anything is written;
`apply_rework` writes it. See docs/qc.md.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from servicekit.errors import Conflict, Unprocessable
from task_svc.tasks import graph_repository
from task_svc.tasks.cascades import unresolve_blocker
from task_svc.tasks.fsm import Action, Status
from task_svc.tasks.history import SYSTEM_ACTOR, History, TaskRow
from task_svc.tasks.sql import Conn

# A task in the branch re-blocked by a QC reject (others there are left as they are).
REBLOCKABLE: frozenset[str] = frozenset({Status.DONE, Status.READY, Status.REWORK})


def ancestors_of(
    blockers_of: Mapping[uuid.UUID, Sequence[uuid.UUID]], task: uuid.UUID
) -> set[uuid.UUID]:
    """Every task `task` waits for, directly or transitively (pure)."""
    seen: set[uuid.UUID] = set()
    stack = list(blockers_of.get(task, ()))
    while stack:
        tid = stack.pop()
        if tid not in seen:
            seen.add(tid)
            stack.extend(blockers_of.get(tid, ()))
    return seen


def branch_between(
    blockers_of: Mapping[uuid.UUID, Sequence[uuid.UUID]],
    *,
    upstream: uuid.UUID,
    target: uuid.UUID,
    skip: Collection[uuid.UUID] = (),
) -> set[uuid.UUID]:
    """The tasks strictly between `upstream` and `target` on dependency paths (pure).

    A path does not pass through a task in `skip` (cancelled tasks: their work is not done, so
    nothing flows through them). `blockers_of` maps a task to its blockers and must hold at least
    the edges into `target`'s ancestors.
    """
    reaches_target: set[uuid.UUID] = set()  # tasks with a path to target avoiding skip
    stack = [target]
    while stack:
        tid = stack.pop()
        for b in blockers_of.get(tid, ()):
            if b not in reaches_target and b not in skip:
                reaches_target.add(b)
                stack.append(b)
    if upstream not in reaches_target:
        return set()
    dependents: dict[uuid.UUID, list[uuid.UUID]] = {}
    for tid in (target, *reaches_target):
        for b in blockers_of.get(tid, ()):
            dependents.setdefault(b, []).append(tid)
    between: set[uuid.UUID] = set()
    stack = [upstream]
    while stack:
        tid = stack.pop()
        for d in dependents.get(tid, ()):
            if d in reaches_target and d not in between and d != upstream:
                between.add(d)
                stack.append(d)
    return between


@dataclass(frozen=True)
class ReworkPlan:
    """What a QC reject naming an upstream task changes, decided under the branch's locks."""

    upstream: dict[str, Any]
    reblock: list[dict[str, Any]]  # locked rows, id order
    unresolved: list[uuid.UUID]  # resolved tasks that become unresolved (upstream first)
    target_new_open: int  # how many of the inspected task's blockers become unresolved


def _refuse(code: str, detail: str, upstream_id: uuid.UUID) -> Unprocessable:
    return Unprocessable(
        detail,
        code=code,
        field="payload.rework_from_task_id",
        rework_from_task_id=str(upstream_id),
    )


async def _upstream_of(
    conn: Conn, task: TaskRow, upstream_id: uuid.UUID
) -> dict[uuid.UUID, list[uuid.UUID]]:
    """The edges above the inspected task, once `upstream_id` is known to be one of its
    transitive blockers in the same deliverable."""
    found = await graph_repository.task_brief(conn, task_id=upstream_id, org_id=task["org_id"])
    if found is None:
        raise _refuse(
            "REWORK_TASK_NOT_FOUND",
            f"rework_from_task_id {upstream_id} is not a task of this organisation",
            upstream_id,
        )
    title = found["title"]
    if found["deliverable_id"] != task["deliverable_id"]:
        raise _refuse(
            "REWORK_TASK_OTHER_DELIVERABLE",
            f"task {upstream_id} ('{title}') belongs to another deliverable than the inspected "
            f"task {task['id']}: only an upstream task of the same deliverable can be reworked",
            upstream_id,
        )
    blockers_of = await graph_repository.ancestor_edges(conn, task_id=task["id"])
    if upstream_id not in ancestors_of(blockers_of, task["id"]):
        raise _refuse(
            "REWORK_TASK_NOT_UPSTREAM",
            f"task {upstream_id} ('{title}') is not upstream of the inspected task "
            f"{task['id']} ('{task['title']}'): no dependency path leads from it to the "
            "inspected task",
            upstream_id,
        )
    return blockers_of


def _check_upstream(upstream: dict[str, Any]) -> None:
    upstream_id = upstream["id"]
    if upstream["is_milestone"]:
        raise _refuse(
            "REWORK_TASK_IS_MILESTONE",
            f"task {upstream_id} ('{upstream['title']}') is a milestone: it has no work of its "
            "own to redo; name the task before it",
            upstream_id,
        )
    if upstream["status"] != Status.DONE:
        raise Conflict(
            f"task {upstream_id} ('{upstream['title']}') is {upstream['status']}, not done: "
            "only finished work can be sent back to rework",
            code="REWORK_TASK_NOT_DONE",
            field="payload.rework_from_task_id",
            rework_from_task_id=str(upstream_id),
            current_status=upstream["status"],
        )


async def plan_rework(conn: Conn, *, task: TaskRow, upstream_id: uuid.UUID) -> ReworkPlan:
    """Validate `upstream_id` for a QC reject of the locked `task` and lock the branch.

    Raises (before anything is written) when the task is not in the same deliverable, not a
    transitive blocker of the inspected task, not done, or a milestone.
    """
    target = task["id"]
    blockers_of = await _upstream_of(conn, task, upstream_id)
    candidates = branch_between(blockers_of, upstream=upstream_id, target=target)
    locked = await graph_repository.lock_branch(
        conn, task_ids=sorted({upstream_id, *candidates}), org_id=task["org_id"]
    )
    upstream = locked[upstream_id]
    _check_upstream(upstream)
    cancelled = {t for t in candidates if locked[t]["status"] == Status.CANCELLED}
    between = branch_between(blockers_of, upstream=upstream_id, target=target, skip=cancelled)
    reblock = [locked[t] for t in sorted(between) if locked[t]["status"] in REBLOCKABLE]
    unresolved = [upstream_id, *(r["id"] for r in reblock if r["status"] == Status.DONE)]
    target_new_open = len(set(blockers_of.get(target, ())) & set(unresolved))
    return ReworkPlan(upstream, reblock, unresolved, target_new_open)


async def apply_rework(
    conn: Conn,
    plan: ReworkPlan,
    *,
    inspected: TaskRow,
    inspection_id: str,
    reason: str | None,
    actor: str,
    history: History,
    now: datetime,
) -> None:
    """Reopen the upstream task (`qc_rework`), re-block the branch (`reblock`), then recount.

    Counters change through `unresolve_blocker` once per task that stops being resolved, so
    every dependent (also outside the branch) follows the usual rule: ready ones are blocked,
    started ones get a `blocker_reopened` event.
    """
    up = plan.upstream
    changes = [(up, Action.QC_REWORK, Status.REWORK)]
    changes += [(r, Action.REBLOCK, Status.BLOCKED) for r in plan.reblock]
    versions = await graph_repository.set_branch_statuses(
        conn, changes=[(c[0]["id"], str(c[2])) for c in changes], now=now
    )
    upstream_payload: dict[str, Any] = {
        "inspection_id": inspection_id,
        "inspected_task_id": str(inspected["id"]),
    }
    if reason:
        upstream_payload["reason"] = reason
    reblock_payload = {"inspection_id": inspection_id, "upstream_task_id": str(up["id"])}
    for task, action, to_status in changes:
        upstream = action is Action.QC_REWORK
        history.status_change(
            task,
            action=action,
            from_status=task["status"],
            to_status=to_status,
            actor=actor if upstream else SYSTEM_ACTOR,
            row_version=versions[task["id"]],
            payload=upstream_payload if upstream else reblock_payload,
            now=now,
        )
    for blocker_id in plan.unresolved:
        await unresolve_blocker(
            conn, org_id=up["org_id"], blocker_id=blocker_id, history=history, now=now
        )
