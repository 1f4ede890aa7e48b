"""A batch migration whose worker is SIGKILLed halfway: every project is either fully on the
new version or fully on the old one, and a second worker finishes the job.

Real processes (`python -m task_svc.migration_worker`) on the test database. MIGRATION_CHAOS_
PROJECTS sets the number of projects: `make test` moves 30 (about 10 s), `make chaos` 100.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
import subprocess
import sys
import time
import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from servicekit.testing.plugin import JwtKeys

from ..support.templates import planner_headers

pytestmark = pytest.mark.chaos

PROJECTS = int(os.environ.get("MIGRATION_CHAOS_PROJECTS", "30"))
CHAIN = 30  # tasks per project: each migration is a few dozen milliseconds of work
LEASE = "1.0"


def chain(n: int, *, qc_after_first: bool, drop_last: bool) -> dict[str, Any]:
    keys = [f"step-{i:02d}" for i in range(n)]
    if drop_last:
        keys = keys[:-1]
    nodes = [{"key": k, "title": f"Step {k}"} for k in keys]
    order = list(keys)
    if qc_after_first:
        nodes.insert(1, {"key": "check-first", "title": "Check the first step", "work_kind": "qc"})
        order.insert(1, "check-first")
    edges = [{"blocker": a, "dependent": b} for a, b in itertools.pairwise(order)]
    return {"nodes": nodes, "edges": edges}


def worker_env(settings: Any) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "TASK_SVC_DATABASE_URL": settings.database_url,
            "TASK_SVC_REDIS_URL": settings.redis_url,
            "TASK_SVC_JWT_PUBLIC_KEY_FILE": str(settings.jwt_public_key_file),
            "TASK_SVC_JWT_ISSUER": settings.jwt_issuer,
            "TASK_SVC_JWT_AUDIENCE": settings.jwt_audience,
            "TASK_SVC_SERVICE_TOKEN_PRIVATE_KEY_FILE": str(settings.service_token_private_key_file),
            "TASK_SVC_MIGRATION_JOB_LEASE_SECONDS": LEASE,
            "TASK_SVC_MIGRATION_JOB_POLL_SECONDS": "0.2",
        }
    )
    return env


async def item_counts(engine: AsyncEngine, job_id: str) -> dict[str, int]:
    async with engine.connect() as conn:
        res = await conn.execute(
            text(
                "SELECT status, count(*) FROM task.migration_job_items WHERE job_id = :j "
                "GROUP BY status"
            ),
            {"j": job_id},
        )
        return {r[0]: int(r[1]) for r in res}


async def each_project_whole(
    engine: AsyncEngine, org: uuid.UUID, v1: set[str], v2: set[str]
) -> dict[int, int]:
    """Every project's tasks are exactly its version's (open ones), its migration rows agree;
    how many projects are on each version."""
    on: dict[int, int] = {1: 0, 2: 0}
    async with engine.connect() as conn:
        projects = (
            await conn.execute(
                text("SELECT id, template_version FROM task.projects WHERE org_id = :o"), {"o": org}
            )
        ).all()
        for pid, version in projects:
            keys = {
                r[0]
                for r in (
                    await conn.execute(
                        text(
                            "SELECT node_key FROM task.tasks WHERE project_id = :p "
                            "AND status <> 'cancelled'"
                        ),
                        {"p": pid},
                    )
                )
            }
            migrations = (
                await conn.execute(
                    text("SELECT count(*) FROM task.project_migrations WHERE project_id = :p"),
                    {"p": pid},
                )
            ).scalar_one()
            assert keys == (v2 if version == 2 else v1), (pid, version, sorted(keys))
            assert migrations == (1 if version == 2 else 0), (pid, version, migrations)
            on[version] += 1
    return on


@pytest.mark.timeout(600)
async def test_a_killed_batch_worker_leaves_no_project_half_migrated(
    committing_api: httpx.AsyncClient,
    committing_app: Any,
    templates_api: httpx.AsyncClient,
    jwt_keys: JwtKeys,
    engine: AsyncEngine,
    settings: Any,
) -> None:
    # This test's workers are processes of their own: the app's background runner stays out.
    if committing_app.state.migration_jobs is not None:
        await committing_app.state.migration_jobs.stop()
    org = uuid.uuid4()
    headers = planner_headers(jwt_keys, org)
    v1, v2 = (
        chain(CHAIN, qc_after_first=False, drop_last=False),
        chain(CHAIN, qc_after_first=True, drop_last=True),
    )
    r = await templates_api.post(
        "/api/v1/templates",
        json={"key": f"chaos-{uuid.uuid4().hex[:8]}", "name": "Chain", "draft": v1},
        headers=headers,
    )
    assert r.status_code == 201, r.text
    tid = r.json()["id"]
    assert (
        await templates_api.post(f"/api/v1/templates/{tid}/versions/1/publish", headers=headers)
    ).status_code == 200
    r = await templates_api.post(
        f"/api/v1/templates/{tid}/versions", json={"graph": v2}, headers=headers
    )
    assert r.status_code == 201, r.text
    assert (
        await templates_api.post(f"/api/v1/templates/{tid}/versions/2/publish", headers=headers)
    ).status_code == 200
    for i in range(PROJECTS):
        r = await committing_api.post(
            "/api/v1/projects",
            json={
                "name": f"Chain {i}",
                "template_id": tid,
                "template_version": 1,
                "deliverables": 1,
                "start_at": "2026-12-01T08:00:00Z",
            },
            headers=headers,
        )
        assert r.status_code == 201, r.text
    r = await committing_api.post(
        f"/api/v1/templates/{tid}/versions/2/migrations",
        json={"from_versions": [1]},
        headers=headers,
    )
    assert r.status_code == 202, r.text
    job_id = r.json()["id"]
    v1_keys = {n["key"] for n in v1["nodes"]}
    v2_keys = {n["key"] for n in v2["nodes"]}

    command = [sys.executable, "-m", "task_svc.migration_worker", "--job", job_id]
    env = worker_env(settings)
    first = subprocess.Popen(command, env=env)
    try:
        deadline = time.monotonic() + 120
        while (await item_counts(engine, job_id)).get("migrated", 0) < PROJECTS // 3:
            assert first.poll() is None, "the worker ended before it could be killed"
            assert time.monotonic() < deadline, "the worker made no progress"
            await asyncio.sleep(0.01)
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
    finally:
        if first.poll() is None:
            first.kill()
    killed_at = await item_counts(engine, job_id)
    assert killed_at.get("pending", 0) > 0, f"the worker finished before the kill: {killed_at}"
    on = await each_project_whole(engine, org, v1_keys, v2_keys)
    assert on[2] == killed_at["migrated"], (on, killed_at)

    # A second worker waits for the dead one's lease to run out, then finishes the job.
    second = subprocess.run(command, env=env, timeout=300, check=False)
    assert second.returncode == 0
    done = await item_counts(engine, job_id)
    assert done == {"migrated": PROJECTS}, done
    assert await each_project_whole(engine, org, v1_keys, v2_keys) == {1: 0, 2: PROJECTS}
    job = await committing_api.get(
        f"/api/v1/templates/{tid}/versions/2/migrations/{job_id}", headers=headers
    )
    assert (job.json()["status"], job.json()["processed"]) == ("completed", PROJECTS)
    print(
        f"\nkilled after {killed_at['migrated']} of {PROJECTS} projects; the second worker "
        "migrated the rest"
    )
