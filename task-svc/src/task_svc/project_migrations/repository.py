"""Every statement of project migrations: reading (and locking) a project's rows, the bulk
writes of an applied migration, stored plans, applied migrations and batch jobs.

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


def _json_params(row: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {k: (dumps(v).decode() if k in keys else v) for k, v in row.items()}


async def insert_plan(session: AsyncSession, row: dict[str, Any]) -> None:
    await session.execute(
        text(_INSERT_PLAN_SQL),
        _json_params(row, "rules", "target", "content", "task_versions"),
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
        text(_INSERT_MIGRATION_SQL), _json_params(row, "previous_snapshot", "counts")
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


# ---------------------------------------------------------------------------------------------
# Batch jobs

_CANDIDATES_SQL = """
SELECT id, template_version FROM projects
WHERE org_id = :org AND template_id = :template AND status IN ('active', 'on_hold')
  AND template_version = ANY(CAST(:versions AS int[]))
ORDER BY created_at, id
"""

_INSERT_JOB_SQL = """
INSERT INTO migration_jobs (id, org_id, template_id, to_version, from_versions, rules, dry_run,
  target, status, total, created_by, created_at, updated_at)
VALUES (:id, :org_id, :template_id, :to_version, CAST(:from_versions AS jsonb),
  CAST(:rules AS jsonb), :dry_run, CAST(:target AS jsonb), :status, :total, :created_by,
  :created_at, :created_at)
"""

_INSERT_ITEMS_SQL = """
INSERT INTO migration_job_items (job_id, position, project_id, from_version)
SELECT :job, x.position, x.project_id, x.from_version
FROM unnest(CAST(:projects AS uuid[]), CAST(:versions AS int[])) WITH ORDINALITY
  AS x(project_id, from_version, position)
"""

_JOB_SQL = """
SELECT id, org_id, template_id, to_version, from_versions, rules, dry_run, target, status, total,
  created_by, created_at, updated_at, finished_at, claimed_by, claimed_until
FROM migration_jobs WHERE id = :id AND org_id = :org
"""

_ITEMS_SQL = """
SELECT position, project_id, from_version, status, detail, finished_at
FROM migration_job_items WHERE job_id = :job ORDER BY position
"""

# A running job nobody holds (or whose holder's lease ran out) is taken; the holder renews it.
_CLAIM_SQL = """
UPDATE migration_jobs SET claimed_by = :worker, claimed_until = now() + make_interval(
  secs => :lease), updated_at = now()
WHERE id = (
  SELECT id FROM migration_jobs
  WHERE status = 'running' AND (claimed_until IS NULL OR claimed_until < now()
    OR claimed_by = :worker) AND (CAST(:job AS uuid) IS NULL OR id = CAST(:job AS uuid))
  ORDER BY created_at LIMIT 1 FOR UPDATE SKIP LOCKED)
RETURNING id, org_id, template_id, to_version, rules, dry_run, target, created_by
"""

_RENEW_SQL = """
UPDATE migration_jobs SET claimed_until = now() + make_interval(secs => :lease),
  updated_at = now()
WHERE id = :job AND claimed_by = :worker AND status = 'running'
RETURNING id
"""

_NEXT_ITEM_SQL = """
SELECT position, project_id, from_version FROM migration_job_items
WHERE job_id = :job AND status = 'pending' ORDER BY position LIMIT 1 FOR UPDATE SKIP LOCKED
"""

_FINISH_ITEM_SQL = """
UPDATE migration_job_items SET status = :status, detail = CAST(:detail AS jsonb),
  finished_at = now()
WHERE job_id = :job AND position = :position
"""

_COMPLETE_JOB_SQL = """
UPDATE migration_jobs SET status = 'completed', finished_at = now(), updated_at = now(),
  claimed_by = NULL, claimed_until = NULL
WHERE id = :job AND status = 'running'
  AND NOT EXISTS (SELECT 1 FROM migration_job_items WHERE job_id = :job AND status = 'pending')
"""


async def candidates(
    session: AsyncSession, *, org_id: uuid.UUID, template_id: uuid.UUID, versions: list[int]
) -> list[tuple[uuid.UUID, int]]:
    res = await session.execute(
        text(_CANDIDATES_SQL), {"org": org_id, "template": template_id, "versions": versions}
    )
    return [(r[0], int(r[1])) for r in res]


async def insert_job(
    session: AsyncSession, row: dict[str, Any], projects: list[tuple[uuid.UUID, int]]
) -> None:
    await session.execute(
        text(_INSERT_JOB_SQL), _json_params(row, "from_versions", "rules", "target")
    )
    if projects:
        await session.execute(
            text(_INSERT_ITEMS_SQL),
            {
                "job": row["id"],
                "projects": [p for p, _ in projects],
                "versions": [v for _, v in projects],
            },
        )


async def job(
    session: AsyncSession, *, org_id: uuid.UUID, job_id: uuid.UUID
) -> dict[str, Any] | None:
    row = (await session.execute(text(_JOB_SQL), {"id": job_id, "org": org_id})).mappings().first()
    return dict(row) if row is not None else None


async def job_items(session: AsyncSession, *, job_id: uuid.UUID) -> list[dict[str, Any]]:
    res = await session.execute(text(_ITEMS_SQL), {"job": job_id})
    return [dict(r) for r in res.mappings()]


async def claim_job(
    session: AsyncSession, *, worker: str, lease_seconds: float, job_id: uuid.UUID | None
) -> dict[str, Any] | None:
    res = await session.execute(
        text(_CLAIM_SQL), {"worker": worker, "lease": lease_seconds, "job": job_id}
    )
    row = res.mappings().first()
    return dict(row) if row is not None else None


async def renew_claim(
    session: AsyncSession, *, job_id: uuid.UUID, worker: str, lease_seconds: float
) -> bool:
    res = await session.execute(
        text(_RENEW_SQL), {"job": job_id, "worker": worker, "lease": lease_seconds}
    )
    return res.first() is not None


async def next_item(session: AsyncSession, *, job_id: uuid.UUID) -> dict[str, Any] | None:
    row = (await session.execute(text(_NEXT_ITEM_SQL), {"job": job_id})).mappings().first()
    return dict(row) if row is not None else None


async def finish_item(
    session: AsyncSession, *, job_id: uuid.UUID, position: int, status: str, detail: dict[str, Any]
) -> None:
    await session.execute(
        text(_FINISH_ITEM_SQL),
        {"job": job_id, "position": position, "status": status, "detail": dumps(detail).decode()},
    )


async def complete_job(session: AsyncSession, *, job_id: uuid.UUID) -> None:
    await session.execute(text(_COMPLETE_JOB_SQL), {"job": job_id})


async def job_running(session: AsyncSession, *, job_id: uuid.UUID) -> bool:
    res = await session.execute(
        text("SELECT status = 'running' FROM migration_jobs WHERE id = :id"), {"id": job_id}
    )
    return bool(res.scalar())
