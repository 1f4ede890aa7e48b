"""Project benchmarks of task-svc: bootstrap vs raw COPY, dashboard and task page latency.

    uv run python tests/perf/bench_projects.py [--rounds 5] [--requests 100]

Starts its own PostgreSQL and Redis (servicekit.devstack), migrates task-svc's schema, then in
the same run:

1. Bootstrap, end to end through the project service (`projects.creation.create_project` given
   the frozen snapshot template-svc would return: validation, graph planning, serials, every row
   in one transaction, the outbox event, commit), for
   (a) a 10,000-node / 20,000-edge version into 1 deliverable and
   (b) a 100-node version into 100 deliverables;
   next to raw asyncpg COPY of the same rows (tasks, dependencies, creation events, plus the
   project and deliverable rows) in one transaction, rounds interleaved. The COPY side's rows
   are built before its clock starts, so the ratio is an upper bound of our overhead.
   Goal: each under 2 s, and within 3x of raw COPY.
2. Over HTTP (task-svc under uvicorn on a local port, one worker): the dashboard of a
   10,000-task project (both shapes above, 30% of the work done, assignees and overdue tasks)
   and 50-task pages of `GET /api/v1/tasks` walked with their cursors.
   Goals: dashboard p95 under 100 ms; task page p95 under 20 ms.

Absolute numbers drift between machines; every figure is printed next to its goal.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from benchkit import Platform, percentile, platform, stop

import task_svc
from servicekit.auth import Principal
from servicekit.db import Database, make_engine
from servicekit.jsonutil import dumps
from task_svc import SCHEMA
from task_svc.graph.bootstrap import due_at, plan_graph
from task_svc.projects import creation
from task_svc.projects.schemas import ProjectCreate
from task_svc.settings import Settings

BOOTSTRAP_GOAL_S = 2.0
BOOTSTRAP_RATIO_GOAL = 3.0
DASHBOARD_P95_GOAL_MS = 100.0
PAGE_P95_GOAL_MS = 20.0


# ---------------------------------------------------------------------------------------------
# Template versions


def graph(size: int, edges: int) -> dict[str, Any]:
    """A DAG like real templates with exactly `edges` edges: node i waits for i-1, i-7, ...

    Every 10th node is a QC step, every 10th (offset 8) needs QC, every 50th is a milestone.
    """
    nodes = [
        {
            "key": f"n{i}",
            "title": f"Step {i}",
            "description": f"Work instruction of step {i}",
            "kind": "task",
            "work_kind": "milestone" if i % 50 == 49 else ("qc" if i % 10 == 9 else "work"),
            "priority": 50 + i % 3,
            "qc_required": i % 10 == 8,
            "qc_checklist": [{"code": "C1", "text": "ok", "required": True}] if i % 10 == 8 else [],
            "estimate_hours": 1 + i % 5,
            "due_offset_hours": 2 * i,
            "parent_key": f"n{i - i % 10}" if i % 10 else None,
            "role_hint": "operator",
        }
        for i in range(size)
    ]
    pairs: list[tuple[int, int]] = []
    for back in (1, 7, 3, 13, 29):
        for i in range(back, size):
            if len(pairs) == edges:
                break
            pairs.append((i - back, i))
    assert len(pairs) == edges, f"a {size}-node graph of this shape has fewer than {edges} edges"
    return {
        "nodes": nodes,
        "edges": [{"blocker": f"n{b}", "dependent": f"n{d}"} for b, d in pairs],
    }


def version_of(org: uuid.UUID, g: dict[str, Any]) -> dict[str, Any]:
    return {
        "template_id": str(uuid.uuid4()),
        "org_id": str(org),
        "key": "bench",
        "name": "Bench",
        "version": 1,
        "status": "published",
        "checksum": "0" * 64,
        "published_at": "2026-11-01T00:00:00+00:00",
        **g,
    }


class SnapshotTemplates:
    """Answers task-svc's template read with a fixed version (what template-svc would send)."""

    def __init__(self, version: dict[str, Any]) -> None:
        self.version = version

    async def get_version(self, **_: Any) -> dict[str, Any]:
        return self.version


# ---------------------------------------------------------------------------------------------
# 1. Bootstrap vs raw COPY


@dataclass
class Case:
    name: str
    nodes: int
    edges: int
    deliverables: int


TASK_COLUMNS = (
    "id", "org_id", "project_id", "deliverable_id", "node_key", "title", "description", "kind",
    "work_kind", "priority", "status", "due_at", "completed_at", "qc_required", "qc_checklist",
    "is_milestone", "parent_id", "open_blockers", "estimate_hours", "role_hint", "row_version",
    "created_at", "updated_at",
)  # fmt: skip
EVENT_COLUMNS = (
    "org_id", "task_id", "action", "from_status", "to_status", "actor", "payload", "row_version",
    "request_id", "trace_id", "created_at",
)  # fmt: skip


@dataclass
class RawRows:
    project: uuid.UUID
    deliverables: list[tuple[uuid.UUID, str, int, str]]
    tasks: list[tuple[Any, ...]]
    deps: list[tuple[uuid.UUID, uuid.UUID, uuid.UUID]]
    events: list[tuple[Any, ...]]


def raw_rows(
    org: uuid.UUID, version: dict[str, Any], deliverables: int, start: datetime
) -> RawRows:
    """The rows a bootstrap writes, built ahead (the raw side's clock does not see this)."""
    nodes = version["nodes"]
    plan = plan_graph(nodes, version["edges"])
    now = datetime.now(UTC)
    project = uuid.uuid4()
    tag = uuid.uuid4().hex[:8]
    dls = [(uuid.uuid4(), f"D{i + 1}", i + 1, f"RAW-{tag}-{i + 1}") for i in range(deliverables)]
    tasks: list[tuple[Any, ...]] = []
    deps: list[tuple[uuid.UUID, uuid.UUID, uuid.UUID]] = []
    events: list[tuple[Any, ...]] = []
    checklists = [dumps(n.get("qc_checklist") or []).decode() for n in nodes]
    for dl, *_ in dls:
        ids = [uuid.uuid4() for _ in nodes]
        for p in plan.nodes:
            n = nodes[p.index]
            tid = ids[p.index]
            tasks.append(
                (
                    tid, org, project, dl, p.key, n["title"], n["description"], n["kind"],
                    n["work_kind"], n["priority"], p.status, due_at(start, p.due_offset_hours),
                    now if p.auto_completed else None, n["qc_required"], checklists[p.index],
                    n["work_kind"] == "milestone",
                    ids[p.parent] if p.parent is not None else None, p.open_blockers,
                    Decimal(str(n["estimate_hours"])), n["role_hint"],
                    2 if p.auto_completed else 1, now, now,
                )
            )  # fmt: skip
            deps.extend((tid, ids[b], project) for b in p.blockers)
            payload = dumps(
                {
                    "status": p.initial_status,
                    "open_blockers": p.open_blockers,
                    "assigned_to": None,
                    "node_key": p.key,
                }
            ).decode()
            events.append(
                (org, tid, "create", None, p.initial_status, "bench", payload, 1, None, None, now)
            )
            if p.auto_completed:
                events.append(
                    (org, tid, "auto_complete", "ready", "done", "system", "{}", 2, None, None, now)
                )
    return RawRows(project, dls, tasks, deps, events)


async def raw_copy(
    conn: asyncpg.Connection, org: uuid.UUID, rows: RawRows, start: datetime
) -> None:
    async with conn.transaction():
        await conn.execute(
            "INSERT INTO projects (id, org_id, name, template_id, template_key, template_version, "
            "template_checksum, snapshot, status, start_at, created_by) "
            "VALUES ($1, $2, 'Raw', $3, 'bench', 1, 'x', '{}'::jsonb, 'active', $4, 'bench')",
            rows.project,
            org,
            uuid.uuid4(),
            start,
        )
        await conn.copy_records_to_table(
            "deliverables",
            records=[(i, org, rows.project, n, pos, s) for i, n, pos, s in rows.deliverables],
            columns=("id", "org_id", "project_id", "name", "position", "serial"),
        )
        await conn.copy_records_to_table("tasks", records=rows.tasks, columns=TASK_COLUMNS)
        await conn.copy_records_to_table(
            "task_dependencies",
            records=rows.deps,
            columns=("task_id", "blocker_id", "project_id"),
        )
        await conn.copy_records_to_table("task_events", records=rows.events, columns=EVENT_COLUMNS)


async def bootstrap_once(
    db: Database,
    principal: Principal,
    version: dict[str, Any],
    body: ProjectCreate,
    settings: Settings,
) -> uuid.UUID:
    async with db.sessionmaker() as session:
        answer = await creation.create_project(
            session,
            db=db,
            principal=principal,
            body=body,
            idempotency_key=None,
            templates=SnapshotTemplates(version),  # type: ignore[arg-type]
            settings=settings,
        )
        await session.commit()
    return uuid.UUID(answer.body["id"])


async def bench_bootstrap(
    url: str, dsn: str, org: uuid.UUID, case: Case, rounds: int, start: datetime
) -> uuid.UUID:
    """Prints the case's figures; returns the id of one project it created."""
    engine = make_engine(url, schema=SCHEMA, application_name="bench-projects")
    db = Database(engine)
    conn = await asyncpg.connect(dsn, server_settings={"search_path": SCHEMA})
    principal = Principal(sub=str(uuid.uuid4()), org_id=org, roles=frozenset({"planner"}))
    settings = Settings()
    version = version_of(org, graph(case.nodes, case.edges))
    body = ProjectCreate(
        name=case.name,
        template_id=uuid.UUID(version["template_id"]),
        deliverables=case.deliverables,
        start_at=start,
    )
    ours: list[float] = []
    raw: list[float] = []
    first: uuid.UUID | None = None
    try:
        # One of each before measuring (connections, caches, JIT of the statements).
        first = await bootstrap_once(db, principal, version, body, settings)
        await raw_copy(conn, org, raw_rows(org, version, case.deliverables, start), start)
        for _ in range(rounds):
            rows = raw_rows(org, version, case.deliverables, start)
            t0 = time.perf_counter()
            await bootstrap_once(db, principal, version, body, settings)
            ours.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            await raw_copy(conn, org, rows, start)
            raw.append(time.perf_counter() - t0)
        count = await conn.fetchval("SELECT count(*) FROM tasks WHERE project_id = $1", first)
    finally:
        await conn.close()
        await engine.dispose()
    tasks = case.nodes * case.deliverables
    assert count == tasks, (count, tasks)
    o, r = statistics.median(ours), statistics.median(raw)
    ratio = o / r
    print(
        f"{case.name}: {tasks:,} tasks, {case.edges * case.deliverables:,} dependencies, "
        f"{tasks:,}+ creation events; medians of {rounds} interleaved rounds"
    )
    print(
        f"  bootstrap via the service   {o * 1000:8.1f} ms (worst {max(ours) * 1000:7.1f})  "
        f"goal < {BOOTSTRAP_GOAL_S * 1000:.0f} ms: {'met' if o < BOOTSTRAP_GOAL_S else 'MISSED'}"
    )
    print(f"  raw asyncpg COPY, same rows {r * 1000:8.1f} ms (worst {max(raw) * 1000:7.1f})")
    print(
        f"  ratio {ratio:5.2f} x raw COPY  goal <= {BOOTSTRAP_RATIO_GOAL:.0f}x: "
        f"{'met' if ratio <= BOOTSTRAP_RATIO_GOAL else 'MISSED'}",
        flush=True,
    )
    return first


# ---------------------------------------------------------------------------------------------
# 2. Reads over HTTP


async def make_it_lived_in(dsn: str, project: uuid.UUID, users: list[uuid.UUID]) -> None:
    """30% of each deliverable's work done (in dependency order), the rest assigned round robin,
    some of it started; counters and statuses consistent with the graph."""
    conn = await asyncpg.connect(dsn, server_settings={"search_path": SCHEMA})
    try:
        async with conn.transaction():
            await conn.execute(
                "UPDATE tasks SET status = 'done', completed_at = now(), row_version = 2 "
                "WHERE project_id = $1 "
                "AND substr(node_key, 2)::int < (SELECT 0.3 * count(DISTINCT node_key) "
                "FROM tasks WHERE project_id = $1)",
                project,
            )
            await conn.execute(
                "UPDATE tasks t SET open_blockers = c.n, "
                "status = CASE WHEN c.n = 0 THEN 'ready' ELSE 'blocked' END "
                "FROM (SELECT t2.id, count(b.id) FILTER "
                "(WHERE b.status NOT IN ('done', 'cancelled'))::int AS n "
                "FROM tasks t2 LEFT JOIN task_dependencies d ON d.task_id = t2.id "
                "LEFT JOIN tasks b ON b.id = d.blocker_id "
                "WHERE t2.project_id = $1 AND t2.status <> 'done' GROUP BY t2.id) c "
                "WHERE t.id = c.id",
                project,
            )
            await conn.execute(
                "UPDATE tasks t SET assigned_to = ($2::uuid[])[1 + (x.n % array_length($2, 1))], "
                "status = CASE WHEN t.status = 'ready' AND x.n % 2 = 0 "
                "THEN 'in_progress' ELSE t.status END "
                "FROM (SELECT id, row_number() OVER (ORDER BY id) AS n FROM tasks "
                "WHERE project_id = $1 AND status <> 'done') x WHERE t.id = x.id",
                project,
                users,
            )
        # Steady state: the bootstrap rounds and these updates leave work for autovacuum,
        # which would otherwise run during the measurements.
        await conn.execute("VACUUM ANALYZE")
    finally:
        await conn.close()


def latency_line(name: str, ms: list[float], goal: float) -> str:
    q = percentile(ms, 0.95)
    return (
        f"  {name:<44} p50 {statistics.median(ms):7.1f} ms  p95 {q:7.1f} ms  "
        f"max {max(ms):7.1f} ms  ({len(ms)} requests)  goal p95 < {goal:.0f} ms: "
        f"{'met' if q < goal else 'MISSED'}"
    )


async def timed_get(
    http: httpx.AsyncClient, path: str, params: dict[str, Any]
) -> tuple[float, Any]:
    t0 = time.perf_counter()
    r = await http.get(path, params=params)
    ms = (time.perf_counter() - t0) * 1000
    if r.status_code != 200:
        raise RuntimeError(f"GET {path} answered {r.status_code}: {r.text[:300]}")
    return ms, r


async def bench_reads(
    base_url: str, token: str, projects: dict[str, uuid.UUID], requests: int
) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=base_url, headers=headers, timeout=60.0) as http:
        for name, project in projects.items():
            path = f"/api/v1/projects/{project}/dashboard"
            for _ in range(5):
                await timed_get(http, path, {})
            ms: list[float] = []
            body: Any = None
            for _ in range(requests):
                t, r = await timed_get(http, path, {})
                ms.append(t)
                body = r
            d = body.json()
            print(
                f"dashboard of {name}: {d['progress']['total']:,} tasks, "
                f"{len(d['critical_path']['steps'])} critical-path steps, "
                f"{len(d['blocked'])} blocked / {len(d['overdue'])} overdue listed, "
                f"{len(body.content) / 1024:.0f} KiB"
            )
            print(latency_line("GET /api/v1/projects/{id}/dashboard", ms, DASHBOARD_P95_GOAL_MS))

        project = next(iter(projects.values()))
        for label, extra in (
            ("project, newest first", {"sort": "-created_at"}),
            ("project + status in (ready, in_progress)", {"status": "ready,in_progress"}),
            ("project, due soonest", {"sort": "due_at"}),
        ):
            params: dict[str, Any] = {"project_id": str(project), "limit": 50, **extra}
            cursor: str | None = None
            ms = []
            for i in range(requests * 3 + 10):
                t, r = await timed_get(
                    http, "/api/v1/tasks", {**params, **({"cursor": cursor} if cursor else {})}
                )
                page = r.json()
                assert len(page["items"]) == 50 or page["next_cursor"] is None
                cursor = page["next_cursor"]
                if i >= 10:  # warm-up
                    ms.append(t)
            print(latency_line(f"GET /api/v1/tasks 50-task pages: {label}", ms, PAGE_P95_GOAL_MS))


# ---------------------------------------------------------------------------------------------


async def run(p: Platform, args: argparse.Namespace) -> None:
    url, dsn = p.url, p.dsn
    org = uuid.uuid4()
    start = datetime.now(UTC) - timedelta(days=3)
    print(f"{os.cpu_count()} CPUs; PostgreSQL and the service share them", flush=True)
    cases = [
        Case("10,000-node / 20,000-edge version x 1 deliverable", 10_000, 20_000, 1),
        Case("100-node / 200-edge version x 100 deliverables", 100, 200, 100),
    ]
    projects: dict[str, uuid.UUID] = {}
    for case in cases:
        projects[case.name] = await bench_bootstrap(url, dsn, org, case, args.rounds, start)

    users = [uuid.uuid4() for _ in range(20)]
    for project in projects.values():
        await make_it_lived_in(dsn, project, users)

    token = p.token(sub=str(users[0]), roles=["planner"], org_id=org)
    api = p.start_api(
        "task_svc.main:create_app",
        p.service_env(LOG_LEVEL="WARNING"),
        workers=1,
        multiprocess_metrics=True,
        profile=args.profile,
    )
    try:
        await bench_reads(
            api.url,
            token,
            {f"a project of {case.name}": projects[case.name] for case in cases},
            args.requests,
        )
    finally:
        stop(api)
    if args.profile:
        print(f"profile of the API written to {args.profile}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=5, help="bootstrap rounds per case")
    parser.add_argument("--requests", type=int, default=100, help="measured dashboard requests")
    parser.add_argument(
        "--profile", default=None, help="run the API under pyinstrument, report here"
    )
    args = parser.parse_args()
    if args.profile:
        args.profile = str(Path(args.profile).resolve())
    with platform(task_svc, name="projects") as p:
        asyncio.run(run(p, args))


if __name__ == "__main__":
    main()
