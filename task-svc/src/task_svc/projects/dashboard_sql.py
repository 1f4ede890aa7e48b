"""The dashboard's reads: the database aggregates, Python only walks the remaining work.

Three statements whatever the project's size: the project, its deliverables, and one statement
answering one row: counts and estimate hours per deliverable and per assignee (GROUPING SETS),
the first blocked tasks with their open blockers and the first overdue tasks (both cut at
`LIST_LIMIT`) as JSON, and, for the critical path, the unresolved tasks and the edges between
them as column arrays (not one row per task or edge). Resolved work never leaves the database.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from types import SimpleNamespace

from sqlalchemy.ext.asyncio import AsyncSession

from servicekit.errors import NotFound
from servicekit.jsonutil import loads as loads_json
from task_svc.projects import repository
from task_svc.projects.dashboard import (
    LIST_LIMIT,
    Load,
    RemainingWork,
    Tally,
    assemble_dashboard,
    blocked_task,
    overdue_task,
)
from task_svc.projects.schemas import Dashboard

# One statement: the tallies, the blocked and overdue lists as JSON, and the remaining work
# ranked as the critical path breaks ties (node key in code point order, then deliverable and
# task ids) in columns, with its edges as pairs of ranks.
_DASHBOARD_SQL = f"""
WITH r AS MATERIALIZED (
  SELECT id, deliverable_id, title, status, coalesce(estimate_hours, 0)::float8 AS hours,
    (row_number() OVER (ORDER BY node_key COLLATE "C", deliverable_id, id))::int - 1 AS n
  FROM tasks WHERE org_id = $1 AND project_id = $2 AND status NOT IN ('done', 'cancelled')
), e AS MATERIALIZED (
  -- The project's edges in one range scan of their project index, kept where both ends are
  -- still to be done.
  SELECT b.n AS b, x.n AS t
  FROM task_dependencies d
  JOIN r x ON x.id = d.task_id
  JOIN r b ON b.id = d.blocker_id
  WHERE d.project_id = $2
), tallies AS (
  SELECT grouping(deliverable_id) AS per_assignee, deliverable_id, assigned_to, status,
    count(*)::int AS n, coalesce(sum(estimate_hours), 0)::float8 AS hours
  FROM tasks WHERE org_id = $1 AND project_id = $2
  GROUP BY GROUPING SETS ((deliverable_id, status), (assigned_to, status))
), blocked AS (
  SELECT id, title, deliverable_id, node_key FROM tasks
  WHERE org_id = $1 AND project_id = $2 AND status = 'blocked'
  ORDER BY deliverable_id, node_key LIMIT {LIST_LIMIT}
), blocked_by AS (
  SELECT b.id, b.title, b.deliverable_id, b.node_key, coalesce(json_agg(json_build_object(
      'id', o.id, 'title', o.title, 'status', o.status)) FILTER (WHERE o.id IS NOT NULL),
    '[]') AS blocked_by
  FROM blocked b
  LEFT JOIN task_dependencies d ON d.task_id = b.id
  LEFT JOIN tasks o ON o.id = d.blocker_id AND o.status NOT IN ('done', 'cancelled')
  GROUP BY b.id, b.title, b.deliverable_id, b.node_key
), overdue AS (
  -- Sorted by an expression, not the column: walking the org-wide due-date index in order
  -- would read every other project's overdue tasks; the project's own rows are few.
  SELECT id, title, status, deliverable_id, assigned_to, due_at FROM tasks
  WHERE org_id = $1 AND project_id = $2 AND due_at < $3 AND status NOT IN ('done', 'cancelled')
  ORDER BY due_at + interval '0 s', id LIMIT {LIST_LIMIT}
)
SELECT tl.tallies, bl.blocked, od.overdue, ra.ids, ra.deliverable_ids, ra.titles, ra.statuses,
  ra.hours, ea.edge_from, ea.edge_to
FROM
  (SELECT coalesce(json_agg(x), '[]')::text AS tallies FROM tallies x) tl,
  (SELECT coalesce(json_agg(x ORDER BY x.deliverable_id, x.node_key), '[]')::text AS blocked
     FROM blocked_by x) bl,
  (SELECT coalesce(json_agg(x ORDER BY x.due_at, x.id), '[]')::text AS overdue
     FROM overdue x) od,
  -- Aggregated from a sorted subquery: one sort for the five columns.
  (SELECT coalesce(array_agg(id), '{{}}') AS ids,
          coalesce(array_agg(deliverable_id), '{{}}') AS deliverable_ids,
          coalesce(array_agg(title), '{{}}') AS titles,
          coalesce(array_agg(status), '{{}}') AS statuses,
          coalesce(array_agg(hours), '{{}}') AS hours
     FROM (SELECT * FROM r ORDER BY n) s) ra,
  (SELECT coalesce(array_agg(b), '{{}}') AS edge_from, coalesce(array_agg(t), '{{}}') AS edge_to
     FROM e) ea
"""  # noqa: S608 - only a constant is interpolated


def _uuid(value: str | None) -> uuid.UUID | None:
    return None if value is None else uuid.UUID(value)


async def get_dashboard(
    session: AsyncSession, *, org_id: uuid.UUID, project_id: uuid.UUID, now: datetime
) -> Dashboard:
    project = await repository.get_project(session, org_id=org_id, project_id=project_id)
    if project is None:
        raise NotFound(f"project {project_id} does not exist", code="PROJECT_NOT_FOUND")
    deliverables = await repository.list_deliverables(session, org_id=org_id, project_id=project_id)
    conn = await session.connection()
    row = (await conn.exec_driver_sql(_DASHBOARD_SQL, (org_id, project_id, now))).one()

    tallies: dict[uuid.UUID, Tally] = {}
    loads: dict[uuid.UUID | None, Load] = {}
    for t in loads_json(row.tallies):
        if t["per_assignee"]:
            loads.setdefault(_uuid(t["assigned_to"]), Load()).add(t["status"], t["n"], t["hours"])
        else:
            deliverable_id = uuid.UUID(t["deliverable_id"])
            tallies.setdefault(deliverable_id, Tally()).add(t["status"], t["n"], t["hours"])
    blocked = [
        blocked_task(SimpleNamespace(**b), [SimpleNamespace(**o) for o in b["blocked_by"]])
        for b in loads_json(row.blocked)
    ]
    overdue = [overdue_task(SimpleNamespace(**o)) for o in loads_json(row.overdue)]
    remaining = RemainingWork(
        ids=row.ids,
        deliverable_ids=row.deliverable_ids,
        titles=row.titles,
        statuses=row.statuses,
        hours=row.hours,
        edge_from=row.edge_from,
        edge_to=row.edge_to,
    )
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
