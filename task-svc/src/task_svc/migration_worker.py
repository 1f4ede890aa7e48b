"""`python -m task_svc.migration_worker`: runs batch migration jobs, no HTTP API.

    --job <id>     run that job to its end (waiting while another worker holds it), then stop
    --until-idle   stop when no job is left to claim (default: keep polling)

Several workers (and the API processes' own runners) can run at once: a job is held by one
worker at a time, under a lease it renews after every project.
"""

from __future__ import annotations

import argparse
import asyncio
import uuid

from servicekit.db import Database, make_engine
from task_svc.project_migrations import job_repository
from task_svc.project_migrations.batches import JobRunner, run_one_job, worker_name
from task_svc.settings import Settings


async def _main(job: uuid.UUID | None, until_idle: bool) -> None:
    settings = Settings()
    engine = make_engine(
        settings.database_url,
        schema=settings.db_schema,
        application_name=f"{settings.service_name}-migrations",
        pool_size=2,
        max_overflow=0,
    )
    db = Database(engine)
    try:
        worker = worker_name()
        lease = settings.migration_job_lease_seconds
        if job is not None:
            # Waits while another worker holds the job, then runs it to the end.
            while not await run_one_job(db, worker=worker, lease=lease, job_id=job):
                async with db.sessionmaker() as session:
                    if not await job_repository.job_running(session, job_id=job):
                        break
                await asyncio.sleep(settings.migration_job_poll_seconds)
        elif until_idle:
            while await run_one_job(db, worker=worker, lease=lease):
                pass
        else:
            runner = JobRunner(db, settings)
            runner.start()
            await asyncio.Event().wait()
    finally:
        await db.dispose()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--job", type=uuid.UUID, default=None)
    parser.add_argument("--until-idle", action="store_true")
    args = parser.parse_args(argv)
    asyncio.run(_main(args.job, args.until_idle))


if __name__ == "__main__":
    main()
