"""What one task's transition does to the others: dependency counters, milestones, deliverables.

- A blocker resolved (done or cancelled): its dependents' `open_blockers` drop in one statement;
  those reaching zero go `blocked -> ready` (system `unblock`), milestones straight on to `done`
  (system `auto_complete`), which resolves them in turn.
- A resolved blocker reopened or restored: `ready` dependents go back to `blocked` (system
  `block`); started or finished ones are left alone and get a `blocker_reopened` event.
- A deliverable whose tasks are all resolved becomes `ready_for_signoff`; one whose task is
  reopened goes back to `in_progress`.
- A QC reject naming an upstream task (`rework_from_task_id`): that task goes `done -> rework`
  (system `qc_rework`), the tasks on the paths between it and the inspected task that are done,
  ready or in rework go to `blocked` (system `reblock`), then the counters follow as for any
  reopened blocker. See `plan_rework` / `apply_rework` and docs/qc.md.

Lock order is fixed: the transitioning task first, then dependents in id order (one statement
with `ORDER BY id FOR UPDATE`; for a QC reject naming an upstream task, the whole branch and its
dependents in one such statement before any write), then deliverables, then the project.
Statements are explicit SQL on the unit of work's connection: the hot path of the service.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from contracts import tasks as contracts
from servicekit.context import current_trace_ids, request_id_var
from servicekit.errors import Conflict, Unprocessable
from servicekit.jsonutil import dumps
from servicekit.outbox import event_headers
from task_svc.tasks.fsm import Action, EventKind, Status

SOURCE = "task-svc"
SYSTEM_ACTOR = "system"


def jtext(value: Any) -> str:
    return dumps(value).decode()


@dataclass(frozen=True)
class EventRow:
    """One `task_events` row to write."""

    org_id: uuid.UUID
    task_id: uuid.UUID
    action: str
    from_status: str | None
    to_status: str
    actor: str
    payload: dict[str, Any]
    row_version: int
    client_event_id: str | None = None
    response: dict[str, Any] | None = None
    status_code: int | None = None


@dataclass(frozen=True)
class OutboxRow:
    type: str
    aggregate_type: str
    aggregate_id: uuid.UUID
    payload: dict[str, Any]


@dataclass
class History:
    """Events and outbox rows collected during one transition, written in one statement."""

    events: list[EventRow] = field(default_factory=list)
    outbox: list[OutboxRow] = field(default_factory=list)


def history_ctes(start: int) -> str:
    """Two data-modifying CTEs (`ev`, `ob`) writing events and outbox rows from arrays.

    Parameters: 13 event arrays, the event time, 5 outbox arrays and the headers: 20 in all,
    numbered from `start`.
    """
    p = [f"${start + i}" for i in range(20)]
    # Only parameter numbers are interpolated; table names rely on the search_path.
    return f"""
ev AS (
  INSERT INTO task_events (org_id, task_id, action, from_status, to_status, actor, payload,
    client_event_id, row_version, request_id, trace_id, response, status_code, created_at)
  SELECT x.o, x.t, x.a, x.f, x.ts, x.ac, x.p::jsonb, x.c, x.rv, x.rq, x.tr, x.r::jsonb, x.sc,
    {p[13]}::timestamptz
  FROM unnest({p[0]}::uuid[], {p[1]}::uuid[], {p[2]}::text[], {p[3]}::text[], {p[4]}::text[],
    {p[5]}::text[], {p[6]}::text[], {p[7]}::text[], {p[8]}::int[], {p[9]}::text[],
    {p[10]}::text[], {p[11]}::text[], {p[12]}::int[])
    AS x(o, t, a, f, ts, ac, p, c, rv, rq, tr, r, sc)
  RETURNING 1
),
ob AS (
  INSERT INTO outbox (id, type, source, aggregate_type, aggregate_id, payload, headers)
  SELECT y.i, y.ty, '{SOURCE}', y.at, y.ai, y.p::jsonb, {p[19]}::jsonb
  FROM unnest({p[14]}::uuid[], {p[15]}::text[], {p[16]}::text[], {p[17]}::text[],
    {p[18]}::text[]) AS y(i, ty, at, ai, p)
  RETURNING 1
)"""  # noqa: S608


def history_params(history: History, now: datetime) -> list[Any]:
    ev = history.events
    request_id = request_id_var.get()
    trace_id = current_trace_ids()[0]
    ob = history.outbox
    return [
        [e.org_id for e in ev],
        [e.task_id for e in ev],
        [e.action for e in ev],
        [e.from_status for e in ev],
        [e.to_status for e in ev],
        [e.actor for e in ev],
        [jtext(e.payload) for e in ev],
        [e.client_event_id for e in ev],
        [e.row_version for e in ev],
        [request_id] * len(ev),
        [trace_id] * len(ev),
        [jtext(e.response) if e.response is not None else None for e in ev],
        [e.status_code for e in ev],
        now,
        [uuid.uuid4() for _ in ob],
        [o.type for o in ob],
        [o.aggregate_type for o in ob],
        [str(o.aggregate_id) for o in ob],
        [jtext(o.payload) for o in ob],
        jtext(event_headers()),
    ]


_WRITE_HISTORY_SQL = "WITH " + history_ctes(1) + "\nSELECT 1"


async def write_history(conn: AsyncConnection, history: History, now: datetime) -> None:
    """Write the collected events and outbox rows (one round trip), then forget them."""
    if not history.events and not history.outbox:
        return
    await conn.exec_driver_sql(_WRITE_HISTORY_SQL, tuple(history_params(history, now)))
    history.events.clear()
    history.outbox.clear()


def task_event_fields(row: dict[str, Any], *, row_version: int, now: datetime) -> dict[str, Any]:
    """What every task event's payload starts with (the contracts' task event base)."""
    return {
        "task_id": str(row["id"]),
        "org_id": str(row["org_id"]),
        "project_id": str(row["project_id"]),
        "deliverable_id": str(row["deliverable_id"]),
        "node_key": row["node_key"],
        "row_version": row_version,
        "occurred_at": now,
    }


def status_changed(
    row: dict[str, Any],
    *,
    action: str,
    from_status: str,
    to_status: str,
    actor: str,
    row_version: int,
    payload: dict[str, Any],
    now: datetime,
) -> OutboxRow:
    body = {
        **task_event_fields(row, row_version=row_version, now=now),
        "action": action,
        "from_status": from_status,
        "to_status": to_status,
        "actor": actor,
        "assigned_to": str(row["assigned_to"]) if row.get("assigned_to") else None,
        "payload": payload,
    }
    return OutboxRow(contracts.TASK_STATUS_CHANGED, "task", row["id"], body)


# ---------------------------------------------------------------------------------------------
# Dependency counters


_RESOLVE_SQL = """
WITH dec AS (
  SELECT d.task_id AS id, count(*)::int AS n
  FROM task_dependencies d WHERE d.blocker_id = ANY($1::uuid[]) GROUP BY d.task_id
), locked AS (
  -- FOR UPDATE returns the latest committed version of each row: freed is computed on it.
  SELECT t.id, t.status AS old_status, dec.n,
    (t.open_blockers - dec.n = 0 AND t.status = 'blocked') AS freed, t.is_milestone
  FROM tasks t JOIN dec ON dec.id = t.id
  WHERE t.org_id = $2 ORDER BY t.id FOR UPDATE OF t
)
UPDATE tasks t SET
  open_blockers = t.open_blockers - c.n,
  status = CASE WHEN c.freed THEN (CASE WHEN c.is_milestone THEN 'done' ELSE 'ready' END)
           ELSE t.status END,
  completed_at = CASE WHEN c.freed AND c.is_milestone THEN $3 ELSE t.completed_at END,
  row_version = t.row_version + CASE WHEN c.freed THEN
                  (CASE WHEN c.is_milestone THEN 2 ELSE 1 END) ELSE 0 END,
  updated_at = CASE WHEN c.freed THEN $3 ELSE t.updated_at END
FROM locked c WHERE t.id = c.id
RETURNING t.id, t.org_id, t.project_id, t.deliverable_id, t.node_key, t.assigned_to,
  c.old_status, t.status, t.row_version, c.freed, t.is_milestone
"""

_UNRESOLVE_SQL = """
WITH inc AS (
  SELECT d.task_id AS id, count(*)::int AS n
  FROM task_dependencies d WHERE d.blocker_id = ANY($1::uuid[]) GROUP BY d.task_id
), locked AS (
  SELECT t.id, t.status AS old_status, inc.n
  FROM tasks t JOIN inc ON inc.id = t.id
  WHERE t.org_id = $2 ORDER BY t.id FOR UPDATE OF t
)
UPDATE tasks t SET
  open_blockers = t.open_blockers + l.n,
  status = CASE WHEN l.old_status = 'ready' THEN 'blocked' ELSE t.status END,
  row_version = t.row_version + CASE WHEN l.old_status = 'ready' THEN 1 ELSE 0 END,
  updated_at = CASE WHEN l.old_status = 'ready' THEN $3 ELSE t.updated_at END
FROM locked l WHERE t.id = l.id
RETURNING t.id, t.org_id, t.project_id, t.deliverable_id, t.node_key, t.assigned_to,
  l.old_status, t.status, t.row_version
"""

_STARTED = frozenset({Status.IN_PROGRESS, Status.ON_HOLD, Status.IN_QC, Status.REWORK, Status.DONE})


@dataclass
class CascadeResult:
    unblocked: list[uuid.UUID] = field(default_factory=list)
    auto_completed: list[uuid.UUID] = field(default_factory=list)
    reblocked: list[uuid.UUID] = field(default_factory=list)
    flagged: list[uuid.UUID] = field(default_factory=list)
    resolved_deliverables: set[uuid.UUID] = field(default_factory=set)


async def resolve_blockers(
    conn: AsyncConnection,
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
        res = await conn.exec_driver_sql(_RESOLVE_SQL, (wave, org_id, now))
        next_wave: list[uuid.UUID] = []
        for r in sorted(res.mappings(), key=lambda m: m["id"]):
            if not r["freed"]:
                continue
            row = dict(r)
            tid = r["id"]
            if r["is_milestone"]:
                v_ready = r["row_version"] - 1
                _record_unblock(row, wave, v_ready, history, now)
                history.events.append(
                    EventRow(
                        org_id,
                        tid,
                        Action.AUTO_COMPLETE,
                        Status.READY,
                        Status.DONE,
                        SYSTEM_ACTOR,
                        {},
                        r["row_version"],
                    )
                )
                history.outbox.append(
                    status_changed(
                        row,
                        action=Action.AUTO_COMPLETE,
                        from_status=Status.READY,
                        to_status=Status.DONE,
                        actor=SYSTEM_ACTOR,
                        row_version=r["row_version"],
                        payload={},
                        now=now,
                    )
                )
                result.auto_completed.append(tid)
                result.resolved_deliverables.add(r["deliverable_id"])
                next_wave.append(tid)
            else:
                _record_unblock(row, wave, r["row_version"], history, now)
            result.unblocked.append(tid)
        wave = sorted(next_wave)
    return result


def _record_unblock(
    row: dict[str, Any], wave: list[uuid.UUID], version: int, history: History, now: datetime
) -> None:
    tid = row["id"]
    history.events.append(
        EventRow(
            row["org_id"],
            tid,
            Action.UNBLOCK,
            Status.BLOCKED,
            Status.READY,
            SYSTEM_ACTOR,
            {},
            version,
        )
    )
    history.outbox.append(
        status_changed(
            row,
            action=Action.UNBLOCK,
            from_status=Status.BLOCKED,
            to_status=Status.READY,
            actor=SYSTEM_ACTOR,
            row_version=version,
            payload={},
            now=now,
        )
    )
    history.outbox.append(
        OutboxRow(
            contracts.TASK_UNBLOCKED,
            "task",
            tid,
            {
                **task_event_fields(row, row_version=version, now=now),
                # With several blockers resolved in one wave, the first one is named.
                "resolved_blocker_id": str(wave[0]),
                "assigned_to": str(row["assigned_to"]) if row["assigned_to"] else None,
            },
        )
    )


async def unresolve_blocker(
    conn: AsyncConnection,
    *,
    org_id: uuid.UUID,
    blocker_id: uuid.UUID,
    history: History,
    now: datetime,
) -> CascadeResult:
    """A resolved blocker was reopened or restored: re-block ready dependents, flag started ones."""
    result = CascadeResult()
    res = await conn.exec_driver_sql(_UNRESOLVE_SQL, ([blocker_id], org_id, now))
    for r in sorted(res.mappings(), key=lambda m: m["id"]):
        row = dict(r)
        tid = r["id"]
        old = r["old_status"]
        if old == Status.READY:
            history.events.append(
                EventRow(
                    org_id,
                    tid,
                    Action.BLOCK,
                    Status.READY,
                    Status.BLOCKED,
                    SYSTEM_ACTOR,
                    {"blocker_id": str(blocker_id)},
                    r["row_version"],
                )
            )
            history.outbox.append(
                status_changed(
                    row,
                    action=Action.BLOCK,
                    from_status=Status.READY,
                    to_status=Status.BLOCKED,
                    actor=SYSTEM_ACTOR,
                    row_version=r["row_version"],
                    payload={"blocker_id": str(blocker_id)},
                    now=now,
                )
            )
            result.reblocked.append(tid)
        elif old in _STARTED:
            history.events.append(
                EventRow(
                    org_id,
                    tid,
                    EventKind.BLOCKER_REOPENED,
                    old,
                    old,
                    SYSTEM_ACTOR,
                    {"blocker_id": str(blocker_id)},
                    r["row_version"],
                )
            )
            result.flagged.append(tid)
    return result


# ---------------------------------------------------------------------------------------------
# Deliverables


_LOCK_DELIVERABLES_SQL = """
SELECT id, status FROM deliverables
WHERE id = ANY($1::uuid[]) AND org_id = $2 ORDER BY id FOR UPDATE
"""

_READY_FOR_SIGNOFF_SQL = """
UPDATE deliverables d
SET status = 'ready_for_signoff', row_version = d.row_version + 1, updated_at = $3
WHERE d.id = ANY($1::uuid[]) AND d.org_id = $2 AND d.status = 'in_progress'
  AND NOT EXISTS (
    SELECT 1 FROM tasks t
    WHERE t.deliverable_id = d.id AND t.status NOT IN ('done', 'cancelled'))
RETURNING d.id, d.org_id, d.project_id, d.serial, d.row_version
"""

_BACK_IN_PROGRESS_SQL = """
UPDATE deliverables
SET status = 'in_progress', row_version = row_version + 1, updated_at = $3
WHERE id = $1 AND org_id = $2 AND status = 'ready_for_signoff'
"""


async def mark_ready_for_signoff(
    conn: AsyncConnection,
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
        await conn.exec_driver_sql(_LOCK_DELIVERABLES_SQL, (ids, org_id))
    res = await conn.exec_driver_sql(_READY_FOR_SIGNOFF_SQL, (ids, org_id, now))
    ready: list[uuid.UUID] = []
    for r in res.mappings():
        ready.append(r["id"])
        history.outbox.append(
            OutboxRow(
                contracts.DELIVERABLE_READY_FOR_SIGNOFF,
                "deliverable",
                r["id"],
                {
                    "deliverable_id": str(r["id"]),
                    "org_id": str(r["org_id"]),
                    "project_id": str(r["project_id"]),
                    "serial": r["serial"],
                    "row_version": r["row_version"],
                    "occurred_at": now,
                },
            )
        )
    return ready


async def reopen_deliverable(
    conn: AsyncConnection, *, org_id: uuid.UUID, deliverable_id: uuid.UUID, now: datetime
) -> None:
    """A task of the deliverable is unresolved again: back to `in_progress`.

    A signed-off deliverable is final: reopening or restoring its tasks is refused.
    """
    res = await conn.exec_driver_sql(_LOCK_DELIVERABLES_SQL, ([deliverable_id], org_id))
    row = res.mappings().first()
    if row is not None and row["status"] == "signed_off":
        raise Conflict(
            f"deliverable {deliverable_id} is signed off; its tasks can no longer be reopened "
            "or restored",
            code="DELIVERABLE_SIGNED_OFF",
            deliverable_id=str(deliverable_id),
        )
    await conn.exec_driver_sql(_BACK_IN_PROGRESS_SQL, (deliverable_id, org_id, now))


# ---------------------------------------------------------------------------------------------
# QC reject naming an upstream task: the branch between is redone in order


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


# The edges into the inspected task and all its ancestors (the part of the graph a path from an
# upstream task to it can use).
_ANCESTOR_EDGES_SQL = """
WITH RECURSIVE up(id) AS (
  SELECT $1::uuid
  UNION
  SELECT d.blocker_id FROM task_dependencies d JOIN up ON d.task_id = up.id
)
SELECT d.task_id, d.blocker_id FROM task_dependencies d JOIN up ON d.task_id = up.id
"""
_REWORK_TASK_SQL = "SELECT id, deliverable_id, title FROM tasks WHERE id = $1 AND org_id = $2"
# The branch and every dependent of it, locked in id order in one statement.
_LOCK_BRANCH_SQL = """
SELECT t.id, t.org_id, t.project_id, t.deliverable_id, t.node_key, t.assigned_to, t.title,
  t.status, t.is_milestone, t.row_version
FROM tasks t
WHERE t.org_id = $2 AND (t.id = ANY($1::uuid[])
  OR t.id IN (SELECT d.task_id FROM task_dependencies d WHERE d.blocker_id = ANY($1::uuid[])))
ORDER BY t.id FOR UPDATE OF t
"""
_REBRANCH_SQL = """
UPDATE tasks t SET status = u.to_status, completed_at = NULL, row_version = t.row_version + 1,
  updated_at = $3
FROM unnest($1::uuid[], $2::text[]) AS u(id, to_status)
WHERE t.id = u.id
RETURNING t.id, t.row_version
"""
# A task in the branch re-blocked by a QC reject (others there are left as they are).
REBLOCKABLE: frozenset[str] = frozenset({Status.DONE, Status.READY, Status.REWORK})


@dataclass(frozen=True)
class ReworkPlan:
    """What a QC reject naming an upstream task changes, decided under the branch's locks."""

    upstream: dict[str, Any]
    reblock: list[dict[str, Any]]  # locked rows, id order
    unresolved: list[uuid.UUID]  # resolved tasks that become unresolved (upstream first)
    target_new_open: int  # how many of the inspected task's blockers become unresolved


def _refuse(code: str, detail: str, upstream_id: uuid.UUID, **extra: Any) -> Unprocessable:
    return Unprocessable(
        detail,
        code=code,
        field="payload.rework_from_task_id",
        rework_from_task_id=str(upstream_id),
        **extra,
    )


async def plan_rework(
    conn: AsyncConnection, *, row: dict[str, Any], upstream_id: uuid.UUID
) -> ReworkPlan:
    """Validate `upstream_id` for a QC reject of the locked task `row` and lock the branch.

    Raises (before anything is written) when the task is not in the same deliverable, not a
    transitive blocker of the inspected task, not done, or a milestone.
    """
    org_id = row["org_id"]
    res = await conn.exec_driver_sql(_REWORK_TASK_SQL, (upstream_id, org_id))
    found = res.mappings().first()
    if found is None:
        raise _refuse(
            "REWORK_TASK_NOT_FOUND",
            f"rework_from_task_id {upstream_id} is not a task of this organisation",
            upstream_id,
        )
    title = found["title"]
    if found["deliverable_id"] != row["deliverable_id"]:
        raise _refuse(
            "REWORK_TASK_OTHER_DELIVERABLE",
            f"task {upstream_id} ('{title}') belongs to another deliverable than the inspected "
            f"task {row['id']}: only an upstream task of the same deliverable can be reworked",
            upstream_id,
        )
    blockers_of: dict[uuid.UUID, list[uuid.UUID]] = {}
    edges = await conn.exec_driver_sql(_ANCESTOR_EDGES_SQL, (row["id"],))
    for edge in edges.mappings():
        blockers_of.setdefault(edge["task_id"], []).append(edge["blocker_id"])
    upstream_of_target = ancestors_of(blockers_of, row["id"])
    if upstream_id not in upstream_of_target:
        raise _refuse(
            "REWORK_TASK_NOT_UPSTREAM",
            f"task {upstream_id} ('{title}') is not upstream of the inspected task "
            f"{row['id']} ('{row['title']}'): no dependency path leads from it to the inspected "
            "task",
            upstream_id,
        )
    candidates = branch_between(blockers_of, upstream=upstream_id, target=row["id"])
    res = await conn.exec_driver_sql(_LOCK_BRANCH_SQL, (sorted({upstream_id, *candidates}), org_id))
    locked = {r["id"]: dict(r) for r in res.mappings()}
    upstream = locked[upstream_id]
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
    cancelled = {t for t in candidates if locked[t]["status"] == Status.CANCELLED}
    between = branch_between(blockers_of, upstream=upstream_id, target=row["id"], skip=cancelled)
    reblock = [locked[t] for t in sorted(between) if locked[t]["status"] in REBLOCKABLE]
    unresolved = [upstream_id, *(r["id"] for r in reblock if r["status"] == Status.DONE)]
    target_new_open = len(set(blockers_of.get(row["id"], ())) & set(unresolved))
    return ReworkPlan(upstream, reblock, unresolved, target_new_open)


async def apply_rework(
    conn: AsyncConnection,
    plan: ReworkPlan,
    *,
    inspected: dict[str, Any],
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
    res = await conn.exec_driver_sql(
        _REBRANCH_SQL, ([c[0]["id"] for c in changes], [str(c[2]) for c in changes], now)
    )
    versions: dict[uuid.UUID, int] = {r["id"]: r["row_version"] for r in res.mappings()}
    upstream_payload: dict[str, Any] = {
        "inspection_id": inspection_id,
        "inspected_task_id": str(inspected["id"]),
    }
    if reason:
        upstream_payload["reason"] = reason
    reblock_payload = {"inspection_id": inspection_id, "upstream_task_id": str(up["id"])}
    for task, action, to_status in changes:
        payload = upstream_payload if action is Action.QC_REWORK else reblock_payload
        who = actor if action is Action.QC_REWORK else SYSTEM_ACTOR
        version = versions[task["id"]]
        history.events.append(
            EventRow(
                task["org_id"],
                task["id"],
                action,
                task["status"],
                to_status,
                who,
                payload,
                version,
            )
        )
        history.outbox.append(
            status_changed(
                task,
                action=action,
                from_status=task["status"],
                to_status=to_status,
                actor=who,
                row_version=version,
                payload=payload,
                now=now,
            )
        )
    for blocker_id in plan.unresolved:
        await unresolve_blocker(
            conn, org_id=up["org_id"], blocker_id=blocker_id, history=history, now=now
        )
