"""The statements of batch migration jobs: the job and its items, claiming a job for a lease and
renewing it, taking the next pending item and finishing it."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from servicekit.jsonutil import dumps
from task_svc.project_migrations.repository import json_params

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
        text(_INSERT_JOB_SQL), json_params(row, "from_versions", "rules", "target")
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
