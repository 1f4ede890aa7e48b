"""Statements of the cascades: dependency counters, deliverables, and the branch a QC reject
sends back to rework.

Explicit SQL, like `repository.py` (one task's reads and writes): rows are locked in the fixed
order (tasks by id, then deliverables by id) in the statement that changes them.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from task_svc.tasks.sql import Conn, execute, fetch, fetchrow

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
    rows = await fetch(conn, _RELEASE_SQL, (task_ids, org_id, now))
    return sorted((dict(r) for r in rows), key=lambda r: r["id"])


async def resolve_dependents(
    conn: Conn, *, blocker_ids: list[uuid.UUID], org_id: uuid.UUID, now: datetime
) -> list[dict[str, Any]]:
    """Drop the dependents' counters of resolved blockers, freeing those reaching zero
    (milestones straight to done); the changed rows in id order, with `old_status`, `freed`."""
    rows = await fetch(conn, RESOLVE_SQL, (blocker_ids, org_id, now))
    return sorted((dict(r) for r in rows), key=lambda r: r["id"])


async def unresolve_dependents(
    conn: Conn, *, blocker_id: uuid.UUID, org_id: uuid.UUID, now: datetime
) -> list[dict[str, Any]]:
    """Raise the dependents' counters of a blocker resolved no more, re-blocking ready ones;
    the changed rows in id order, with `old_status`."""
    rows = await fetch(conn, _UNRESOLVE_SQL, ([blocker_id], org_id, now))
    return sorted((dict(r) for r in rows), key=lambda r: r["id"])


# ---------------------------------------------------------------------------------------------
# Deliverables


LOCK_DELIVERABLES_SQL = """
SELECT id, status FROM deliverables
WHERE id = ANY($1::uuid[]) AND org_id = $2 ORDER BY id FOR UPDATE
"""


def ready_for_signoff_sql(*, ids: str, org: str, now: str, resolving_task: str = "") -> str:
    """The UPDATE turning in-progress deliverables (`ids`: an SQL uuid[]) whose every task is
    resolved into ready_for_signoff, returning them; the arguments are parameter references.

    Run it in a statement that starts after the deliverables' locks were taken, so its snapshot
    sees every transaction that resolved one of their tasks before. `resolving_task`: a task
    this very statement resolves, whose old status its snapshot still shows.
    """
    other = f" AND t.id <> {resolving_task}" if resolving_task else ""
    return f"""UPDATE deliverables d
SET status = 'ready_for_signoff', row_version = d.row_version + 1, updated_at = {now}
WHERE d.id = ANY({ids}) AND d.org_id = {org} AND d.status = 'in_progress'
  AND NOT EXISTS (
    SELECT 1 FROM tasks t
    WHERE t.deliverable_id = d.id{other} AND t.status NOT IN ('done', 'cancelled'))
RETURNING d.id, d.org_id, d.project_id, d.serial, d.row_version"""  # noqa: S608


READY_FOR_SIGNOFF_SQL = ready_for_signoff_sql(ids="$1::uuid[]", org="$2", now="$3")

_BACK_IN_PROGRESS_SQL = """
UPDATE deliverables
SET status = 'in_progress', row_version = row_version + 1, updated_at = $3
WHERE id = $1 AND org_id = $2 AND status = 'ready_for_signoff'
"""


async def lock_deliverables(
    conn: Conn, *, deliverable_ids: list[uuid.UUID], org_id: uuid.UUID
) -> dict[uuid.UUID, str]:
    """Lock deliverables in id order; their statuses."""
    rows = await fetch(conn, LOCK_DELIVERABLES_SQL, (deliverable_ids, org_id))
    return {r["id"]: r["status"] for r in rows}


async def mark_ready_for_signoff(
    conn: Conn, *, deliverable_ids: list[uuid.UUID], org_id: uuid.UUID, now: datetime
) -> list[dict[str, Any]]:
    """In-progress deliverables whose every task is resolved become ready_for_signoff."""
    rows = await fetch(conn, READY_FOR_SIGNOFF_SQL, (deliverable_ids, org_id, now))
    return [dict(r) for r in rows]


async def back_in_progress(
    conn: Conn, *, deliverable_id: uuid.UUID, org_id: uuid.UUID, now: datetime
) -> None:
    await execute(conn, _BACK_IN_PROGRESS_SQL, (deliverable_id, org_id, now))


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
    found = await fetchrow(conn, _TASK_BRIEF_SQL, (task_id, org_id))
    return dict(found) if found is not None else None


async def ancestor_edges(conn: Conn, *, task_id: uuid.UUID) -> dict[uuid.UUID, list[uuid.UUID]]:
    """Blockers of the task and of all its ancestors: task -> its blockers."""
    blockers_of: dict[uuid.UUID, list[uuid.UUID]] = {}
    for edge in await fetch(conn, _ANCESTOR_EDGES_SQL, (task_id,)):
        blockers_of.setdefault(edge["task_id"], []).append(edge["blocker_id"])
    return blockers_of


async def lock_branch(
    conn: Conn, *, task_ids: list[uuid.UUID], org_id: uuid.UUID
) -> dict[uuid.UUID, dict[str, Any]]:
    """Lock the tasks and every dependent of them, in id order; the rows by id."""
    return {r["id"]: dict(r) for r in await fetch(conn, _LOCK_BRANCH_SQL, (task_ids, org_id))}


async def set_branch_statuses(
    conn: Conn, *, changes: list[tuple[uuid.UUID, str]], now: datetime
) -> dict[uuid.UUID, int]:
    """Move each task to its status (unfinished again); their new row versions."""
    ids = [c[0] for c in changes]
    statuses = [c[1] for c in changes]
    rows = await fetch(conn, _SET_BRANCH_STATUSES_SQL, (ids, statuses, now))
    return {r["id"]: r["row_version"] for r in rows}
