"""Task transition benchmark: the raw transaction vs the API vs the API behind nginx.

    uv run python tests/perf/bench_transitions.py [--clients 16] [--warmup 3] [--seconds 10]
        [--tasks-per-client 64] [--no-nginx] [--profile out.html]

Starts its own PostgreSQL and Redis (servicekit.devstack), migrates task-svc's schema, seeds one
project whose tasks are all independent and `ready` (each client owns its own tasks, so requests
do not wait on each other's row locks), then measures in the same run, with the same number of
concurrent clients for the same time:

(a) raw: the transition transaction of docs PERFORMANCE.md from asyncpg (pool = clients): BEGIN;
    SELECT task FOR UPDATE; SELECT on the idempotency index; INSERT event; INSERT outbox row;
    UPDATE task; COMMIT.
(b) api: task-svc under uvicorn (1 worker, uvloop, httptools, log level warning), hit over HTTP
    by httpx.AsyncClient with `assign` to a new user each time (allowed from ready, status kept),
    a fresh client_event_id and the expected row_version.
(c) gateway: the same through a minimal nginx reverse proxy (when nginx is installed).

Prints requests per second and p50/p99 latency of each, and the ratios to raw. The load
generator shares the machine with PostgreSQL and the service: compare the ratios, not the
absolute numbers, between machines. `--profile` runs the API under pyinstrument (when installed,
e.g. `uv run --with pyinstrument python tests/perf/bench_transitions.py --profile p.html`) and
writes its report (HTML, or text for a .txt name); numbers measured that way are not comparable.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import httpx
from fastapi import FastAPI

from servicekit.auth import mint_token
from servicekit.dbadmin import ServiceSchema, provision
from servicekit.devstack import PostgresCluster, RedisServer, free_port
from servicekit.devstack.ports import wait_for_port
from servicekit.jsonutil import dumps
from servicekit.migrations import upgrade
from servicekit.testing.keys import ensure_key_pair
from task_svc import ROLE, SCHEMA, SERVICE_DIR

PASSWORD = "bench"  # a throwaway cluster of this run
DATABASE = "bench"
ISSUER, AUDIENCE = "blueprint-dev", "blueprint"


def bench_app() -> FastAPI:
    """task-svc's app with the transition routes (uvicorn --factory target)."""
    from task_svc.main import create_app
    from task_svc.tasks.transitions_router import router as transitions_router

    app = create_app()
    if "/api/v1/tasks/{task_id}/transitions" not in {getattr(r, "path", None) for r in app.routes}:
        app.include_router(transitions_router)
    return app


# ---------------------------------------------------------------------------------------------
# Measuring


@dataclass
class Result:
    name: str
    seconds: float
    latencies_ms: list[float] = field(default_factory=list)
    errors: int = 0
    first_error: str = ""
    cpu_seconds: float | None = None  # CPU of the measured process over the measured window
    cpu_of: str = ""
    # Figures reported by wrk, which keeps no per-request list.
    wrk_rate: float | None = None
    wrk_requests: int = 0
    p50_ms: float | None = None
    p99_ms: float | None = None

    @property
    def rate(self) -> float:
        if self.wrk_rate is not None:
            return self.wrk_rate
        return len(self.latencies_ms) / self.seconds

    @property
    def count(self) -> int:
        return self.wrk_requests or len(self.latencies_ms)

    def pct(self, q: float) -> float:
        if q == 0.99 and self.p99_ms is not None:
            return self.p99_ms
        data = sorted(self.latencies_ms)
        return data[min(len(data) - 1, int(q * len(data)))] if data else float("nan")

    def line(self, raw: Result | None) -> str:
        ratio = f"  {self.rate / raw.rate:5.2f} x raw" if raw is not None and raw.rate else ""
        errors = f"  errors {self.errors} ({self.first_error})" if self.errors else ""
        if self.cpu_seconds is not None and self.count:
            per = self.cpu_seconds / self.count * 1000
            errors = f"  {self.cpu_of} CPU {per:.2f} ms/req{errors}"
        if self.p50_ms is not None:
            p50 = self.p50_ms
        else:
            p50 = statistics.median(self.latencies_ms) if self.latencies_ms else float("nan")
        return (
            f"{self.name:<28} {self.rate:9,.0f} /s   p50 {p50:6.1f} ms  "
            f"p99 {self.pct(0.99):6.1f} ms{ratio}{errors}"
        )


def process_cpu(pid: int | None) -> float:
    """CPU seconds (user + system) used so far by process `pid` (None: this process)."""
    if pid is None:
        return time.process_time()
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def drive(
    name: str,
    clients: int,
    warmup: float,
    seconds: float,
    one: Callable[[int], Awaitable[str | None]],
    *,
    cpu_pid: int | None = None,
    cpu_of: str = "client",
) -> Result:
    """`clients` loops calling `one(client)` (None: success, else an error text).

    Also measures the CPU used by process `cpu_pid` (None: this one) over the measured window.
    """
    result = Result(name, seconds, cpu_of=cpu_of)
    start = time.perf_counter()
    measure_from = start + warmup
    stop_at = measure_from + seconds

    async def cpu_meter() -> None:
        await asyncio.sleep(warmup)
        before = process_cpu(cpu_pid)
        await asyncio.sleep(max(0.0, stop_at - time.perf_counter()))
        result.cpu_seconds = process_cpu(cpu_pid) - before

    async def loop(client: int) -> None:
        while True:
            t0 = time.perf_counter()
            if t0 >= stop_at:
                return
            error = await one(client)
            t1 = time.perf_counter()
            if t0 < measure_from or t1 > stop_at:
                continue
            if error is None:
                result.latencies_ms.append((t1 - t0) * 1000)
            else:
                result.errors += 1
                result.first_error = result.first_error or error

    await asyncio.gather(cpu_meter(), *(loop(c) for c in range(clients)))
    return result


# ---------------------------------------------------------------------------------------------
# Seeding


@dataclass
class Seed:
    org: uuid.UUID
    planner: uuid.UUID
    tasks: list[list[uuid.UUID]]  # per client


async def seed(dsn: str, clients: int, per_client: int, org: uuid.UUID | None = None) -> Seed:
    org = org or uuid.uuid4()
    planner, project, dl = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    ids = [uuid.uuid4() for _ in range(clients * per_client)]
    conn = await asyncpg.connect(dsn, server_settings={"search_path": SCHEMA})
    try:
        async with conn.transaction():
            await conn.execute(
                "INSERT INTO projects (id, org_id, name, template_id, template_key, "
                "template_version, template_checksum, snapshot, status, start_at, created_by) "
                "VALUES ($1, $2, 'Bench', $3, 'bench', 1, 'x', '{}'::jsonb, 'active', now(), 'b')",
                project,
                org,
                uuid.uuid4(),
            )
            await conn.execute(
                "INSERT INTO deliverables (id, org_id, project_id, name, position, serial) "
                "VALUES ($1::uuid, $2, $3, 'D1', 1, 'BENCH-' || $1::uuid::text)",
                dl,
                org,
                project,
            )
            await conn.execute(
                "INSERT INTO tasks (id, org_id, project_id, deliverable_id, node_key, title, "
                "kind, work_kind, status) "
                "SELECT x.id, $2, $3, $4, 'n' || x.n, 'Step ' || x.n, 'task', 'work', 'ready' "
                "FROM unnest($1::uuid[]) WITH ORDINALITY AS x(id, n)",
                ids,
                org,
                project,
                dl,
            )
            await conn.execute(
                "INSERT INTO task_events (org_id, task_id, action, from_status, to_status, "
                "actor, payload, row_version) "
                "SELECT $2, x, 'create', NULL, 'ready', 'bench', '{}'::jsonb, 1 "
                "FROM unnest($1::uuid[]) AS x",
                ids,
                org,
            )
        await conn.execute("ANALYZE")
    finally:
        await conn.close()
    tasks = [ids[c * per_client : (c + 1) * per_client] for c in range(clients)]
    return Seed(org, planner, tasks)


class Versions:
    """Each client's tasks, round robin, with the row_version each is at."""

    def __init__(self, tasks: list[list[uuid.UUID]]) -> None:
        self.tasks = tasks
        self.pos = [0] * len(tasks)
        self.version: dict[uuid.UUID, int] = {t: 1 for ts in tasks for t in ts}

    def next(self, client: int) -> uuid.UUID:
        mine = self.tasks[client]
        self.pos[client] = (self.pos[client] + 1) % len(mine)
        return mine[self.pos[client]]


async def current_versions(dsn: str, versions: Versions) -> None:
    conn = await asyncpg.connect(dsn, server_settings={"search_path": SCHEMA})
    try:
        rows = await conn.fetch(
            "SELECT id, row_version FROM tasks WHERE id = ANY($1::uuid[])",
            list(versions.version),
        )
    finally:
        await conn.close()
    versions.version.update({r["id"]: r["row_version"] for r in rows})


# ---------------------------------------------------------------------------------------------
# (a) raw asyncpg

_RAW_LOCK = (
    "SELECT id, org_id, project_id, deliverable_id, node_key, status, assigned_to, row_version "
    "FROM tasks WHERE id = $1 AND org_id = $2 FOR UPDATE"
)
_RAW_IDEMPOTENCY = (
    "SELECT action, response, status_code FROM task_events "
    "WHERE task_id = $1 AND client_event_id = $2"
)
_RAW_EVENT = (
    "INSERT INTO task_events (org_id, task_id, action, from_status, to_status, actor, payload, "
    "client_event_id, row_version, response, status_code) "
    "VALUES ($1, $2, 'assign', $3, $3, $4, $5::jsonb, $6, $7, $8::jsonb, 200)"
)
_RAW_OUTBOX = (
    "INSERT INTO outbox (id, type, source, aggregate_type, aggregate_id, payload) "
    "VALUES ($1, 'task.assigned', 'task-svc', 'task', $2, $3::jsonb)"
)
_RAW_UPDATE = (
    "UPDATE tasks SET assigned_to = $2, assigned_at = now(), row_version = row_version + 1, "
    "updated_at = now() WHERE id = $1"
)


async def bench_raw(dsn: str, s: Seed, args: argparse.Namespace) -> Result:
    pool = await asyncpg.create_pool(
        dsn,
        min_size=args.clients,
        max_size=args.clients,
        server_settings={"search_path": SCHEMA},
    )
    assert pool is not None
    versions = Versions(s.tasks)

    async def one(client: int) -> str | None:
        tid = versions.next(client)
        user = uuid.uuid4()
        cid = uuid.uuid4().hex
        async with pool.acquire() as con, con.transaction():
            row = await con.fetchrow(_RAW_LOCK, tid, s.org)
            assert row is not None
            if await con.fetchrow(_RAW_IDEMPOTENCY, tid, cid) is not None:
                return "replayed"
            version = row["row_version"] + 1
            payload = dumps({"assign_to": str(user)}).decode()
            response = dumps(
                {"task_id": str(tid), "action": "assign", "row_version": version}
            ).decode()
            await con.execute(
                _RAW_EVENT, s.org, tid, row["status"], "bench", payload, cid, version, response
            )
            await con.execute(
                _RAW_OUTBOX,
                uuid.uuid4(),
                str(tid),
                dumps({"task_id": str(tid), "assigned_to": str(user)}).decode(),
            )
            await con.execute(_RAW_UPDATE, tid, user)
        return None

    try:
        return await drive("(a) raw asyncpg", args.clients, args.warmup, args.seconds, one)
    finally:
        await pool.close()


# ---------------------------------------------------------------------------------------------
# (b), (c) over HTTP


async def bench_http(
    name: str,
    base_url: str,
    dsn: str,
    s: Seed,
    token: str,
    args: argparse.Namespace,
    api_pid: int,
) -> Result:
    versions = Versions(s.tasks)
    await current_versions(dsn, versions)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    limits = httpx.Limits(max_connections=args.clients, max_keepalive_connections=args.clients)
    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=30.0) as http:

        async def one(client: int) -> str | None:
            tid = versions.next(client)
            body = {
                "action": "assign",
                "payload": {"assign_to": str(uuid.uuid4())},
                "expected_row_version": versions.version[tid],
                "client_event_id": uuid.uuid4().hex,
            }
            r = await http.post(
                f"/api/v1/tasks/{tid}/transitions", content=dumps(body), headers=headers
            )
            if r.status_code != 200:
                if r.status_code == 409:
                    versions.version[tid] = r.json().get("row_version", versions.version[tid])
                return f"{r.status_code} {r.text[:200]}"
            versions.version[tid] = int(r.headers["ETag"].strip('"'))
            return None

        return await drive(
            name, args.clients, args.warmup, args.seconds, one, cpu_pid=api_pid, cpu_of="service"
        )


WRK_SCRIPT = """
-- Each request assigns a task that no other request touches, at row_version 1, with a fresh
-- client_event_id: no version tracking, no lock waits between clients.
local ids = {}
for line in io.lines(os.getenv("BENCH_TASKS")) do ids[#ids + 1] = line end
local token = os.getenv("BENCH_TOKEN")
local threads = {}
local n = 0

function setup(thread)
  thread:set("slot", #threads)
  table.insert(threads, thread)
end

function init(args)
  count = 0
  stride = tonumber(os.getenv("BENCH_THREADS"))
end

function request()
  local i = slot + count * stride + 1
  count = count + 1
  local id = ids[i]
  if id == nil then id = ids[1] end
  local body = string.format(
    '{"action":"assign","payload":{"assign_to":"%s"},"expected_row_version":1,'
    .. '"client_event_id":"wrk-%d-%d"}',
    "00000000-0000-4000-8000-0000000000aa", slot, count)
  return wrk.format("POST", "/api/v1/tasks/" .. id .. "/transitions",
    {["Authorization"] = "Bearer " .. token, ["Content-Type"] = "application/json"}, body)
end
"""


def _wrk_ms(text: str) -> float:
    value = float(
        text[:-2] if text.endswith("ms") else text[:-2] if text.endswith("us") else text[:-1]
    )
    if text.endswith("us"):
        return value / 1000
    if text.endswith("ms"):
        return value
    return value * 1000


async def bench_wrk(
    name: str,
    base_url: str,
    tasks: list[uuid.UUID],
    token: str,
    args: argparse.Namespace,
    api_pid: int,
    workdir: Path,
) -> Result:
    """HTTP load from wrk (C, two threads): the load generator costs the machine little."""
    wrk = shutil.which("wrk")
    assert wrk is not None
    script = workdir / "transition.lua"
    script.write_text(WRK_SCRIPT)
    threads = 2
    result = Result(name, args.seconds, cpu_of="service")

    def run_wrk(ids: list[uuid.UUID], seconds: float) -> str:
        ids_file = workdir / "wrk-tasks.txt"
        ids_file.write_text("\n".join(str(i) for i in ids))
        env = {
            **os.environ,
            "BENCH_TASKS": str(ids_file),
            "BENCH_TOKEN": token,
            "BENCH_THREADS": str(threads),
        }
        out = subprocess.run(
            [
                wrk,
                f"-t{threads}",
                f"-c{args.clients}",
                f"-d{seconds:.0f}s",
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
        return out.stdout

    half = len(tasks) // 4
    await asyncio.to_thread(run_wrk, tasks[:half], max(args.warmup, 1.0))
    before = process_cpu(api_pid)
    text = await asyncio.to_thread(run_wrk, tasks[half:], args.seconds)
    cpu = process_cpu(api_pid) - before
    requests = 0
    for line in text.splitlines():
        parts = line.split()
        if line.strip().startswith("50%"):
            result.p50_ms = _wrk_ms(parts[1])
        elif line.strip().startswith("99%"):
            result.p99_ms = _wrk_ms(parts[1])
        elif "requests in" in line:
            requests = int(parts[0])
        elif "Non-2xx" in line:
            result.errors = int(parts[-1])
            result.first_error = "non-2xx responses"
        elif line.startswith("Requests/sec:"):
            result.wrk_rate = float(parts[1])
    result.wrk_requests = requests
    result.cpu_seconds = cpu
    if requests > len(tasks) - half:
        result.errors += requests - (len(tasks) - half)
        result.first_error = "ran out of fresh tasks: seed more (--fresh-tasks)"
    return result


def start_api(
    port: int, env: dict[str, str], workdir: Path, profile: str | None, app: str, workers: int = 1
) -> subprocess.Popen[bytes]:
    uvicorn_args = [
        app,
        "--factory",
        "--app-dir",
        str(Path(__file__).resolve().parent),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--loop",
        "uvloop",
        "--http",
        "httptools",
        "--log-level",
        "warning",
        "--no-access-log",
    ]
    if profile:
        cmd = [
            sys.executable,
            "-m",
            "pyinstrument",
            "-o",
            profile,
            "-m",
            "uvicorn",
            *uvicorn_args,
        ]
    else:
        cmd = [sys.executable, "-m", "uvicorn", *uvicorn_args]
    log = open(workdir / "api.log", "ab")  # noqa: SIM115 - the child keeps it open
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
    log.close()
    if not wait_for_port(port, 30.0):
        proc.terminate()
        raise RuntimeError(f"task-svc did not start: see {workdir / 'api.log'}")
    return proc


NGINX_CONF = """worker_processes 1;
daemon off;
pid {dir}/nginx.pid;
error_log {dir}/nginx-error.log warn;
events {{ worker_connections 1024; }}
http {{
  access_log off;
  client_body_temp_path {dir}/client_body;
  proxy_temp_path {dir}/proxy;
  fastcgi_temp_path {dir}/fastcgi;
  uwsgi_temp_path {dir}/uwsgi;
  scgi_temp_path {dir}/scgi;
  upstream task_svc {{ server 127.0.0.1:{upstream}; keepalive 64; }}
  server {{
    listen 127.0.0.1:{port};
    location / {{
      proxy_pass http://task_svc;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $host;
      proxy_set_header X-Request-ID $request_id;
    }}
  }}
}}
"""


def start_nginx(port: int, upstream: int, workdir: Path) -> subprocess.Popen[bytes] | None:
    binary = shutil.which("nginx") or (
        "/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None
    )
    if binary is None:
        return None
    conf = workdir / "nginx.conf"
    conf.write_text(NGINX_CONF.format(dir=workdir, port=port, upstream=upstream))
    log = open(workdir / "nginx.log", "ab")  # noqa: SIM115 - the child keeps it open
    proc = subprocess.Popen(
        [binary, "-p", str(workdir), "-c", str(conf)], stdout=log, stderr=subprocess.STDOUT
    )
    log.close()
    if not wait_for_port(port, 10.0):
        proc.terminate()
        print(f"nginx did not start: see {workdir / 'nginx-error.log'}")
        return None
    return proc


def stop(proc: subprocess.Popen[bytes] | None) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGINT)  # like Ctrl-C: a profiler wrapping it writes its report
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


# ---------------------------------------------------------------------------------------------


async def run(url: str, dsn: str, redis_url: str, workdir: Path, args: argparse.Namespace) -> None:
    s = await seed(dsn, args.clients, args.tasks_per_client)
    private_file, public_file = ensure_key_pair(workdir / "jwt")
    token = mint_token(
        private_file.read_bytes(),
        sub=str(s.planner),
        roles=["planner"],
        org_id=s.org,
        issuer=ISSUER,
        audience=AUDIENCE,
        ttl_seconds=3600,
    )
    print(
        f"{args.clients} clients, {args.warmup:.0f} s warm-up + {args.seconds:.0f} s, "
        f"{args.clients * args.tasks_per_client} ready tasks, {os.cpu_count()} CPUs"
    )
    raw = await bench_raw(dsn, s, args)
    print(raw.line(None), flush=True)

    env = {
        **os.environ,
        "TASK_SVC_DATABASE_URL": url,
        "TASK_SVC_REDIS_URL": redis_url,
        "TASK_SVC_JWT_PUBLIC_KEY_FILE": str(public_file),
        "TASK_SVC_JWT_ISSUER": ISSUER,
        "TASK_SVC_JWT_AUDIENCE": AUDIENCE,
        "TASK_SVC_SERVICE_TOKEN_PRIVATE_KEY_FILE": str(private_file),
        "TASK_SVC_EVENTS_IN_PROCESS": "false",  # the relay runs in the worker process
        "TASK_SVC_LOG_LEVEL": "WARNING",
        "TASK_SVC_DB_POOL_SIZE": str(args.clients),
    }
    api_port = free_port()
    api = start_api(api_port, env, workdir, args.profile, args.app, args.workers)
    gateway: subprocess.Popen[bytes] | None = None
    use_wrk = shutil.which("wrk") is not None and not args.httpx
    fresh: list[uuid.UUID] = []
    if use_wrk:
        fresh_seed = await seed(dsn, 1, args.fresh_tasks, org=s.org)
        fresh = fresh_seed.tasks[0]
        print(f"HTTP load from wrk, {len(fresh)} fresh ready tasks (each used once)")
    else:
        print("HTTP load from httpx (install wrk for a load generator that costs less)")

    async def http_bench(name: str, base_url: str) -> Result:
        if use_wrk:
            half = len(fresh) // 2
            part = fresh[:half] if name.startswith("(b)") else fresh[half:]
            return await bench_wrk(name, base_url, part, token, args, api.pid, workdir)
        return await bench_http(name, base_url, dsn, s, token, args, api.pid)

    try:
        result = await http_bench(
            f"(b) api (uvicorn, {args.workers} worker{'s' if args.workers > 1 else ''})",
            f"http://127.0.0.1:{api_port}",
        )
        print(result.line(raw), flush=True)
        if not args.no_nginx:
            gw_port = free_port()
            gateway = start_nginx(gw_port, api_port, workdir)
            if gateway is None:
                print("(c) gateway: nginx is not available, skipped")
            else:
                result = await http_bench("(c) api behind nginx", f"http://127.0.0.1:{gw_port}")
                print(result.line(raw), flush=True)
    finally:
        stop(gateway)
        stop(api)
    if args.profile:
        print(f"profile of the API written to {args.profile}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--tasks-per-client", type=int, default=64)
    parser.add_argument("--no-nginx", action="store_true")
    parser.add_argument("--workers", type=int, default=1, help="uvicorn workers of the API")
    parser.add_argument(
        "--fresh-tasks", type=int, default=120_000, help="tasks seeded for the wrk runs"
    )
    parser.add_argument("--httpx", action="store_true", help="HTTP load from httpx, not wrk")
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

    base = Path(tempfile.mkdtemp(prefix="bp-bench-transitions-"))
    base.chmod(0o755)
    cluster = PostgresCluster(base / "pg", free_port(), name="bench")
    redis = RedisServer(base / "redis", free_port(), appendonly=False)
    cluster.start()
    try:
        redis.start()
        asyncio.run(provision(cluster.admin_dsn, DATABASE, [ServiceSchema(ROLE, SCHEMA, PASSWORD)]))
        url = cluster.url_for(ROLE, PASSWORD, DATABASE)
        upgrade(SERVICE_DIR, url)
        dsn = url.replace("postgresql+asyncpg://", "postgresql://")
        asyncio.run(run(url, dsn, redis.url, base, args))
    finally:
        redis.stop()
        cluster.stop()
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    try:
        import uvloop

        uvloop.install()
    except ImportError:  # pragma: no cover - uvloop is a dependency of the stack
        pass
    main()
