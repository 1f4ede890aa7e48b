"""Every statement of the task write path: transitions, cascades, QC rework, history.

Explicit SQL on the unit of work's connection (the hot path of the service: few round trips,
`RETURNING`, data-modifying CTEs). Table names rely on the service's search_path; only parameter
numbers are ever put into statement text.

Every function takes a `Conn`: SQLAlchemy's connection (a session's, a worker's), or the pool's
asyncpg connection itself, which the transition route uses (`servicekit.db.driver_transaction`):
the statements and the rows they return are the same either way.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, TypeAlias

import asyncpg
from sqlalchemy.ext.asyncio import AsyncConnection

from servicekit.context import current_trace_ids, request_id_var
from servicekit.jsonutil import dumps
from servicekit.outbox import event_headers
from task_svc.tasks.history import SOURCE, History

# A unit of work's connection: SQLAlchemy's, or asyncpg's own on the transition route.
Conn: TypeAlias = AsyncConnection | asyncpg.Connection


async def _fetch(conn: Conn, sql: str, params: Sequence[Any]) -> list[Mapping[str, Any]]:
    """The rows of one statement, as mappings by column name."""
    rows: list[Any]
    if isinstance(conn, AsyncConnection):
        rows = list((await conn.exec_driver_sql(sql, tuple(params))).mappings())
    else:
        rows = await conn.fetch(sql, *params)
    return rows


async def _fetchrow(conn: Conn, sql: str, params: Sequence[Any]) -> Mapping[str, Any] | None:
    """The first row of one statement, or None."""
    row: Any
    if isinstance(conn, AsyncConnection):
        row = (await conn.exec_driver_sql(sql, tuple(params))).mappings().first()
    else:
        row = await conn.fetchrow(sql, *params)
    return row


async def _execute(conn: Conn, sql: str, params: Sequence[Any]) -> None:
    """Run one statement that returns no rows."""
    if isinstance(conn, AsyncConnection):
        await conn.exec_driver_sql(sql, tuple(params))
    else:
        await conn.execute(sql, *params)


# The columns of a locked task row, as every transition reads them. `has_dependents` lets a
# resolving transition skip the dependents' statement when there are none: a task's dependency
# rows are written with the task itself (project bootstrap) or by a project migration, which
# holds the lock of every task of the project, so reading them under the task's lock is as good
# as reading them later.
_TASK_COLUMNS = (
    "t.id, t.org_id, t.project_id, t.deliverable_id, t.node_key, t.title, t.status, "
    "t.assigned_to, t.assigned_at, t.started_at, t.completed_at, t.due_at, t.priority, "
    "t.qc_required, t.qc_checklist, t.is_milestone, t.open_blockers, t.row_version, "
    "t.updated_at, "
    "EXISTS (SELECT 1 FROM task_dependencies d WHERE d.blocker_id = t.id) AS has_dependents"
)
# The task row is locked; its project's status and the event of an earlier request with the
# same client_event_id come in the same round trip. The project row is not locked: a project put
# on hold concurrently takes effect from the next transition on. The event is read in the
# statement's snapshot, so a duplicate that waited here for the original's lock does not see it
# (the transition service then looks again with `find_prior`).
_TASK_WITH_PRIOR_SQL = (
    f"SELECT {_TASK_COLUMNS}, p.status AS project_status, e.action AS prior_action, "
    "e.payload AS prior_payload, e.response AS prior_response, e.status_code AS prior_code "
    "{extra}FROM tasks t JOIN projects p ON p.id = t.project_id "
    "LEFT JOIN task_events e ON e.task_id = t.id AND e.client_event_id = $3 "
    "WHERE t.id = $1 AND t.org_id = $2"
)
_LOCK_TASK_SQL = _TASK_WITH_PRIOR_SQL.format(extra="") + " FOR UPDATE OF t"
# The same, unlocked, with the row's xmin: the transaction id that wrote this version of the
# row. Every update of the row writes a new version with a new xmin (a lock alone does not), so
# "xmin is still X" is "nothing changed the row since it was read", whichever column a change
# touched (a dependency counter moves without a row_version bump).
_READ_TASK_SQL = _TASK_WITH_PRIOR_SQL.format(extra=", t.xmin::text AS xmin ")
_PRIOR_KEYS = ("prior_action", "prior_payload", "prior_response", "prior_code")
_LOCK_TASKS_SQL = (
    f"SELECT {_TASK_COLUMNS} FROM tasks t "  # noqa: S608
    "WHERE t.id = ANY($1::uuid[]) AND t.org_id = $2 ORDER BY t.id FOR UPDATE OF t"
)
_PRIOR_SQL = (
    "SELECT action, payload, response, status_code FROM task_events "
    "WHERE task_id = $1 AND client_event_id = $2"
)

# Parameters of the history CTEs: 13 event arrays, the event time, 4 outbox arrays, the
# payloads, the dataschemas and the headers every outbox row shares.
HISTORY_PARAMS = 21


def _history_ctes(start: int, *, only_if: str = "") -> str:
    """Two data-modifying CTEs (`ev`, `ob`) writing events and outbox rows from arrays;
    `only_if`: a condition both inserts need (every CTE of a statement runs, whatever the
    others did)."""
    p = [f"${start + i}" for i in range(HISTORY_PARAMS)]
    where = f"\n  WHERE {only_if}" if only_if else ""
    return f"""ev AS (
  INSERT INTO task_events (org_id, task_id, action, from_status, to_status, actor, payload,
    client_event_id, row_version, request_id, trace_id, response, status_code, created_at)
  SELECT x.o, x.t, x.a, x.f, x.ts, x.ac, x.p::jsonb, x.c, x.rv, x.rq, x.tr, x.r::jsonb, x.sc,
    {p[13]}::timestamptz
  FROM unnest({p[0]}::uuid[], {p[1]}::uuid[], {p[2]}::text[], {p[3]}::text[], {p[4]}::text[],
    {p[5]}::text[], {p[6]}::text[], {p[7]}::text[], {p[8]}::int[], {p[9]}::text[],
    {p[10]}::text[], {p[11]}::text[], {p[12]}::int[])
    AS x(o, t, a, f, ts, ac, p, c, rv, rq, tr, r, sc){where}
  RETURNING 1
),
ob AS (
  INSERT INTO outbox (id, type, source, aggregate_type, aggregate_id, payload, headers)
  SELECT y.i, y.ty, '{SOURCE}', y.at, y.ai, y.p::jsonb,
    {p[20]}::jsonb || jsonb_build_object('dataschema', y.ds)
  FROM unnest({p[14]}::uuid[], {p[15]}::text[], {p[16]}::text[], {p[17]}::text[],
    {p[18]}::text[], {p[19]}::text[]) AS y(i, ty, at, ai, p, ds){where}
  RETURNING 1
)"""  # noqa: S608


_UPDATE_TASK_CTE = """upd AS (
  UPDATE tasks SET status = $3, assigned_to = $4, assigned_at = $5, started_at = $6,
    completed_at = $7, updated_at = $8, row_version = $9
  WHERE id = $1 AND org_id = $2{unchanged}
  RETURNING 1
)"""
_UPDATE_TASK_PARAMS = 9
_XMIN_PARAM = f"${_UPDATE_TASK_PARAMS + HISTORY_PARAMS + 1}"
_DELIVERABLE_PARAM = f"${_UPDATE_TASK_PARAMS + HISTORY_PARAMS + 1}"
# The task's update with its history, in one statement.
_WRITE_SQL = (
    f"WITH {_UPDATE_TASK_CTE.format(unchanged='')},\n{_history_ctes(_UPDATE_TASK_PARAMS + 1)}\n"
    "SELECT count(*) FROM upd"
)
# The same for a row read without a lock, in one statement that commits by itself: the task is
# updated only if no one changed it since it was read (its xmin), and its history is written
# only with it. Under READ COMMITTED, a concurrent writer's update is waited for and the
# condition checked again on the row it left, so of two such writes one wins, and the other
# writes nothing and says so (count 0).
_WRITE_IF_UNCHANGED_SQL = (
    f"WITH {_UPDATE_TASK_CTE.format(unchanged=f' AND xmin::text = {_XMIN_PARAM}')},\n"  # noqa: S608
    f"{_history_ctes(_UPDATE_TASK_PARAMS + 1, only_if='EXISTS (SELECT 1 FROM upd)')}\n"
    "SELECT count(*) FROM upd"
)
# The same, also locking the task's deliverable: for a task becoming resolved that has no
# dependents, the deliverable is the next lock in the fixed order (task, dependents,
# deliverables), so it is taken here rather than in a statement of its own.
_LOCK_DELIVERABLE_CTE = (
    f"dl AS (SELECT id FROM deliverables WHERE id = {_DELIVERABLE_PARAM} AND org_id = $2 "  # noqa: S608
    "FOR UPDATE)"
)
_WRITE_LOCKING_DELIVERABLE_SQL = (
    f"WITH {_UPDATE_TASK_CTE.format(unchanged='')},\n"  # noqa: S608
    f"{_history_ctes(_UPDATE_TASK_PARAMS + 1)},\n"
    f"{_LOCK_DELIVERABLE_CTE}\n"
    "SELECT (SELECT count(*) FROM upd), (SELECT count(*) FROM dl)"
)
_WRITE_HISTORY_SQL = f"WITH {_history_ctes(1)}\nSELECT 1"


def _jtext(value: Any) -> str:
    return dumps(value).decode()


def _history_params(history: History, now: datetime) -> list[Any]:
    ev = history.events
    ob = history.outbox
    request_id = request_id_var.get()
    trace_id = current_trace_ids()[0]
    return [
        [e.org_id for e in ev],
        [e.task_id for e in ev],
        [e.action for e in ev],
        [e.from_status for e in ev],
        [e.to_status for e in ev],
        [e.actor for e in ev],
        [_jtext(e.payload) for e in ev],
        [e.client_event_id for e in ev],
        [e.row_version for e in ev],
        [request_id] * len(ev),
        [trace_id] * len(ev),
        [_jtext(e.response) if e.response is not None else None for e in ev],
        [e.status_code for e in ev],
        now,
        [o.id for o in ob],
        [o.type for o in ob],
        [o.aggregate_type for o in ob],
        [o.aggregate_id for o in ob],
        [o.payload for o in ob],
        [o.dataschema for o in ob],
        _jtext(event_headers()),
    ]


# ---------------------------------------------------------------------------------------------
# One task


Loaded: TypeAlias = tuple[dict[str, Any], tuple[Any, ...] | None]


def _with_prior(found: Mapping[str, Any] | None) -> Loaded | None:
    if found is None:
        return None
    row = dict(found)
    prior = tuple(row.pop(k) for k in _PRIOR_KEYS)
    return row, (prior if prior[0] is not None else None)


async def lock_task(
    conn: Conn, *, task_id: uuid.UUID, org_id: uuid.UUID, client_event_id: str | None
) -> Loaded | None:
    """The task row locked, and the (action, payload, response, status_code) of an earlier
    request with this client_event_id if the statement's snapshot sees one; None: no task."""
    return _with_prior(await _fetchrow(conn, _LOCK_TASK_SQL, (task_id, org_id, client_event_id)))


async def read_task(
    conn: Conn, *, task_id: uuid.UUID, org_id: uuid.UUID, client_event_id: str | None
) -> tuple[dict[str, Any], tuple[Any, ...] | None, str] | None:
    """`lock_task` without the lock, and the row's xmin for `write_task_if_unchanged`."""
    loaded = _with_prior(await _fetchrow(conn, _READ_TASK_SQL, (task_id, org_id, client_event_id)))
    if loaded is None:
        return None
    row, prior = loaded
    return row, prior, row.pop("xmin")


async def lock_tasks(
    conn: Conn, *, task_ids: Sequence[uuid.UUID], org_id: uuid.UUID
) -> list[dict[str, Any]]:
    """Task rows locked in id order (the fixed lock order)."""
    return [dict(r) for r in await _fetch(conn, _LOCK_TASKS_SQL, (sorted(task_ids), org_id))]


async def find_prior(
    conn: Conn, *, task_id: uuid.UUID, client_event_id: str
) -> tuple[Any, ...] | None:
    """The earlier request with this client_event_id, read now (after the lock was taken)."""
    found = await _fetchrow(conn, _PRIOR_SQL, (task_id, client_event_id))
    return tuple(found.values()) if found is not None else None


def _task_params(new: dict[str, Any], history: History, now: datetime) -> list[Any]:
    return [
        new["id"],
        new["org_id"],
        new["status"],
        new["assigned_to"],
        new["assigned_at"],
        new["started_at"],
        new["completed_at"],
        now,
        new["row_version"],
        *_history_params(history, now),
    ]


async def write_task(
    conn: Conn,
    *,
    new: dict[str, Any],
    history: History,
    now: datetime,
    lock_deliverable: bool = False,
) -> None:
    """Update the task to `new` and write the history, in one statement (then forget it);
    `lock_deliverable`: lock the task's deliverable in the same statement."""
    params = _task_params(new, history, now)
    if lock_deliverable:
        params.append(new["deliverable_id"])
        await _fetch(conn, _WRITE_LOCKING_DELIVERABLE_SQL, params)
    else:
        await _fetch(conn, _WRITE_SQL, params)
    history.clear()


async def write_task_if_unchanged(
    conn: Conn, *, new: dict[str, Any], history: History, now: datetime, xmin: str
) -> bool:
    """`write_task` for a row read by `read_task`, in one statement: False (and nothing
    written) when the row changed since it was read."""
    rows = await _fetch(conn, _WRITE_IF_UNCHANGED_SQL, [*_task_params(new, history, now), xmin])
    if rows[0]["count"] == 0:
        return False
    history.clear()
    return True


async def write_history(conn: Conn, history: History, now: datetime) -> None:
    """Write the collected events and outbox rows (one round trip), then forget them."""
    if not history:
        return
    await _fetch(conn, _WRITE_HISTORY_SQL, _history_params(history, now))
    history.clear()


_OPEN_BLOCKERS_SQL = """
SELECT b.id, b.title, b.status FROM task_dependencies d
JOIN tasks b ON b.id = d.blocker_id
WHERE d.task_id = $1 AND b.status NOT IN ('done', 'cancelled') ORDER BY b.id
"""


async def open_blockers(conn: Conn, *, task_id: uuid.UUID) -> list[dict[str, Any]]:
    """The unresolved blockers of a task: id, title, status."""
    return [dict(r) for r in await _fetch(conn, _OPEN_BLOCKERS_SQL, (task_id,))]


# The QC round (1 + earlier rejects) and the project's pinned template, in one round trip.
_QC_ROUND_SQL = (
    "SELECT (SELECT count(*) FROM task_events WHERE task_id = $1 AND action = 'qc_reject'), "
    "p.template_id, p.template_version FROM projects p WHERE p.id = $2"
)


async def qc_round(
    conn: Conn, *, task_id: uuid.UUID, project_id: uuid.UUID
) -> tuple[int, uuid.UUID | None, int | None]:
    """(the QC round the task enters, its project's template id and version)."""
    row = await _fetchrow(conn, _QC_ROUND_SQL, (task_id, project_id))
    assert row is not None  # the task's project exists (its row is locked)
    rejects, template_id, template_version = tuple(row.values())
    return int(rejects) + 1, template_id, template_version


# ---------------------------------------------------------------------------------------------
# Dependency counters


RESOLVE_SQL = """
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


# Tasks still blocked with no open blocker left (their blockers were taken away, not resolved):
# freed like RESOLVE_SQL frees them.
_RELEASE_SQL = """
WITH locked AS (
  SELECT t.id, t.is_milestone FROM tasks t
  WHERE t.id = ANY($1::uuid[]) AND t.org_id = $2 AND t.status = 'blocked'
    AND t.open_blockers = 0
  ORDER BY t.id FOR UPDATE OF t
)
UPDATE tasks t SET
  status = CASE WHEN c.is_milestone THEN 'done' ELSE 'ready' END,
  completed_at = CASE WHEN c.is_milestone THEN $3 ELSE t.completed_at END,
  row_version = t.row_version + CASE WHEN c.is_milestone THEN 2 ELSE 1 END,
  updated_at = $3
FROM locked c WHERE t.id = c.id
RETURNING t.id, t.org_id, t.project_id, t.deliverable_id, t.node_key, t.assigned_to,
  t.status, t.row_version, t.is_milestone
"""


async def release_blocked(
    conn: Conn, *, task_ids: list[uuid.UUID], org_id: uuid.UUID, now: datetime
) -> list[dict[str, Any]]:
    """Free the tasks that are still blocked with no open blocker (milestones straight to
    done); the changed rows in id order."""
    rows = await _fetch(conn, _RELEASE_SQL, (task_ids, org_id, now))
    return sorted((dict(r) for r in rows), key=lambda r: r["id"])


async def resolve_dependents(
    conn: Conn, *, blocker_ids: list[uuid.UUID], org_id: uuid.UUID, now: datetime
) -> list[dict[str, Any]]:
    """Drop the dependents' counters of resolved blockers, freeing those reaching zero
    (milestones straight to done); the changed rows in id order, with `old_status`, `freed`."""
    rows = await _fetch(conn, RESOLVE_SQL, (blocker_ids, org_id, now))
    return sorted((dict(r) for r in rows), key=lambda r: r["id"])


async def unresolve_dependents(
    conn: Conn, *, blocker_id: uuid.UUID, org_id: uuid.UUID, now: datetime
) -> list[dict[str, Any]]:
    """Raise the dependents' counters of a blocker resolved no more, re-blocking ready ones;
    the changed rows in id order, with `old_status`."""
    rows = await _fetch(conn, _UNRESOLVE_SQL, ([blocker_id], org_id, now))
    return sorted((dict(r) for r in rows), key=lambda r: r["id"])


# ---------------------------------------------------------------------------------------------
# Deliverables


LOCK_DELIVERABLES_SQL = """
SELECT id, status FROM deliverables
WHERE id = ANY($1::uuid[]) AND org_id = $2 ORDER BY id FOR UPDATE
"""

READY_FOR_SIGNOFF_SQL = """
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


async def lock_deliverables(
    conn: Conn, *, deliverable_ids: list[uuid.UUID], org_id: uuid.UUID
) -> dict[uuid.UUID, str]:
    """Lock deliverables in id order; their statuses."""
    rows = await _fetch(conn, LOCK_DELIVERABLES_SQL, (deliverable_ids, org_id))
    return {r["id"]: r["status"] for r in rows}


async def mark_ready_for_signoff(
    conn: Conn, *, deliverable_ids: list[uuid.UUID], org_id: uuid.UUID, now: datetime
) -> list[dict[str, Any]]:
    """In-progress deliverables whose every task is resolved become ready_for_signoff."""
    rows = await _fetch(conn, READY_FOR_SIGNOFF_SQL, (deliverable_ids, org_id, now))
    return [dict(r) for r in rows]


async def back_in_progress(
    conn: Conn, *, deliverable_id: uuid.UUID, org_id: uuid.UUID, now: datetime
) -> None:
    await _execute(conn, _BACK_IN_PROGRESS_SQL, (deliverable_id, org_id, now))


# ---------------------------------------------------------------------------------------------
# QC reject naming an upstream task


# The edges into a task and all its ancestors (the part of the graph a path to it can use).
_ANCESTOR_EDGES_SQL = """
WITH RECURSIVE up(id) AS (
  SELECT $1::uuid
  UNION
  SELECT d.blocker_id FROM task_dependencies d JOIN up ON d.task_id = up.id
)
SELECT d.task_id, d.blocker_id FROM task_dependencies d JOIN up ON d.task_id = up.id
"""
_TASK_BRIEF_SQL = "SELECT id, deliverable_id, title FROM tasks WHERE id = $1 AND org_id = $2"
# The branch and every dependent of it, locked in id order in one statement.
_LOCK_BRANCH_SQL = """
SELECT t.id, t.org_id, t.project_id, t.deliverable_id, t.node_key, t.assigned_to, t.title,
  t.status, t.is_milestone, t.row_version
FROM tasks t
WHERE t.org_id = $2 AND (t.id = ANY($1::uuid[])
  OR t.id IN (SELECT d.task_id FROM task_dependencies d WHERE d.blocker_id = ANY($1::uuid[])))
ORDER BY t.id FOR UPDATE OF t
"""
_SET_BRANCH_STATUSES_SQL = """
UPDATE tasks t SET status = u.to_status, completed_at = NULL, row_version = t.row_version + 1,
  updated_at = $3
FROM unnest($1::uuid[], $2::text[]) AS u(id, to_status)
WHERE t.id = u.id
RETURNING t.id, t.row_version
"""


async def task_brief(conn: Conn, *, task_id: uuid.UUID, org_id: uuid.UUID) -> dict[str, Any] | None:
    """id, deliverable_id and title of a task of the org (not locked)."""
    found = await _fetchrow(conn, _TASK_BRIEF_SQL, (task_id, org_id))
    return dict(found) if found is not None else None


async def ancestor_edges(conn: Conn, *, task_id: uuid.UUID) -> dict[uuid.UUID, list[uuid.UUID]]:
    """Blockers of the task and of all its ancestors: task -> its blockers."""
    blockers_of: dict[uuid.UUID, list[uuid.UUID]] = {}
    for edge in await _fetch(conn, _ANCESTOR_EDGES_SQL, (task_id,)):
        blockers_of.setdefault(edge["task_id"], []).append(edge["blocker_id"])
    return blockers_of


async def lock_branch(
    conn: Conn, *, task_ids: list[uuid.UUID], org_id: uuid.UUID
) -> dict[uuid.UUID, dict[str, Any]]:
    """Lock the tasks and every dependent of them, in id order; the rows by id."""
    return {r["id"]: dict(r) for r in await _fetch(conn, _LOCK_BRANCH_SQL, (task_ids, org_id))}


async def set_branch_statuses(
    conn: Conn, *, changes: list[tuple[uuid.UUID, str]], now: datetime
) -> dict[uuid.UUID, int]:
    """Move each task to its status (unfinished again); their new row versions."""
    ids = [c[0] for c in changes]
    statuses = [c[1] for c in changes]
    rows = await _fetch(conn, _SET_BRANCH_STATUSES_SQL, (ids, statuses, now))
    return {r["id"]: r["row_version"] for r in rows}


# ---------------------------------------------------------------------------------------------
# History reads


_EVENTS_SQL = """
SELECT e.id, e.action, e.from_status, e.to_status, e.actor, e.payload, e.client_event_id,
  e.row_version, e.request_id, e.trace_id, e.created_at
FROM task_events e
WHERE e.task_id = $1 AND e.org_id = $2 AND e.id > $3
ORDER BY e.id LIMIT $4
"""
_TASK_EXISTS_SQL = "SELECT 1 FROM tasks WHERE id = $1 AND org_id = $2"


async def task_exists(conn: Conn, *, task_id: uuid.UUID, org_id: uuid.UUID) -> bool:
    return await _fetchrow(conn, _TASK_EXISTS_SQL, (task_id, org_id)) is not None


async def list_events(
    conn: Conn, *, task_id: uuid.UUID, org_id: uuid.UUID, after: int, limit: int
) -> list[dict[str, Any]]:
    """Up to `limit` events of the task after event id `after`, oldest first."""
    return [dict(r) for r in await _fetch(conn, _EVENTS_SQL, (task_id, org_id, after, limit))]
