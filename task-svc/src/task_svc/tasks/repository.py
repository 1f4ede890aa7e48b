"""Every statement of one task's transition: load (locked or not), write with its history,
the reads a refusal or a QC submission needs, and the history's reads. The cascades' statements
are in `graph_repository.py`.

Explicit SQL on the unit of work's connection (`sql.Conn`; the hot path of the service: few
round trips, `RETURNING`, data-modifying CTEs). Table names rely on the service's search_path;
only parameter numbers are ever put into statement text.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, TypeAlias

from servicekit.context import current_trace_ids, request_id_var
from servicekit.jsonutil import dumps
from servicekit.outbox import event_headers
from task_svc.tasks import graph_repository
from task_svc.tasks.history import SOURCE, History
from task_svc.tasks.sql import Conn, fetch, fetchrow

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
# The same, also locking the task's deliverable when the task has no dependents: for an action
# that may resolve the task, the deliverable is then the next lock in the fixed order (task,
# dependents, deliverables). Taken now, the write's own statement can check whether the
# deliverable became ready (`_WRITE_MARKING_READY_SQL`): its snapshot starts after the lock.
_LOCK_TASK_AND_DELIVERABLE_SQL = (
    f"WITH t0 AS ({_LOCK_TASK_SQL}),\n"  # noqa: S608
    "dl AS (SELECT d.id FROM deliverables d JOIN t0 ON d.id = t0.deliverable_id "
    "WHERE d.org_id = $2 AND NOT t0.has_dependents FOR UPDATE OF d)\n"
    "SELECT t0.*, EXISTS (SELECT 1 FROM dl) AS deliverable_locked FROM t0"
)
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
# The one parameter after the task's and the history's: the xmin of an unlocked write, or the
# deliverable a resolving write locks.
_EXTRA_PARAM = f"${_UPDATE_TASK_PARAMS + HISTORY_PARAMS + 1}"
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
    f"WITH {_UPDATE_TASK_CTE.format(unchanged=f' AND xmin::text = {_EXTRA_PARAM}')},\n"  # noqa: S608
    f"{_history_ctes(_UPDATE_TASK_PARAMS + 1, only_if='EXISTS (SELECT 1 FROM upd)')}\n"
    "SELECT count(*) FROM upd"
)
# The same, also locking the task's deliverable: for a task becoming resolved that has no
# dependents, the deliverable is the next lock in the fixed order (task, dependents,
# deliverables), so it is taken here rather than in a statement of its own.
_LOCK_DELIVERABLE_CTE = (
    f"dl AS (SELECT id FROM deliverables WHERE id = {_EXTRA_PARAM} AND org_id = $2 "  # noqa: S608
    "FOR UPDATE)"
)
_WRITE_LOCKING_DELIVERABLE_SQL = (
    f"WITH {_UPDATE_TASK_CTE.format(unchanged='')},\n"  # noqa: S608
    f"{_history_ctes(_UPDATE_TASK_PARAMS + 1)},\n"
    f"{_LOCK_DELIVERABLE_CTE}\n"
    "SELECT (SELECT count(*) FROM upd), (SELECT count(*) FROM dl)"
)
# The same for a task becoming resolved whose deliverable `lock_task` already locked: the
# statement also turns the deliverable ready_for_signoff if this was its last open task, and
# returns it then.
_WRITE_MARKING_READY_SQL = (
    f"WITH {_UPDATE_TASK_CTE.format(unchanged='')},\n"
    f"{_history_ctes(_UPDATE_TASK_PARAMS + 1)},\n"
    "rdy AS ("
    + graph_repository.ready_for_signoff_sql(
        ids=f"ARRAY[{_EXTRA_PARAM}::uuid]", org="$2", now="$8", resolving_task="$1"
    )
    + ")\nSELECT * FROM rdy"
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
    conn: Conn,
    *,
    task_id: uuid.UUID,
    org_id: uuid.UUID,
    client_event_id: str | None,
    with_deliverable: bool = False,
) -> Loaded | None:
    """The task row locked, and the (action, payload, response, status_code) of an earlier
    request with this client_event_id if the statement's snapshot sees one; None: no task.

    `with_deliverable`: also lock its deliverable if the task has no dependents (the row's
    `deliverable_locked` says whether it was).
    """
    sql = _LOCK_TASK_AND_DELIVERABLE_SQL if with_deliverable else _LOCK_TASK_SQL
    return _with_prior(await fetchrow(conn, sql, (task_id, org_id, client_event_id)))


async def read_task(
    conn: Conn, *, task_id: uuid.UUID, org_id: uuid.UUID, client_event_id: str | None
) -> tuple[dict[str, Any], tuple[Any, ...] | None, str] | None:
    """`lock_task` without the lock, and the row's xmin for `write_task_if_unchanged`."""
    loaded = _with_prior(await fetchrow(conn, _READ_TASK_SQL, (task_id, org_id, client_event_id)))
    if loaded is None:
        return None
    row, prior = loaded
    return row, prior, row.pop("xmin")


async def lock_tasks(
    conn: Conn, *, task_ids: Sequence[uuid.UUID], org_id: uuid.UUID
) -> list[dict[str, Any]]:
    """Task rows locked in id order (the fixed lock order)."""
    return [dict(r) for r in await fetch(conn, _LOCK_TASKS_SQL, (sorted(task_ids), org_id))]


async def find_prior(
    conn: Conn, *, task_id: uuid.UUID, client_event_id: str
) -> tuple[Any, ...] | None:
    """The earlier request with this client_event_id, read now (after the lock was taken)."""
    found = await fetchrow(conn, _PRIOR_SQL, (task_id, client_event_id))
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
        await fetch(conn, _WRITE_LOCKING_DELIVERABLE_SQL, params)
    else:
        await fetch(conn, _WRITE_SQL, params)
    history.clear()


async def write_task_marking_ready(
    conn: Conn, *, new: dict[str, Any], history: History, now: datetime
) -> list[dict[str, Any]]:
    """`write_task` for a task becoming resolved whose deliverable is locked already (by
    `lock_task`), in one statement that also turns the deliverable ready_for_signoff if no
    other task of it is open; the deliverable's row if it did (id, org_id, project_id, serial,
    row_version)."""
    rows = await fetch(
        conn, _WRITE_MARKING_READY_SQL, [*_task_params(new, history, now), new["deliverable_id"]]
    )
    history.clear()
    return [dict(r) for r in rows]


async def write_task_if_unchanged(
    conn: Conn, *, new: dict[str, Any], history: History, now: datetime, xmin: str
) -> bool:
    """`write_task` for a row read by `read_task`, in one statement: False (and nothing
    written) when the row changed since it was read."""
    rows = await fetch(conn, _WRITE_IF_UNCHANGED_SQL, [*_task_params(new, history, now), xmin])
    if rows[0]["count"] == 0:
        return False
    history.clear()
    return True


async def write_history(conn: Conn, history: History, now: datetime) -> None:
    """Write the collected events and outbox rows (one round trip), then forget them."""
    if not history:
        return
    await fetch(conn, _WRITE_HISTORY_SQL, _history_params(history, now))
    history.clear()


_OPEN_BLOCKERS_SQL = """
SELECT b.id, b.title, b.status FROM task_dependencies d
JOIN tasks b ON b.id = d.blocker_id
WHERE d.task_id = $1 AND b.status NOT IN ('done', 'cancelled') ORDER BY b.id
"""


async def open_blockers(conn: Conn, *, task_id: uuid.UUID) -> list[dict[str, Any]]:
    """The unresolved blockers of a task: id, title, status."""
    return [dict(r) for r in await fetch(conn, _OPEN_BLOCKERS_SQL, (task_id,))]


# The QC round (1 + earlier rejects) and the project's pinned template, in one round trip.
_QC_ROUND_SQL = (
    "SELECT (SELECT count(*) FROM task_events WHERE task_id = $1 AND action = 'qc_reject'), "
    "p.template_id, p.template_version FROM projects p WHERE p.id = $2"
)


async def qc_round(
    conn: Conn, *, task_id: uuid.UUID, project_id: uuid.UUID
) -> tuple[int, uuid.UUID | None, int | None]:
    """(the QC round the task enters, its project's template id and version)."""
    row = await fetchrow(conn, _QC_ROUND_SQL, (task_id, project_id))
    assert row is not None  # the task's project exists (its row is locked)
    rejects, template_id, template_version = tuple(row.values())
    return int(rejects) + 1, template_id, template_version


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
    return await fetchrow(conn, _TASK_EXISTS_SQL, (task_id, org_id)) is not None


async def list_events(
    conn: Conn, *, task_id: uuid.UUID, org_id: uuid.UUID, after: int, limit: int
) -> list[dict[str, Any]]:
    """Up to `limit` events of the task after event id `after`, oldest first."""
    return [dict(r) for r in await fetch(conn, _EVENTS_SQL, (task_id, org_id, after, limit))]
