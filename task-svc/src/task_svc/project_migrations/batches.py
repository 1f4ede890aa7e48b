"""Batch migrations: every active project of a template on some versions moved to another.

The job row and one item row per project are the truth. A runner claims a running job for a
lease, then takes its pending items in order, each in ONE transaction of its own: the project
migrated (or planned, for a dry run, or skipped with its conflicts) and its item finished
together, so a project is never half-migrated and a crash loses nothing. A runner that dies
stops renewing its lease; once it runs out another runner claims the job and continues from the
next pending item. Runners live in the API processes (`migration_jobs_in_process`) and in
`python -m task_svc.migration_worker`; ADR 0005 says why task-svc owns the job.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from servicekit.auth import Principal
from servicekit.db import Database
from servicekit.errors import AppError, NotFound, is_write_collision
from task_svc.project_migrations import job_repository, repository
from task_svc.project_migrations.migrate import migrate
from task_svc.project_migrations.plan_view import counts, plan_body
from task_svc.project_migrations.schemas import (
    MigrationJobCreate,
    MigrationJobItemRead,
    MigrationJobRead,
    MigrationRules,
)
from task_svc.project_migrations.service import (
    MIGRATABLE,
    as_json,
    compute,
    db_now,
    fetch_target,
    invalid,
    read_state,
    to_rules,
)
from task_svc.settings import Settings
from task_svc.templates_client import TemplatesClient

log = logging.getLogger("task_svc.migration_jobs")
LISTED_CONFLICTS = 20


def job_not_found(job_id: uuid.UUID) -> NotFound:
    return NotFound(f"migration job {job_id} not found", code="MIGRATION_JOB_NOT_FOUND")


async def create_job(
    session: AsyncSession,
    *,
    principal: Principal,
    template_id: uuid.UUID,
    version: int,
    body: MigrationJobCreate,
    templates: TemplatesClient,
) -> MigrationJobRead:
    """The job and its items (one per project pinned to `from_versions`), to be run."""
    if version in body.from_versions:
        raise invalid(
            "from_versions",
            f"version {version} is the target: list the versions to move from",
            code="FROM_VERSION_IS_TARGET",
        )
    if any(v < 1 for v in body.from_versions):
        raise invalid("from_versions", "versions are 1 or more", code="PAYLOAD_INVALID")
    try:
        target = await fetch_target(
            templates, org_id=principal.org, template_id=template_id, version=version
        )
    except AppError as exc:
        if exc.code == "TEMPLATE_VERSION_NOT_FOUND":
            raise NotFound(
                f"template {template_id} has no version {version}",
                code="TEMPLATE_VERSION_NOT_FOUND",
            ) from None
        raise
    projects = await job_repository.candidates(
        session, org_id=principal.org, template_id=template_id, versions=body.from_versions
    )
    now = await db_now(session)
    job_id = uuid.uuid4()
    row = {
        "id": job_id,
        "org_id": principal.org,
        "template_id": template_id,
        "to_version": version,
        "from_versions": sorted(set(body.from_versions)),
        "rules": body.rules.model_dump(mode="json"),
        "dry_run": body.dry_run,
        "target": target,
        "status": "running" if projects else "completed",
        "total": len(projects),
        "created_by": principal.sub,
        "created_at": now,
    }
    await job_repository.insert_job(session, row, projects)
    return await get_job(
        session, org_id=principal.org, template_id=template_id, version=version, job_id=job_id
    )


async def get_job(
    session: AsyncSession,
    *,
    org_id: uuid.UUID,
    template_id: uuid.UUID,
    version: int,
    job_id: uuid.UUID,
) -> MigrationJobRead:
    job = await job_repository.job(session, org_id=org_id, job_id=job_id)
    if job is None or job["template_id"] != template_id or job["to_version"] != version:
        raise job_not_found(job_id)
    items = await job_repository.job_items(session, job_id=job_id)
    tally: dict[str, int] = {}
    for i in items:
        tally[i["status"]] = tally.get(i["status"], 0) + 1
    return MigrationJobRead(
        id=job["id"],
        template_id=job["template_id"],
        to_version=job["to_version"],
        from_versions=as_json(job["from_versions"]),
        rules=MigrationRules.model_validate(as_json(job["rules"])),
        dry_run=job["dry_run"],
        status=job["status"],
        total=job["total"],
        processed=len(items) - tally.get("pending", 0),
        counts=tally,
        created_by=job["created_by"],
        created_at=job["created_at"],
        updated_at=job["updated_at"],
        finished_at=job["finished_at"],
        items=[MigrationJobItemRead(**{**i, "detail": as_json(i["detail"])}) for i in items],
    )


# ---------------------------------------------------------------------------------------------
# Running jobs


async def _run_item(
    session: AsyncSession, job: dict[str, Any], item: dict[str, Any]
) -> tuple[str, dict[str, Any]]:
    """One project of the job, in the caller's transaction: (item status, report)."""
    org_id = job["org_id"]
    target = as_json(job["target"])
    project = await repository.project(session, org_id=org_id, project_id=item["project_id"])
    if project is None:
        return "skipped", {"reason": "the project no longer exists"}
    if project["status"] not in MIGRATABLE:
        return "skipped", {"reason": f"the project is {project['status']}"}
    if project["template_version"] != item["from_version"]:
        return "skipped", {
            "reason": f"the project moved to version {project['template_version']} meanwhile"
        }
    state = await read_state(session, org_id=org_id, project=project, lock=not job["dry_run"])
    rules = to_rules(MigrationRules.model_validate(as_json(job["rules"])))
    plan = compute(state, target, rules)
    if plan.conflicts:
        body = plan_body(plan)
        return "skipped", {
            "reason": f"{len(plan.conflicts)} conflict(s) the rules do not settle",
            "blocking_conflicts": body["blocking_conflicts"][:LISTED_CONFLICTS],
        }
    if job["dry_run"]:
        return "planned", {"changes_anything": plan.changes_anything, "counts": counts(plan)}
    read = await migrate(
        session,
        state=state,
        target=target,
        rules=rules,
        actor=job["created_by"],
        plan_id=job["id"],
        job_id=job["id"],
        now=await db_now(session),
        plan=plan,
    )
    return "migrated", {
        "migration_id": str(read.id),
        "counts": read.counts.model_dump(),
        "project_row_version": read.project_row_version,
    }


async def run_job_step(db: Database, *, job: dict[str, Any], worker: str, lease: float) -> bool:
    """Migrate the job's next pending project in one transaction; False when none is left (the
    job is then completed) or the lease was lost."""
    job_id = job["id"]
    async with db.sessionmaker() as session, session.begin():
        if not await job_repository.renew_claim(
            session, job_id=job_id, worker=worker, lease_seconds=lease
        ):
            return False
        item = await job_repository.next_item(session, job_id=job_id)
        if item is None:
            await job_repository.complete_job(session, job_id=job_id)
            return False
        try:
            async with session.begin_nested():
                status, detail = await _run_item(session, job, item)
        except AppError as exc:
            status, detail = "failed", {"code": exc.code, "reason": exc.detail}
        except Exception as exc:
            # A collision is retried at the next step; a lost connection fails finish_item
            # below and is retried too. Anything else would fail the same way at every retry
            # (a project whose rows cannot be migrated): it is reported, and the job goes on.
            if is_write_collision(exc):
                raise
            log.exception("migration job %s: project %s failed", job_id, item["project_id"])
            status = "failed"
            detail = {"code": "INTERNAL_ERROR", "reason": f"{type(exc).__name__}: {exc}"[:500]}
        await job_repository.finish_item(
            session, job_id=job_id, position=item["position"], status=status, detail=detail
        )
    return True


async def run_one_job(
    db: Database, *, worker: str, lease: float, job_id: uuid.UUID | None = None
) -> bool:
    """Claim a running job nobody holds and run it to the end; False when there was none."""
    async with db.sessionmaker() as session, session.begin():
        job = await job_repository.claim_job(
            session, worker=worker, lease_seconds=lease, job_id=job_id
        )
    if job is None:
        return False
    log.info("migration job %s claimed by %s", job["id"], worker)
    while await run_job_step(db, job=job, worker=worker, lease=lease):
        pass
    return True


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class JobRunner:
    """Runs migration jobs in the background of a process until stopped."""

    def __init__(self, db: Database, settings: Settings) -> None:
        self.db = db
        self.lease = settings.migration_job_lease_seconds
        self.poll = settings.migration_job_poll_seconds
        self.worker = worker_name()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def wake(self) -> None:
        self._wake.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="migration-jobs")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _loop(self) -> None:
        while True:
            try:
                while await run_one_job(self.db, worker=self.worker, lease=self.lease):
                    pass
            except asyncio.CancelledError:
                raise
            except Exception:  # a database outage: try again at the next poll
                log.exception("migration job runner failed; retrying")
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self.poll)
