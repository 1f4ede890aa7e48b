"""Task transition benchmark: start + complete, the raw transactions vs the API (vs the gateway).

    uv run python tests/perf/bench_transitions.py [--clients 16] [--warmup 3] [--seconds 10]
        [--workers 2,1] [--rounds 1] [--no-gateway] [--httpx] [--profile out.html]

Starts its own PostgreSQL and Redis (servicekit.devstack), migrates task-svc's schema and seeds
fresh independent `ready` tasks for every measurement (no dependencies; 20 tasks per
deliverable, neighbouring tasks in different deliverables, so concurrent requests never wait
on each other's row locks). Each measurement has two phases over its own tasks, each task used
once:

1. `start` (expected_row_version 1) on fresh ready tasks, for `--seconds` (or until they run
   out); the claimant becomes the assignee;
2. `complete` (expected_row_version 2) on exactly the tasks phase 1 started (read back from the
   database), for `--seconds` (or until they run out).

A warm-up of the same two phases on other tasks comes first. Transitions/s = the successful
transitions of both phases (counted in the database) / the measured time of both phases; p50 and
p99 per phase, and combined conservatively (the worse of the two phases).

Measured in the same run, with the same number of concurrent clients:

(a) raw: the same transactions from asyncpg (pool = clients, uvloop), as a plain client would
    write them (docs PERFORMANCE.md): BEGIN; SELECT the task (joined to its project) FOR UPDATE;
    SELECT on the idempotency index; INSERT the event (jsonb, with its response); INSERT the
    outbox rows (the same rows as the service: assigned + status_changed on start,
    status_changed on complete); UPDATE the task; for complete also the service's own dependents
    and deliverable statements (`graph_repository.RESOLVE_SQL`, `LOCK_DELIVERABLES_SQL`,
    `_READY_FOR_SIGNOFF_SQL`); COMMIT.
(b) api: task-svc as the local stack runs it: uvicorn with `--workers N` (the first of
    `--workers` is the headline, one per core on the machine of record; the others are
    secondary lines), uvloop and httptools, JSON access log at INFO to a file, Prometheus in
    multiprocess mode. Load from wrk with a Lua script (or httpx with `--httpx` or without wrk).
(c) gateway: the headline API through the project's own gateway (gateway/nginx.conf.template
    rendered as the local stack renders it, JSON access log and all, with the write rate limit
    raised by its setting so it never answers 429; when nginx is installed).

Prints transitions per second and p50/p99 latency of each, the ratio to raw, whether the goals of
issue 5 are met (>= 0.5 of raw, p99 < 50 ms), and with `--rounds N` (interleaved rounds) the
medians. Last, per HTTP line, the three figures of a lean hot path: throughput / raw's, p99 /
raw's p99, and the service's CPU per transition (goals >= 0.65, <= 1.5, < 2 ms). The load
generator shares the machine with PostgreSQL and the service: compare the
ratios, not the absolute numbers, between machines. `--profile` runs the API under pyinstrument
(e.g. `uv run --with pyinstrument python tests/perf/bench_transitions.py --profile p.html`,
1 worker) and writes its report; numbers measured that way are not comparable.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import subprocess
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import httpx
from benchkit import Platform, Server, percentile, platform, stop
from fastapi import FastAPI

import task_svc
from servicekit.jsonutil import dumps
from task_svc import SCHEMA
from task_svc.tasks import graph_repository

GOAL_RATIO = 0.5
GOAL_P99_MS = 50.0
# The goals of a lean hot path (issue 10), through the gateway: throughput and p99 as ratios to
# raw's in the same round, and the service's CPU per transition.
LEAN_RATIO = 0.65
LEAN_P99_RATIO = 1.5
LEAN_CPU_MS = 2.0
TASKS_PER_DELIVERABLE = 20


def bench_app() -> FastAPI:
    """task-svc's app with the transition routes (uvicorn --factory target)."""
    from task_svc.main import create_app
    from task_svc.tasks.transitions_router import router as transitions_router

    app = create_app()
    if "/api/v1/tasks/{task_id}/transitions" not in {getattr(r, "path", None) for r in app.routes}:
        app.include_router(transitions_router)
    return app


# ---------------------------------------------------------------------------------------------
# Results


@dataclass
class Phase:
    """One phase (start or complete) of one measurement."""

    action: str
    seconds: float = 0.0  # measured time
    ok: int = 0  # successful transitions (counted in the database)
    p50_ms: float = float("nan")
    p99_ms: float = float("nan")
    errors: int = 0
    first_error: str = ""
    exhausted: bool = False  # ran out of tasks before `--seconds`

    @property
    def rate(self) -> float:
        return self.ok / self.seconds if self.seconds else 0.0


@dataclass
class Result:
    name: str
    phases: list[Phase] = field(default_factory=list)
    cpu_seconds: float | None = None  # CPU of the measured processes over both phases
    cpu_of: str = ""

    @property
    def ok(self) -> int:
        return sum(p.ok for p in self.phases)

    @property
    def rate(self) -> float:
        seconds = sum(p.seconds for p in self.phases)
        return self.ok / seconds if seconds else 0.0

    @property
    def p50_ms(self) -> float:
        return max(p.p50_ms for p in self.phases)

    @property
    def p99_ms(self) -> float:
        return max(p.p99_ms for p in self.phases)

    def line(self, raw: Result | None) -> str:
        ratio = f"  {self.rate / raw.rate:5.2f} x raw" if raw is not None and raw.rate else ""
        extra = ""
        if self.cpu_seconds is not None and self.ok:
            extra += f"  {self.cpu_of} CPU {self.cpu_seconds / self.ok * 1000:.2f} ms/transition"
        errors = sum(p.errors for p in self.phases)
        if errors:
            first = next(p.first_error for p in self.phases if p.errors)
            extra += f"  errors {errors} ({first})"
        if any(p.exhausted for p in self.phases if p.action == "start"):
            # (phase 2 running through every task phase 1 started is expected)
            extra += "  (ran out of fresh tasks: seed more with --tasks)"
        head = (
            f"{self.name:<30} {self.rate:8,.0f} /s  p50 {self.p50_ms:5.1f} ms  "
            f"p99 {self.p99_ms:6.1f} ms{ratio}{extra}"
        )
        parts = [
            f"    {p.action:<9} {p.rate:8,.0f} /s  p50 {p.p50_ms:5.1f} ms  p99 {p.p99_ms:6.1f} ms"
            f"  ({p.ok} in {p.seconds:.1f} s)"
            for p in self.phases
        ]
        return "\n".join([head, *parts])


def process_cpu(pid: int | None) -> float:
    """CPU seconds (user + system) used so far by process `pid` and its children (None: this
    process)."""
    if pid is None:
        return time.process_time()
    total = 0.0
    for p in [pid, *children(pid)]:
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def children(pid: int) -> list[int]:
    """The direct children of `pid` (uvicorn's workers)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(stat[1]) == pid:
            found.append(int(entry.name))
    return found


async def drive(
    action: str,
    clients: int,
    seconds: float,
    tasks: list[uuid.UUID],
    one: Callable[[uuid.UUID], Awaitable[str | None]],
) -> Phase:
    """`clients` loops calling `one(task)` on the next unused task (None: success, else an error
    text) for `seconds` or until the tasks run out."""
    phase = Phase(action)
    latencies: list[float] = []
    it: Iterator[uuid.UUID] = iter(tasks)
    start = time.perf_counter()
    stop_at = start + seconds

    async def loop() -> None:
        while time.perf_counter() < stop_at:
            tid = next(it, None)
            if tid is None:
                phase.exhausted = True
                return
            t0 = time.perf_counter()
            error = await one(tid)
            latencies.append((time.perf_counter() - t0) * 1000)
            if error is None:
                phase.ok += 1
            else:
                phase.errors += 1
                phase.first_error = phase.first_error or error

    await asyncio.gather(*(loop() for _ in range(clients)))
    phase.seconds = time.perf_counter() - start
    phase.p50_ms = percentile(latencies, 0.50)
    phase.p99_ms = percentile(latencies, 0.99)
    return phase


# ---------------------------------------------------------------------------------------------
# Seeding


@dataclass
class Seed:
    org: uuid.UUID
    project: uuid.UUID
    user: uuid.UUID
    seeded: int = 0  # tasks seeded so far (deliverable positions and node keys follow on)


async def seed_project(dsn: str) -> Seed:
    org, project, user = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    conn = await asyncpg.connect(dsn, server_settings={"search_path": SCHEMA})
    try:
        await conn.execute(
            "INSERT INTO projects (id, org_id, name, template_id, template_key, "
            "template_version, template_checksum, snapshot, status, start_at, created_by) "
            "VALUES ($1, $2, 'Bench', $3, 'bench', 1, 'x', '{}'::jsonb, 'active', now(), 'b')",
            project,
            org,
            uuid.uuid4(),
        )
    finally:
        await conn.close()
    return Seed(org, project, user)


async def seed_tasks(dsn: str, s: Seed, n: int) -> list[uuid.UUID]:
    """`n` fresh ready tasks of the project, task i in deliverable i mod (n / 20)."""
    ids = [uuid.uuid4() for _ in range(n)]
    n_dl = max(1, n // TASKS_PER_DELIVERABLE)
    dls = [uuid.uuid4() for _ in range(n_dl)]
    conn = await asyncpg.connect(dsn, server_settings={"search_path": SCHEMA})
    try:
        async with conn.transaction():
            await conn.execute(
                "INSERT INTO deliverables (id, org_id, project_id, name, position, serial) "
                "SELECT x.id, $2, $3, 'D' || x.n, $4 + x.n, 'BENCH-' || x.id::text "
                "FROM unnest($1::uuid[]) WITH ORDINALITY AS x(id, n)",
                dls,
                s.org,
                s.project,
                s.seeded,
            )
            await conn.execute(
                "INSERT INTO tasks (id, org_id, project_id, deliverable_id, node_key, title, "
                "kind, work_kind, status) "
                "SELECT x.id, $2, $3, ($4::uuid[])[1 + (x.n - 1) % $5], 'n' || x.n, "
                "'Step ' || x.n, 'task', 'work', 'ready' "
                "FROM unnest($1::uuid[]) WITH ORDINALITY AS x(id, n)",
                ids,
                s.org,
                s.project,
                dls,
                n_dl,
            )
            await conn.execute(
                "INSERT INTO task_events (org_id, task_id, action, from_status, to_status, "
                "actor, payload, row_version) "
                "SELECT $2, x, 'create', NULL, 'ready', 'bench', '{}'::jsonb, 1 "
                "FROM unnest($1::uuid[]) AS x",
                ids,
                s.org,
            )
        await conn.execute("ANALYZE")
    finally:
        await conn.close()
    s.seeded += n
    return ids


async def with_status(dsn: str, ids: list[uuid.UUID], status: str, version: int) -> list[uuid.UUID]:
    """Those of `ids` now in `status` at `version`, in the order given."""
    conn = await asyncpg.connect(dsn, server_settings={"search_path": SCHEMA})
    try:
        rows = await conn.fetch(
            "SELECT id FROM tasks WHERE id = ANY($1::uuid[]) AND status = $2 AND row_version = $3",
            ids,
            status,
            version,
        )
    finally:
        await conn.close()
    found = {r["id"] for r in rows}
    return [i for i in ids if i in found]


async def last_write(dsn: str, ids: list[uuid.UUID]) -> datetime | None:
    """When the last of `ids` was transitioned (the time the transition wrote)."""
    conn = await asyncpg.connect(dsn, server_settings={"search_path": SCHEMA})
    try:
        last: datetime | None = await conn.fetchval(
            "SELECT max(updated_at) FROM tasks WHERE id = ANY($1::uuid[])", ids
        )
    finally:
        await conn.close()
    return last


def timed_to_the_last_write(
    dsn: str, run_phase: Callable[[str, list[uuid.UUID], float], Awaitable[Phase]]
) -> Callable[[str, list[uuid.UUID], float], Awaitable[Phase]]:
    """`run_phase` whose measured time, when it ran out of tasks, ends at its last write: wrk
    reports its whole `-d` even when every thread stopped early."""

    async def run(action: str, ids: list[uuid.UUID], seconds: float) -> Phase:
        began = datetime.now(UTC)
        phase = await run_phase(action, ids, seconds)
        last = await last_write(dsn, ids) if phase.exhausted else None
        if last is not None:
            phase.seconds = min(phase.seconds, max((last - began).total_seconds(), 1e-3))
        return phase

    return run


async def two_phases(
    name: str,
    dsn: str,
    tasks: list[uuid.UUID],
    args: argparse.Namespace,
    run_phase: Callable[[str, list[uuid.UUID], float], Awaitable[Phase]],
    cpu_pid: int | None = None,
    cpu_of: str = "client",
) -> Result:
    """Warm-up (start + complete) on the first fifth of `tasks`, then the measured phases."""
    run_phase = timed_to_the_last_write(dsn, run_phase)
    cut = len(tasks) // 5
    warm, measured = tasks[:cut], tasks[cut:]
    await run_phase("start", warm, args.warmup)
    started = await with_status(dsn, warm, "in_progress", 2)
    await run_phase("complete", started, args.warmup)

    result = Result(name, cpu_of=cpu_of)
    before = process_cpu(cpu_pid)
    p1 = await run_phase("start", measured, args.seconds)
    started = await with_status(dsn, measured, "in_progress", 2)
    p1.ok = len(started)
    cpu = process_cpu(cpu_pid) - before
    before = process_cpu(cpu_pid)
    p2 = await run_phase("complete", started, args.seconds)
    p2.ok = len(await with_status(dsn, started, "done", 3))
    result.cpu_seconds = cpu + process_cpu(cpu_pid) - before
    result.phases = [p1, p2]
    return result


# ---------------------------------------------------------------------------------------------
# (a) raw asyncpg: the transactions as a plain client would write them

_RAW_LOCK = (
    "SELECT t.id, t.org_id, t.project_id, t.deliverable_id, t.node_key, t.title, t.status, "
    "t.assigned_to, t.assigned_at, t.started_at, t.completed_at, t.qc_required, "
    "t.is_milestone, t.open_blockers, t.row_version, p.status AS project_status "
    "FROM tasks t JOIN projects p ON p.id = t.project_id "
    "WHERE t.id = $1 AND t.org_id = $2 FOR UPDATE OF t"
)
_RAW_IDEMPOTENCY = (
    "SELECT action, payload, response, status_code FROM task_events "
    "WHERE task_id = $1 AND client_event_id = $2"
)
_RAW_EVENT = (
    "INSERT INTO task_events (org_id, task_id, action, from_status, to_status, actor, payload, "
    "client_event_id, row_version, request_id, response, status_code) "
    "VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, $8, $9, $10, $11::jsonb, 200)"
)
_RAW_OUTBOX = (
    "INSERT INTO outbox (id, type, source, aggregate_type, aggregate_id, payload, headers) "
    "SELECT x.i, x.ty, 'task-svc', 'task', x.ai, x.p::jsonb, $5::jsonb "
    "FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[]) AS x(i, ty, ai, p)"
)
_RAW_UPDATE = (
    "UPDATE tasks SET status = $3, assigned_to = $4, assigned_at = $5, started_at = $6, "
    "completed_at = $7, row_version = $8, updated_at = $9 WHERE id = $1 AND org_id = $2"
)


def _raw_body(row: asyncpg.Record, action: str, to: str, version: int) -> dict[str, object]:
    """A response and outbox payload of the service's size."""
    return {
        "task_id": str(row["id"]),
        "org_id": str(row["org_id"]),
        "project_id": str(row["project_id"]),
        "deliverable_id": str(row["deliverable_id"]),
        "node_key": row["node_key"],
        "title": row["title"],
        "action": action,
        "from_status": row["status"],
        "to_status": to,
        "row_version": version,
        "occurred_at": datetime.now(UTC).isoformat(),
    }


async def bench_raw(dsn: str, s: Seed, args: argparse.Namespace) -> Result:
    pool = await asyncpg.create_pool(
        dsn,
        min_size=args.clients,
        max_size=args.clients,
        server_settings={"search_path": SCHEMA},
    )
    assert pool is not None
    headers = dumps({"request_id": "r"}).decode()

    async def start(tid: uuid.UUID) -> str | None:
        cid = uuid.uuid4().hex
        now = datetime.now(UTC)
        async with pool.acquire() as con, con.transaction():
            row = await con.fetchrow(_RAW_LOCK, tid, s.org)
            assert row is not None
            if await con.fetchrow(_RAW_IDEMPOTENCY, tid, cid) is not None:
                return "replayed"
            if row["status"] != "ready" or row["row_version"] != 1:
                return f"task at {row['status']} v{row['row_version']}"
            version = row["row_version"] + 1
            body = _raw_body(row, "start", "in_progress", version)
            payload = dumps({"assigned_to": str(s.user)}).decode()
            await con.execute(
                _RAW_EVENT, s.org, tid, "start", row["status"], "in_progress", str(s.user),
                payload, cid, version, "r", dumps({"task": body}).decode(),
            )  # fmt: skip
            await con.execute(
                _RAW_OUTBOX,
                [uuid.uuid4(), uuid.uuid4()],
                ["task.assigned", "task.status_changed"],
                [str(tid), str(tid)],
                [dumps({**body, "assigned_to": str(s.user)}).decode(), dumps(body).decode()],
                headers,
            )
            await con.execute(
                _RAW_UPDATE, tid, s.org, "in_progress", s.user, now, now, None, version, now
            )
        return None

    async def complete(tid: uuid.UUID) -> str | None:
        cid = uuid.uuid4().hex
        now = datetime.now(UTC)
        async with pool.acquire() as con, con.transaction():
            row = await con.fetchrow(_RAW_LOCK, tid, s.org)
            assert row is not None
            if await con.fetchrow(_RAW_IDEMPOTENCY, tid, cid) is not None:
                return "replayed"
            if row["status"] != "in_progress" or row["row_version"] != 2:
                return f"task at {row['status']} v{row['row_version']}"
            version = row["row_version"] + 1
            body = _raw_body(row, "complete", "done", version)
            await con.execute(
                _RAW_EVENT, s.org, tid, "complete", row["status"], "done", str(s.user), "{}",
                cid, version, "r", dumps({"task": body}).decode(),
            )  # fmt: skip
            await con.execute(
                _RAW_OUTBOX,
                [uuid.uuid4()],
                ["task.status_changed"],
                [str(tid)],
                [dumps(body).decode()],
                headers,
            )
            await con.execute(
                _RAW_UPDATE, tid, s.org, "done", row["assigned_to"], row["assigned_at"],
                row["started_at"], now, version, now,
            )  # fmt: skip
            # The service's own cascade statements: dependents, then the deliverable.
            await con.fetch(graph_repository.RESOLVE_SQL, [tid], s.org, now)
            dl = [row["deliverable_id"]]
            await con.fetch(graph_repository.LOCK_DELIVERABLES_SQL, dl, s.org)
            await con.fetch(graph_repository.READY_FOR_SIGNOFF_SQL, dl, s.org, now)
        return None

    async def run_phase(action: str, tasks: list[uuid.UUID], seconds: float) -> Phase:
        return await drive(
            action, args.clients, seconds, tasks, start if action == "start" else complete
        )

    try:
        tasks = await seed_tasks(dsn, s, args.tasks)
        return await two_phases("(a) raw asyncpg", dsn, tasks, args, run_phase)
    finally:
        await pool.close()


# ---------------------------------------------------------------------------------------------
# (b), (c) over HTTP


def http_phase_httpx(
    base_url: str, token: str, args: argparse.Namespace
) -> Callable[[str, list[uuid.UUID], float], Awaitable[Phase]]:
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}

    async def run_phase(action: str, tasks: list[uuid.UUID], seconds: float) -> Phase:
        limits = httpx.Limits(max_connections=args.clients, max_keepalive_connections=args.clients)
        version = 1 if action == "start" else 2
        async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=30.0) as http:

            async def one(tid: uuid.UUID) -> str | None:
                body = {
                    "action": action,
                    "payload": {},
                    "expected_row_version": version,
                    "client_event_id": uuid.uuid4().hex,
                }
                r = await http.post(
                    f"/api/v1/tasks/{tid}/transitions", content=dumps(body), headers=headers
                )
                if r.status_code != 200:
                    return f"{r.status_code} {r.text[:200]}"
                return None

            return await drive(action, args.clients, seconds, tasks, one)

    return run_phase


WRK_SCRIPT = """
-- Each request sends BENCH_ACTION to a task no other request touches (each id once), at
-- BENCH_VERSION, with a fresh client_event_id. When the ids run out, a thread stops.
local ids = {}
for line in io.lines(os.getenv("BENCH_TASKS")) do ids[#ids + 1] = line end
local token = os.getenv("BENCH_TOKEN")
local action = os.getenv("BENCH_ACTION")
local version = os.getenv("BENCH_VERSION")
local run = os.getenv("BENCH_RUN")
local threads = {}

function setup(thread)
  thread:set("slot", #threads)
  table.insert(threads, thread)
end

function init(args)
  count = 0
  sentinels = 0
  exhausted = false
  stride = tonumber(os.getenv("BENCH_THREADS"))
end

function request()
  local i = slot + count * stride + 1
  count = count + 1
  local id = ids[i]
  if id == nil then
    -- nothing left: a task that does not exist (404, not counted), then stop
    exhausted = true
    sentinels = sentinels + 1
    id = "00000000-0000-4000-8000-000000000000"
  end
  local body = string.format(
    '{"action":"%s","payload":{},"expected_row_version":%s,"client_event_id":"wrk-%s-%d-%d"}',
    action, version, run, slot, count)
  return wrk.format("POST", "/api/v1/tasks/" .. id .. "/transitions",
    {["Authorization"] = "Bearer " .. token, ["Content-Type"] = "application/json"}, body)
end

function response(status, headers, body)
  if exhausted then wrk.thread:stop() end
end

function done(summary, latency, requests)
  local n = 0
  for _, thread in ipairs(threads) do n = n + thread:get("sentinels") end
  io.write(string.format("sentinel requests: %d\\n", n))
end
"""


def _wrk_ms(text: str) -> float:
    if text.endswith("us"):
        return float(text[:-2]) / 1000
    if text.endswith("ms"):
        return float(text[:-2])
    if text.endswith("m"):
        return float(text[:-1]) * 60_000
    return float(text[:-1]) * 1000


def _wrk_seconds(text: str) -> float:
    return _wrk_ms(text) / 1000


def http_phase_wrk(
    base_url: str, token: str, args: argparse.Namespace, workdir: Path
) -> Callable[[str, list[uuid.UUID], float], Awaitable[Phase]]:
    """HTTP load from wrk (C, two threads): the load generator costs the machine little."""
    wrk = shutil.which("wrk")
    assert wrk is not None
    script = workdir / "transition.lua"
    script.write_text(WRK_SCRIPT)
    threads = 2

    def run_wrk(action: str, ids: list[uuid.UUID], seconds: float) -> Phase:
        phase = Phase(action)
        ids_file = workdir / "wrk-tasks.txt"
        ids_file.write_text("\n".join(str(i) for i in ids))
        env = {
            **os.environ,
            "BENCH_TASKS": str(ids_file),
            "BENCH_TOKEN": token,
            "BENCH_THREADS": str(threads),
            "BENCH_ACTION": action,
            "BENCH_VERSION": "1" if action == "start" else "2",
            "BENCH_RUN": uuid.uuid4().hex[:8],
        }
        out = subprocess.run(
            [
                wrk,
                f"-t{threads}",
                f"-c{args.clients}",
                f"-d{max(1, round(seconds))}s",
                "--timeout",
                "30s",
                "--latency",
                "-s",
                str(script),
                base_url,
            ],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        requests = sentinels = 0
        for line in out.stdout.splitlines():
            parts = line.split()
            if line.strip().startswith("50%"):
                phase.p50_ms = _wrk_ms(parts[1])
            elif line.strip().startswith("99%"):
                phase.p99_ms = _wrk_ms(parts[1])
            elif "requests in" in line:
                requests = int(parts[0])
                phase.seconds = _wrk_seconds(parts[3].rstrip(","))
            elif "Non-2xx" in line:
                phase.errors = int(parts[-1])
            elif line.startswith("sentinel requests:"):
                sentinels = int(parts[-1])
        # The requests for a task that does not exist, sent once a thread's tasks ran out,
        # are not errors (each connection of the thread may send one before it stops).
        phase.exhausted = sentinels > 0
        phase.errors = max(0, phase.errors - sentinels)
        if phase.errors:
            phase.first_error = "non-2xx responses"
        phase.ok = requests - sentinels - phase.errors  # replaced by the count in the database
        return phase

    async def run_phase(action: str, tasks: list[uuid.UUID], seconds: float) -> Phase:
        return await asyncio.to_thread(run_wrk, action, tasks, seconds)

    return run_phase


async def bench_http(
    name: str,
    base_url: str,
    dsn: str,
    s: Seed,
    token: str,
    args: argparse.Namespace,
    api_pid: int,
    workdir: Path,
    use_wrk: bool,
) -> Result:
    tasks = await seed_tasks(dsn, s, args.tasks)
    run_phase = (
        http_phase_wrk(base_url, token, args, workdir)
        if use_wrk
        else http_phase_httpx(base_url, token, args)
    )
    return await two_phases(name, dsn, tasks, args, run_phase, cpu_pid=api_pid, cpu_of="service")


# ---------------------------------------------------------------------------------------------


def verdict(result: Result, raw: Result) -> str:
    ratio = result.rate / raw.rate if raw.rate else 0.0
    ok_ratio = ratio >= GOAL_RATIO
    ok_p99 = result.p99_ms < GOAL_P99_MS
    return (
        f"goal (>= {GOAL_RATIO} x raw, p99 < {GOAL_P99_MS:.0f} ms): ratio {ratio:.2f} "
        f"{'met' if ok_ratio else 'NOT met'}, p99 {result.p99_ms:.1f} ms "
        f"{'met' if ok_p99 else 'NOT met'}"
    )


def median_line(name: str, results: list[Result], raws: list[Result]) -> str:
    rates = [r.rate for r in results]
    ratios = [r.rate / a.rate for r, a in zip(results, raws, strict=True) if a.rate]
    return (
        f"{name:<30} {statistics.median(rates):8,.0f} /s  "
        f"p50 {statistics.median(r.p50_ms for r in results):5.1f} ms  "
        f"p99 {statistics.median(r.p99_ms for r in results):6.1f} ms  "
        f"{statistics.median(ratios) if ratios else float('nan'):5.2f} x raw  "
        f"(rates {', '.join(f'{x:,.0f}' for x in rates)})"
    )


def figures_line(name: str, results: list[Result], raws: list[Result]) -> str:
    """The three figures of a lean hot path (medians over the rounds) and whether each is met:
    throughput / raw's, p99 / raw's p99 (each against the raw run of its own round), and the
    service's CPU per transition."""
    pairs = list(zip(results, raws, strict=True))
    ratio = statistics.median(r.rate / a.rate for r, a in pairs if a.rate)
    p99_ratio = statistics.median(r.p99_ms / a.p99_ms for r, a in pairs if a.p99_ms)
    cpu = statistics.median(
        r.cpu_seconds / r.ok * 1000 for r in results if r.cpu_seconds is not None and r.ok
    )

    def met(ok: bool) -> str:
        return "met" if ok else "NOT met"

    return (
        f"figures {name}: throughput {ratio:.2f} x raw (>= {LEAN_RATIO}: "
        f"{met(ratio >= LEAN_RATIO)}), p99 {p99_ratio:.2f} x raw's p99 (<= {LEAN_P99_RATIO}: "
        f"{met(p99_ratio <= LEAN_P99_RATIO)}), service CPU {cpu:.2f} ms per transition "
        f"(< {LEAN_CPU_MS}: {met(cpu < LEAN_CPU_MS)})"
    )


async def run(p: Platform, args: argparse.Namespace) -> None:
    dsn = p.dsn
    s = await seed_project(dsn)
    token = p.token(sub=str(s.user), roles=["operator"], org_id=s.org)
    workers = [int(w) for w in args.workers.split(",") if w.strip()]
    use_wrk = shutil.which("wrk") is not None and not args.httpx
    print(
        f"{args.clients} clients, start + complete, each {args.warmup:.0f} s warm-up + "
        f"{args.seconds:.0f} s, {args.tasks} fresh ready tasks per measurement, "
        f"{os.cpu_count()} CPUs, HTTP load from {'wrk' if use_wrk else 'httpx'}"
    )
    env = p.service_env(LOG_LEVEL=args.log_level, LOG_JSON="true")
    apis: dict[int, Server] = {}
    gateway: Server | None = None
    results: dict[str, list[Result]] = {}
    raws: list[Result] = []
    try:
        for w in workers:
            apis[w] = p.start_api(
                args.app, env, workers=w, multiprocess_metrics=True, profile=args.profile
            )
        if not args.no_gateway:
            gateway = p.start_gateway(apis[workers[0]].port)
            if gateway is None:
                print("(c) gateway: nginx is not available, skipped")
        for rnd in range(args.rounds):
            if args.rounds > 1:
                print(f"-- round {rnd + 1} of {args.rounds}")
            raw = await bench_raw(dsn, s, args)
            raws.append(raw)
            print(raw.line(None), flush=True)
            runs = [
                (f"(b) api, {w} worker{'s' if w > 1 else ''}", apis[w].url, apis[w].pid)
                for w in workers
            ]
            if gateway is not None:
                runs.insert(1, ("(c) api behind the gateway", gateway.url, apis[workers[0]].pid))
            for name, base_url, pid in runs:
                result = await bench_http(
                    name, base_url, dsn, s, token, args, pid, p.workdir, use_wrk
                )
                results.setdefault(name, []).append(result)
                print(result.line(raw), flush=True)
                print(f"    {verdict(result, raw)}", flush=True)
        if args.rounds > 1:
            print(f"-- medians of {args.rounds} interleaved rounds")
            print(median_line("(a) raw asyncpg", raws, raws))
            for name, rs in results.items():
                print(median_line(name, rs, raws))
        for name, rs in results.items():
            print(figures_line(name, rs, raws))
    finally:
        stop(gateway)
        for api in apis.values():
            stop(api)
    if args.profile:
        print(f"profile of the API written to {args.profile}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds of each warm-up phase")
    parser.add_argument("--seconds", type=float, default=10.0, help="seconds of each phase")
    parser.add_argument(
        "--tasks", type=int, default=60_000, help="fresh tasks seeded per measurement"
    )
    parser.add_argument(
        "--workers",
        default="2",
        help="uvicorn workers of the API, comma-separated; the first is the headline (e.g. 2,1)",
    )
    parser.add_argument("--rounds", type=int, default=1, help="interleaved rounds (medians)")
    parser.add_argument("--no-gateway", action="store_true", help="skip (c), the API via nginx")
    parser.add_argument("--httpx", action="store_true", help="HTTP load from httpx, not wrk")
    parser.add_argument(
        "--log-level", default="INFO", help="the API's log level (INFO: access log on)"
    )
    parser.add_argument(
        "--app",
        default="bench_transitions:bench_app",
        help="the app factory uvicorn runs (module:function, importable from PYTHONPATH)",
    )
    parser.add_argument(
        "--profile", default=None, help="write a pyinstrument report here (.html or .txt)"
    )
    args = parser.parse_args()
    if args.profile:
        args.profile = str(Path(args.profile).resolve())

    with platform(task_svc, name="transitions") as p:
        asyncio.run(run(p, args))


if __name__ == "__main__":
    try:
        import uvloop

        uvloop.install()
    except ImportError:  # pragma: no cover - uvloop is a dependency of the stack
        pass
    main()
