"""Project migration benchmark: plan and apply for a 10,000-task project, and a batch of 100
projects x 100 tasks, over HTTP.

    uv run python tests/perf/bench_migration.py [--nodes 1000] [--deliverables 10] [--rounds 3]
        [--batch-projects 100] [--batch-nodes 100]

Starts its own PostgreSQL and Redis (servicekit.devstack), migrates task-svc's schema and runs
task-svc under uvicorn (one worker, its batch runner in process). template-svc's internal read
is served by a small local HTTP server holding the two versions, so the figures are
task-svc's. The 10,000-task project is mid-flight (the first 30% of every deliverable done, one
task in progress, the rest waiting) and moves to a version that adds 10 QC steps, drops 10
nodes, renames 5 and retitles 50. Printed: the plan's and the apply's request times (median of
`--rounds`, each on a fresh project), and, as a floor measured in the same run, the raw bulk
writes of the same size (one UPDATE of every task and one INSERT of as many events as the
apply wrote, asyncpg, one transaction) with the ratio; then the batch's wall time.
Goals: plan < 1 s, apply < 3 s, batch < 60 s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import asyncpg
import httpx
from benchkit import Platform, platform, stop

import task_svc
from task_svc import SCHEMA

PLAN_GOAL_S, APPLY_GOAL_S, BATCH_GOAL_S = 1.0, 3.0, 60.0


def graph_v1(n: int) -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
    """n nodes; node i waits for i-1 and i-10 (a long ladder: every task has blockers)."""
    nodes = [{"key": f"n{i:05d}", "title": f"Step {i}", "estimate_hours": 1} for i in range(n)]
    edges = [{"blocker": f"n{i - 1:05d}", "dependent": f"n{i:05d}"} for i in range(1, n)]
    edges += [{"blocker": f"n{i - 10:05d}", "dependent": f"n{i:05d}"} for i in range(10, n)]
    return nodes, edges


def graph_v2(n: int) -> tuple[list[dict[str, Any]], list[dict[str, str]], dict[str, str]]:
    """v1 with 10 QC steps added (late in the graph), 10 nodes dropped, 5 renamed, 50 retitled."""
    nodes, edges = graph_v1(n)
    dropped = {f"n{i:05d}" for i in range(n - 10, n)}
    rename = {f"n{i:05d}": f"r{i:05d}" for i in range(n // 2, n // 2 + 5)}
    out_nodes = []
    for i, node in enumerate(nodes):
        if node["key"] in dropped:
            continue
        node = {**node, "key": rename.get(node["key"], node["key"])}
        if i % (n // 50 or 1) == 0:
            node["title"] = f"Step {i} (revised)"
        out_nodes.append(node)
    out_edges = [
        {
            "blocker": rename.get(e["blocker"], e["blocker"]),
            "dependent": rename.get(e["dependent"], e["dependent"]),
        }
        for e in edges
        if e["blocker"] not in dropped and e["dependent"] not in dropped
    ]
    for j in range(10):
        at = n // 2 + 10 + j * max(1, (n // 2 - 25) // 10)  # behind work not yet started
        key = f"qc{j}"
        out_nodes.append({"key": key, "title": f"Check {at}", "work_kind": "qc"})
        out_edges.append({"blocker": f"n{at:05d}", "dependent": key})
        out_edges.append({"blocker": key, "dependent": f"n{at + 1:05d}"})
    return out_nodes, out_edges, rename


class TemplateReads:
    """template-svc's internal version read, from memory, on a local port."""

    def __init__(self) -> None:
        self.versions: dict[str, bytes] = {}
        reads = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = reads.versions.get(self.path.split("?")[0])
                self.send_response(200 if body else 404)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body or b"{}")))
                self.end_headers()
                self.wfile.write(body or b"{}")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def add(
        self, org: uuid.UUID, template: uuid.UUID, version: int, graph: tuple[Any, ...]
    ) -> None:
        body = {
            "template_id": str(template),
            "org_id": str(org),
            "key": "bench",
            "version": version,
            "status": "published",
            "checksum": f"v{version}",
            "nodes": graph[0],
            "edges": graph[1],
        }
        self.versions[f"/internal/templates/{template}/versions/{version}"] = json.dumps(
            body
        ).encode()


async def start_project(
    http: httpx.AsyncClient, template: uuid.UUID, deliverables: int
) -> dict[str, Any]:
    r = await http.post(
        "/api/v1/projects",
        json={
            "name": "Bench",
            "template_id": str(template),
            "template_version": 1,
            "deliverables": deliverables,
            "start_at": "2026-12-01T08:00:00Z",
        },
    )
    if r.status_code != 201:
        raise RuntimeError(f"project: {r.status_code} {r.text[:300]}")
    return dict(r.json())


async def mid_flight(dsn: str, project: uuid.UUID, n: int) -> None:
    """The first 30% of every deliverable done, the next task in progress, counters exact."""
    done = int(n * 0.3)
    conn = await asyncpg.connect(dsn, server_settings={"search_path": SCHEMA})
    try:
        async with conn.transaction():
            await conn.execute(
                "UPDATE tasks SET status = CASE WHEN substr(node_key, 2)::int < $2 THEN 'done' "
                "WHEN substr(node_key, 2)::int = $2 THEN 'in_progress' ELSE 'blocked' END, "
                "row_version = row_version + 1 WHERE project_id = $1",
                project,
                done,
            )
            await conn.execute(
                "UPDATE tasks t SET open_blockers = (SELECT count(*) FROM task_dependencies d "
                "JOIN tasks b ON b.id = d.blocker_id WHERE d.task_id = t.id "
                "AND b.status NOT IN ('done', 'cancelled')) WHERE t.project_id = $1",
                project,
            )
            await conn.execute(
                "UPDATE tasks SET status = 'ready' WHERE project_id = $1 AND status = 'blocked' "
                "AND open_blockers = 0",
                project,
            )
        await conn.execute("ANALYZE")
    finally:
        await conn.close()


async def raw_floor(dsn: str, project: uuid.UUID, events: int) -> float:
    """The same volume of writes from asyncpg: every task updated, `events` event rows."""
    conn = await asyncpg.connect(dsn, server_settings={"search_path": SCHEMA})
    try:
        t0 = time.perf_counter()
        tr = conn.transaction()
        await tr.start()
        ids = [
            r[0]
            for r in await conn.fetch(
                "SELECT id FROM tasks WHERE project_id = $1 ORDER BY id FOR UPDATE", project
            )
        ]
        await conn.execute(
            "UPDATE tasks SET row_version = row_version + 1, updated_at = now() "
            "WHERE id = ANY($1::uuid[])",
            ids,
        )
        org = await conn.fetchval("SELECT org_id FROM projects WHERE id = $1", project)
        await conn.execute(
            "INSERT INTO task_events (org_id, task_id, action, from_status, to_status, actor, "
            "payload, row_version) SELECT $1, x, 'migrated', 'blocked', 'blocked', 'b', "
            '\'{"before": {}, "after": {}}\'::jsonb, 2 FROM unnest($2::uuid[]) AS x',
            org,
            (ids * (events // max(len(ids), 1) + 1))[:events],
        )
        await tr.rollback()
        return time.perf_counter() - t0
    finally:
        await conn.close()


async def count_events(dsn: str, project: uuid.UUID) -> int:
    conn = await asyncpg.connect(dsn, server_settings={"search_path": SCHEMA})
    try:
        return int(
            await conn.fetchval(
                "SELECT count(*) FROM task_events e JOIN tasks t ON t.id = e.task_id "
                "WHERE t.project_id = $1 AND e.created_at >= (SELECT max(applied_at) "
                "FROM project_migrations WHERE project_id = $1)",
                project,
            )
        )
    finally:
        await conn.close()


async def run(p: Platform, args: argparse.Namespace) -> None:
    reads = TemplateReads()
    org, planner = uuid.uuid4(), uuid.uuid4()
    token = p.token(sub=str(planner), roles=["planner"], org_id=org)
    api = p.start_api(
        "task_svc.main:create_app",
        p.service_env(
            LOG_LEVEL="WARNING", TEMPLATE_SVC_URL=reads.url, MIGRATION_JOB_POLL_SECONDS="0.2"
        ),
        workers=1,
    )
    headers = {"Authorization": f"Bearer {token}"}
    big, small = uuid.uuid4(), uuid.uuid4()
    reads.add(org, big, 1, graph_v1(args.nodes))
    reads.add(org, big, 2, graph_v2(args.nodes)[:2])
    reads.add(org, small, 1, graph_v1(args.batch_nodes))
    reads.add(org, small, 2, graph_v2(args.batch_nodes)[:2])
    rename = graph_v2(args.nodes)[2]
    rules = {"rename": rename, "blocker_added_to_started": "keep", "removed_started": "cancel"}
    plan_s: list[float] = []
    apply_s: list[float] = []
    floor_s: list[float] = []
    tasks = args.nodes * args.deliverables
    try:
        async with httpx.AsyncClient(base_url=api.url, headers=headers, timeout=300.0) as http:
            for round_ in range(args.rounds + 1):
                project = await start_project(http, big, args.deliverables)
                pid = uuid.UUID(project["id"])
                await mid_flight(p.dsn, pid, args.nodes)
                t0 = time.perf_counter()
                r = await http.post(
                    f"/api/v1/projects/{pid}/migration-plans",
                    json={"to_version": 2, "rules": rules},
                )
                planned = time.perf_counter() - t0
                if r.status_code != 201 or r.json()["blocking_conflicts"]:
                    raise RuntimeError(f"plan: {r.status_code} {r.text[:500]}")
                plan = r.json()
                t0 = time.perf_counter()
                r = await http.post(
                    f"/api/v1/projects/{pid}/migrations",
                    json={"plan_id": plan["id"], "expected_row_version": project["row_version"]},
                )
                applied = time.perf_counter() - t0
                if r.status_code != 201:
                    raise RuntimeError(f"apply: {r.status_code} {r.text[:500]}")
                events = await count_events(p.dsn, pid)
                floor = await raw_floor(p.dsn, pid, events)
                if round_ > 0:  # the first one warms the app and its statements
                    plan_s.append(planned)
                    apply_s.append(applied)
                    floor_s.append(floor)
            counts = r.json()["counts"]

            # The batch: projects x tasks moved by the in-process runner.
            for _ in range(args.batch_projects):
                await start_project(http, small, 1)
            t0 = time.perf_counter()
            r = await http.post(
                f"/api/v1/templates/{small}/versions/2/migrations",
                json={"from_versions": [1], "rules": {"removed_started": "cancel"}},
            )
            if r.status_code != 202:
                raise RuntimeError(f"batch: {r.status_code} {r.text[:300]}")
            job = r.json()
            while job["status"] != "completed":
                await asyncio.sleep(0.1)
                job = (
                    await http.get(f"/api/v1/templates/{small}/versions/2/migrations/{job['id']}")
                ).json()
            batch = time.perf_counter() - t0
    finally:
        stop(api)
        reads.server.shutdown()
    plan_m, apply_m, floor_m = (statistics.median(x) for x in (plan_s, apply_s, floor_s))
    print(
        f"{os.cpu_count()} CPUs; a project of {tasks:,} tasks ({args.deliverables} deliverables "
        f"x {args.nodes:,} nodes, 30% done), {len(plan_s)} rounds over HTTP"
    )
    print(f"  migration: {counts}")
    print(
        f"  plan   median {plan_m:6.3f} s  worst {max(plan_s):6.3f} s  goal < {PLAN_GOAL_S:.0f} s: "
        f"{'met' if plan_m < PLAN_GOAL_S else 'MISSED'}"
    )
    print(
        f"  apply  median {apply_m:6.3f} s  worst {max(apply_s):6.3f} s  "
        f"goal < {APPLY_GOAL_S:.0f} s: "
        f"{'met' if apply_m < APPLY_GOAL_S else 'MISSED'}"
    )
    print(
        f"  raw floor (the same bulk writes from asyncpg) median {floor_m:6.3f} s; "
        f"apply / raw = {apply_m / floor_m:4.1f}"
    )
    print(
        f"  batch  {args.batch_projects} projects x {args.batch_nodes} tasks: {batch:6.1f} s "
        f"({job['counts']}), goal < {BATCH_GOAL_S:.0f} s: "
        f"{'met' if batch < BATCH_GOAL_S else 'MISSED'}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--deliverables", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch-projects", type=int, default=100)
    parser.add_argument("--batch-nodes", type=int, default=100)
    args = parser.parse_args()
    with platform(task_svc, name="migration") as p:
        asyncio.run(run(p, args))


if __name__ == "__main__":
    main()
