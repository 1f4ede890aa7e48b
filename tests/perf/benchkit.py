"""What the benchmarks share: a private platform to measure against, and the percentile helper.

    with platform(task_svc, name="cascade") as p:
        token = p.token(sub=str(user), roles=["operator"], org_id=org)
        api = p.start_api("task_svc.main:create_app", p.service_env(LOG_LEVEL="WARNING"))
        ...  # requests to api.url; asyncpg on p.dsn
        stop(api)

`platform` makes a temporary directory (world-readable: the cluster may run as another user),
starts a private PostgreSQL cluster and Redis (servicekit.devstack), provisions the service's
role and schema in database `bench` and migrates it, and on the way out stops whatever it
started (services, the gateway, Redis, PostgreSQL) and removes the directory. The service processes
run under uvicorn on free ports; JWT keys are made on first use.

Not a test module (no `test_` prefix); the benchmarks import it from their own folder, which is
on `sys.path` when one runs as `uv run python tests/perf/bench_x.py`.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from types import ModuleType

from blueprint_stack.gateway import SERVICE_KEEP_ALIVE_SECONDS
from servicekit.dbadmin import ServiceSchema, provision
from servicekit.devstack import PostgresCluster, RedisServer, free_port
from servicekit.devstack.ports import wait_for_port
from servicekit.devstack.tokens import mint_token
from servicekit.migrations import upgrade
from servicekit.testing.keys import ensure_key_pair

PASSWORD = "bench"  # a throwaway cluster of this run
DATABASE = "bench"
ISSUER, AUDIENCE = "blueprint-dev", "blueprint"
HERE = Path(__file__).resolve().parent  # uvicorn's --app-dir: app factories of the benchmarks


def percentile(values: list[float], q: float) -> float:
    """The value at quantile `q` (0..1) of `values` (nearest rank, no interpolation); NaN if
    there are none."""
    data = sorted(values)
    return data[min(len(data) - 1, int(q * len(data)))] if data else float("nan")


@dataclass
class Server:
    """A process of ours listening on a local port (a service under uvicorn, nginx)."""

    port: int
    proc: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        return self.proc.pid


def stop(server: Server | None) -> None:
    """Stop `server` like Ctrl-C (a profiler wrapping it writes its report); idempotent."""
    if server is None or server.proc.poll() is not None:
        return
    server.proc.send_signal(signal.SIGINT)
    try:
        server.proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        server.proc.kill()
        server.proc.wait()


# The gateway's write limit (per client address) in a benchmark: raised far above any load one
# machine makes, so it never answers 429 but still runs its rules on every write.
BENCH_WRITE_RATE = "1000000r/s"
BENCH_WRITE_BURST = 1_000_000


@dataclass
class Platform:
    """PostgreSQL and Redis of one benchmark run, and the processes started against them."""

    workdir: Path
    service: str  # e.g. "task-svc"; "" without a service
    env_prefix: str  # the service's settings prefix, e.g. "TASK_SVC_"
    url: str  # SQLAlchemy URL of the service's role (postgresql+asyncpg://...)
    redis_url: str
    servers: list[Server] = field(default_factory=list)

    @property
    def dsn(self) -> str:
        """The same database for asyncpg (postgresql://...)."""
        return self.url.replace("postgresql+asyncpg://", "postgresql://")

    @cached_property
    def key_pair(self) -> tuple[Path, Path]:
        """(private, public) PEM files of the JWT keys, made on first use."""
        return ensure_key_pair(self.workdir / "jwt")

    @property
    def private_key(self) -> Path:
        return self.key_pair[0]

    @property
    def public_key(self) -> Path:
        return self.key_pair[1]

    def token(self, *, sub: str, roles: list[str], org_id: uuid.UUID) -> str:
        """A bearer token the service accepts, valid for an hour."""
        return mint_token(
            self.private_key.read_bytes(),
            sub=sub,
            roles=roles,
            org_id=org_id,
            issuer=ISSUER,
            audience=AUDIENCE,
            ttl_seconds=3600,
        )

    def service_env(self, **settings: str) -> dict[str, str]:
        """This process's environment plus the service's settings for this platform (database,
        Redis, JWT keys, the event relay not in process); `settings` adds or overrides some,
        named without the prefix (LOG_LEVEL="WARNING")."""
        env = {
            "DATABASE_URL": self.url,
            "REDIS_URL": self.redis_url,
            "JWT_PUBLIC_KEY_FILE": str(self.public_key),
            "JWT_ISSUER": ISSUER,
            "JWT_AUDIENCE": AUDIENCE,
            "SERVICE_TOKEN_PRIVATE_KEY_FILE": str(self.private_key),
            "EVENTS_IN_PROCESS": "false",  # as in the local stack: the relay runs apart
            **settings,
        }
        return {**os.environ, **{self.env_prefix + k: v for k, v in env.items()}}

    def start_api(
        self,
        app: str,
        env: dict[str, str],
        *,
        workers: int | None = None,
        log_level: str | None = None,
        multiprocess_metrics: bool = False,
        profile: str | None = None,
    ) -> Server:
        """The app factory `app` (module:function) under uvicorn on a free port: uvloop,
        httptools, no access log from uvicorn. `workers` and `log_level` become uvicorn's
        options when given; `multiprocess_metrics` gives Prometheus a directory of its own
        (PROMETHEUS_MULTIPROC_DIR); `profile` runs it under pyinstrument, reporting there."""
        port = free_port()
        uvicorn_args = [
            app,
            "--factory",
            "--app-dir",
            str(HERE),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            *(["--workers", str(workers)] if workers is not None else []),
            "--loop",
            "uvloop",
            "--http",
            "httptools",
            *(["--log-level", log_level] if log_level is not None else []),
            "--no-access-log",
            "--timeout-keep-alive",
            str(SERVICE_KEEP_ALIVE_SECONDS),
        ]
        python = [sys.executable, *(["-m", "pyinstrument", "-o", profile] if profile else [])]
        cmd = [*python, "-m", "uvicorn", *uvicorn_args]
        if multiprocess_metrics:
            metrics_dir = self.workdir / f"metrics-{port}"
            metrics_dir.mkdir()
            env = {**env, "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)}
        log_file = self.workdir / f"api-{port}.log"
        log = open(log_file, "ab")  # noqa: SIM115 - the child keeps it open
        proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        if not wait_for_port(port, 120.0):  # a loaded machine imports slowly
            proc.terminate()
            proc.wait()
            tail = log_file.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"{self.service or app} did not start:\n{tail}")
        server = Server(port, proc)
        self.servers.append(server)
        return server

    def start_gateway(self, upstream: int) -> Server | None:
        """The project's own gateway (gateway/nginx.conf.template rendered by the stack runner,
        as `run` renders it: access log, gzip, headers, limits) on a free port, every service's
        upstream at port `upstream`, the write limit raised (`--write-rate`) so it never
        refuses; None if nginx is not installed or did not start."""
        from blueprint_stack.config import SERVICES, StackConfig
        from blueprint_stack.gateway import write_config

        binary = shutil.which("nginx") or (
            "/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None
        )
        if binary is None:
            return None
        port = free_port()
        config = StackConfig(
            var_dir=self.workdir / "stack",
            gateway_port=port,
            service_ports={svc.name: upstream for svc in SERVICES},
            write_rate=BENCH_WRITE_RATE,
            write_burst=BENCH_WRITE_BURST,
        )
        conf = write_config(config)
        log = open(self.workdir / "gateway.log", "ab")  # noqa: SIM115 - the child keeps it open
        proc = subprocess.Popen(
            [binary, "-p", str(config.nginx_dir), "-c", str(conf)],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        if not wait_for_port(port, 10.0):
            proc.terminate()
            proc.wait()
            print(f"the gateway did not start: see {self.workdir / 'gateway.log'}")
            return None
        server = Server(port, proc)
        self.servers.append(server)
        return server


def _exit_on_sigterm(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)


@contextmanager
def platform(
    service: ModuleType | None,
    *,
    name: str,
    role: str = "bench",
    schema: str = "bench",
    redis_appendonly: bool = False,
) -> Iterator[Platform]:
    """PostgreSQL (database `bench`) and Redis in a temporary directory `bp-bench-<name>-*`.

    `service` is a service package (`task_svc`, `template_svc`: its ROLE, SCHEMA and
    SERVICE_DIR): its role and schema are provisioned and its migrations run. With None, role
    `role` gets an empty schema `schema` for the caller to fill. Everything started is stopped,
    and the directory removed, on the way out.
    """
    # A benchmark stopped with SIGTERM (as a background job is) still stops what it started:
    # the signal becomes SystemExit, which runs the `finally` below.
    previous = signal.signal(signal.SIGTERM, _exit_on_sigterm)
    base = Path(tempfile.mkdtemp(prefix=f"bp-bench-{name}-"))
    base.chmod(0o755)
    if service is not None:
        role, schema = service.ROLE, service.SCHEMA
    cluster = PostgresCluster(base / "pg", free_port(), name="bench")
    redis = RedisServer(base / "redis", free_port(), appendonly=redis_appendonly)
    p: Platform | None = None
    cluster.start()
    try:
        redis.start()
        asyncio.run(provision(cluster.admin_dsn, DATABASE, [ServiceSchema(role, schema, PASSWORD)]))
        url = cluster.url_for(role, PASSWORD, DATABASE)
        if service is not None:
            upgrade(service.SERVICE_DIR, url)
        p = Platform(
            workdir=base,
            service=service.__name__.replace("_", "-") if service is not None else "",
            env_prefix=f"{service.__name__.upper()}_" if service is not None else "",
            url=url,
            redis_url=redis.url,
        )
        yield p
    finally:
        for server in reversed(p.servers if p is not None else []):
            stop(server)
        redis.stop()
        cluster.stop()
        shutil.rmtree(base, ignore_errors=True)
        signal.signal(signal.SIGTERM, previous)
