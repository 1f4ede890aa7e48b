"""The statements of project migrations: reading (and locking) a project's rows, the bulk
writes of an applied migration, stored plans and applied migrations (batch jobs:
`job_repository.py`).

Bulk writes are one statement per kind of row (arrays + unnest), whatever the project's size.
Lock order is the task write path's: tasks by id, then deliverables by id, then the project.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from servicekit.jsonutil import dumps

_PROJECT_SQL = """
SELECT id, org_id, name, status, template_id, template_key, template_version,
       template_checksum, snapshot, start_at, row_version
FROM projects WHERE id = :id AND org_id = :org
"""

_TASKS_SQL = """
SELECT t.id, t.deliverable_id, t.node_key, t.status, t.open_blockers, t.row_version,
       t.title, t.description, t.kind, t.work_kind, t.priority, t.estimate_hours, t.due_at,
       t.role_hint, t.qc_required, t.qc_checklist, t.completed_at, t.assigned_to,
       p.node_key AS parent_key
FROM tasks t LEFT JOIN tasks p ON p.id = t.parent_id
WHERE t.project_id = :project AND t.org_id = :org
ORDER BY t.id
"""

_DELIVERABLES_SQL = """
SELECT id, status, name, serial FROM deliverables
WHERE project_id = :project AND org_id = :org ORDER BY id
"""

_EDGES_SQL = "SELECT task_id, blocker_id FROM task_dependencies WHERE project_id = :project"


async def project(
    session: AsyncSession, *, org_id: uuid.UUID, project_id: uuid.UUID, lock: bool = False
) -> dict[str, Any] | None:
    sql = _PROJECT_SQL + (" FOR UPDATE" if lock else "")
    row = (await session.execute(text(sql), {"id": project_id, "org": org_id})).mappings().first()
    return dict(row) if row is not None else None


async def tasks(
    session: AsyncSession, *, org_id: uuid.UUID, project_id: uuid.UUID, lock: bool = False
) -> list[dict[str, Any]]:
    """Every task of the project in id order; `lock`: FOR UPDATE, in that (the fixed) order."""
    sql = _TASKS_SQL + (" FOR UPDATE OF t" if lock else "")
    res = await session.execute(text(sql), {"project": project_id, "org": org_id})
    return [dict(r) for r in res.mappings()]


async def deliverables(
    session: AsyncSession, *, org_id: uuid.UUID, project_id: uuid.UUID, lock: bool = False
) -> list[dict[str, Any]]:
    sql = _DELIVERABLES_SQL + (" FOR UPDATE" if lock else "")
    res = await session.execute(text(sql), {"project": project_id, "org": org_id})
    return [dict(r) for r in res.mappings()]


async def edges(
    session: AsyncSession, *, project_id: uuid.UUID
) -> list[tuple[uuid.UUID, uuid.UUID]]:
    res = await session.execute(text(_EDGES_SQL), {"project": project_id})
    return [(r[0], r[1]) for r in res]


# ---------------------------------------------------------------------------------------------
# Writes of an applied migration

_UPDATE_TASKS_SQL = """
UPDATE tasks t SET
  node_key = u.node_key, title = u.title, description = u.description, kind = u.kind,
  work_kind = u.work_kind, is_milestone = u.work_kind = 'milestone', priority = u.priority,
  estimate_hours = u.estimate_hours, due_at = u.due_at, role_hint = u.role_hint,
  qc_required = u.qc_required, qc_checklist = CAST(u.qc_checklist AS jsonb),
  parent_id = u.parent_id, status = u.status, open_blockers = u.open_blockers,
  completed_at = u.completed_at, row_version = u.row_version, updated_at = :now
FROM unnest(
  CAST(:ids AS uuid[]), CAST(:node_keys AS text[]), CAST(:titles AS text[]),
  CAST(:descriptions AS text[]), CAST(:kinds AS text[]), CAST(:work_kinds AS text[]),
  CAST(:priorities AS int[]), CAST(:estimates AS numeric[]), CAST(:due_ats AS timestamptz[]),
  CAST(:role_hints AS text[]), CAST(:qc_requireds AS boolean[]), CAST(:qc_checklists AS text[]),
  CAST(:parent_ids AS uuid[]), CAST(:statuses AS text[]), CAST(:open_blockers AS int[]),
  CAST(:completed_ats AS timestamptz[]), CAST(:row_versions AS int[])
) AS u(id, node_key, title, description, kind, work_kind, priority, estimate_hours, due_at,
       role_hint, qc_required, qc_checklist, parent_id, status, open_blockers, completed_at,
       row_version)
WHERE t.id = u.id
"""

_DELETE_EDGES_SQL = """
DELETE FROM task_dependencies d
USING unnest(CAST(:task_ids AS uuid[]), CAST(:blocker_ids AS uuid[])) AS x(task_id, blocker_id)
WHERE d.task_id = x.task_id AND d.blocker_id = x.blocker_id
"""

_SET_DELIVERABLES_SQL = """
UPDATE deliverables d SET status = x.status, row_version = d.row_version + 1, updated_at = :now
FROM unnest(CAST(:ids AS uuid[]), CAST(:statuses AS text[])) AS x(id, status)
WHERE d.id = x.id AND d.status <> x.status
"""

_UPDATE_PROJECT_SQL = """
UPDATE projects SET snapshot = CAST(:snapshot AS jsonb), template_version = :version,
  template_checksum = :checksum, row_version = row_version + 1, updated_at = :now
WHERE id = :id
RETURNING row_version
"""


async def update_tasks(session: AsyncSession, *, now: datetime, rows: dict[str, list[Any]]) -> None:
    if rows["ids"]:
        await session.execute(text(_UPDATE_TASKS_SQL), {"now": now, **rows})


async def delete_edges(
    session: AsyncSession, *, edges: Sequence[tuple[uuid.UUID, uuid.UUID]]
) -> None:
    if edges:
        await session.execute(
            text(_DELETE_EDGES_SQL),
            {"task_ids": [t for t, _ in edges], "blocker_ids": [b for _, b in edges]},
        )


async def set_deliverable_statuses(
    session: AsyncSession, *, statuses: dict[uuid.UUID, str], now: datetime
) -> None:
    if statuses:
        await session.execute(
            text(_SET_DELIVERABLES_SQL),
            {"ids": list(statuses), "statuses": list(statuses.values()), "now": now},
        )


async def update_project(
    session: AsyncSession,
    *,
    project_id: uuid.UUID,
    snapshot: dict[str, Any],
    version: int,
    checksum: str,
    now: datetime,
) -> int:
    res = await session.execute(
        text(_UPDATE_PROJECT_SQL),
        {
            "id": project_id,
            "snapshot": dumps(snapshot).decode(),
            "version": version,
            "checksum": checksum,
            "now": now,
        },
    )
    return int(res.scalar_one())


# ---------------------------------------------------------------------------------------------
# Plans and applied migrations

_INSERT_PLAN_SQL = """
INSERT INTO migration_plans (id, org_id, project_id, from_version, to_version, rules, target,
  content, project_row_version, task_versions, blocking_conflicts, created_by, created_at,
  expires_at)
VALUES (:id, :org_id, :project_id, :from_version, :to_version, CAST(:rules AS jsonb),
  CAST(:target AS jsonb), CAST(:content AS jsonb), :project_row_version,
  CAST(:task_versions AS jsonb), :blocking_conflicts, :created_by, :created_at, :expires_at)
"""

_PLAN_SQL = """
SELECT id, org_id, project_id, from_version, to_version, rules, target, content,
  project_row_version, task_versions, blocking_conflicts, created_by, created_at, expires_at,
  migration_id
FROM migration_plans WHERE id = :id AND org_id = :org
"""

_PLAN_APPLIED_SQL = "UPDATE migration_plans SET migration_id = :migration WHERE id = :id"

_INSERT_MIGRATION_SQL = """
INSERT INTO project_migrations (id, org_id, project_id, plan_id, job_id, from_version,
  to_version, previous_snapshot, previous_checksum, counts, applied_by, applied_at)
VALUES (:id, :org_id, :project_id, :plan_id, :job_id, :from_version, :to_version,
  CAST(:previous_snapshot AS jsonb), :previous_checksum, CAST(:counts AS jsonb), :applied_by,
  :applied_at)
"""

_MIGRATIONS_SQL = """
SELECT id, project_id, plan_id, job_id, from_version, to_version, counts, applied_by,
  applied_at {snapshot}
FROM project_migrations
WHERE project_id = :project AND org_id = :org
  AND (CAST(:after_at AS timestamptz) IS NULL
       OR (applied_at, id) < (CAST(:after_at AS timestamptz), CAST(:after_id AS uuid)))
ORDER BY applied_at DESC, id DESC LIMIT :limit
"""


def json_params(row: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {k: (dumps(v).decode() if k in keys else v) for k, v in row.items()}


async def insert_plan(session: AsyncSession, row: dict[str, Any]) -> None:
    await session.execute(
        text(_INSERT_PLAN_SQL),
        json_params(row, "rules", "target", "content", "task_versions"),
    )


async def plan(
    session: AsyncSession, *, org_id: uuid.UUID, plan_id: uuid.UUID, lock: bool = False
) -> dict[str, Any] | None:
    sql = _PLAN_SQL + (" FOR UPDATE" if lock else "")
    row = (await session.execute(text(sql), {"id": plan_id, "org": org_id})).mappings().first()
    return dict(row) if row is not None else None


async def mark_plan_applied(
    session: AsyncSession, *, plan_id: uuid.UUID, migration_id: uuid.UUID
) -> None:
    await session.execute(text(_PLAN_APPLIED_SQL), {"id": plan_id, "migration": migration_id})


async def insert_migration(session: AsyncSession, row: dict[str, Any]) -> None:
    await session.execute(
        text(_INSERT_MIGRATION_SQL), json_params(row, "previous_snapshot", "counts")
    )


async def migrations(
    session: AsyncSession,
    *,
    org_id: uuid.UUID,
    project_id: uuid.UUID,
    after: tuple[datetime, uuid.UUID] | None,
    limit: int,
    include_snapshot: bool,
) -> list[dict[str, Any]]:
    sql = _MIGRATIONS_SQL.format(snapshot=", previous_snapshot" if include_snapshot else "")
    res = await session.execute(
        text(sql),
        {
            "project": project_id,
            "org": org_id,
            "after_at": after[0] if after else None,
            "after_id": after[1] if after else None,
            "limit": limit,
        },
    )
    return [dict(r) for r in res.mappings()]
