"""The platform on one machine: PostgreSQL, Redis, the four services, their workers and the gateway.

`Stack(config).start()` brings everything up in order and waits until each part is ready;
`.stop()` stops everything it started: the processes that use the stores together, then the
stores. The CLI (`run`) and the e2e tests use the
same class.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import importlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

from blueprint_stack import gateway, observability
from blueprint_stack.config import SERVICES, ServiceDef, StackConfig
from blueprint_stack.install import ensure_installed, nginx_binary, redis_binary
from blueprint_stack.keys import DEV_AUDIENCE, DEV_ISSUER, ensure_key_pair
from blueprint_stack.observability import ObsConfig
from blueprint_stack.supervisor import (
    Console,
    ManagedProcess,
    ProcessSpec,
    StackError,
    http_ready,
    port_ready,
    stop_leftovers,
)
from servicekit.dbadmin import ServiceSchema, provision
from servicekit.devstack import PostgresCluster, RedisServer, ensure_port_free
from servicekit.devstack.postgres import make_reachable, pg_bindir

__all__ = ["Stack", "StackError"]

# The stores every other process uses: they stop last, after everything that talks to them.
FOUNDATION = frozenset({"postgres", "redis", "smtp-sink"})


class Stack:
    def __init__(
        self, config: StackConfig, console: Console | None = None, obs: ObsConfig | None = None
    ) -> None:
        self.config = config
        # Prometheus, Alertmanager and the gateway's exporter too (`make run OBS=1`).
        self.obs = obs
        self.console = console or Console(echo=config.echo)
        self.postgres = PostgresCluster(config.pg_dir, config.postgres_port, name="blueprint")
        self.redis = RedisServer(config.redis_dir, config.redis_port, appendonly=True)
        # Started processes by name, in start order (stop goes the other way).
        self.processes: dict[str, ManagedProcess] = {}
        self._specs: dict[str, ProcessSpec] = {}
        self._passwords: dict[str, str] = {}
        self._lock: int | None = None  # fd of var/run/runner.lock while this stack runs
        self._docs_build: subprocess.Popen[bytes] | None = None  # building the API docs

    # --- lifecycle -----------------------------------------------------------------------
    def start(self) -> None:
        """Start everything; on any failure (or Ctrl-C) stop what was started, then re-raise."""
        try:
            self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> None:
        cfg = self.config
        if cfg.run_dir.exists():
            # An earlier run of this var dir may have been killed and left processes holding
            # the ports: stop them first (only if no runner is using the var dir now).
            self._take_lock()
            stop_leftovers(cfg.run_dir, self.console)
        for setting in cfg.ports():
            ensure_port_free(setting.port, setting.what)
        for port, what, _ in self.obs.ports() if self.obs else ():
            ensure_port_free(port, what)
        ensure_installed(self.console, allowed=cfg.install_missing)
        for d in (cfg.var_dir, cfg.log_dir, cfg.run_dir):
            d.mkdir(parents=True, exist_ok=True)
        self._take_lock()
        ensure_key_pair(cfg.keys_dir)
        self._passwords = self._load_passwords()

        # The gateway's API docs are built by a process of their own while the rest starts.
        self._start_docs_build()
        self.console.say(f"PostgreSQL on port {cfg.postgres_port} ({cfg.pg_dir})")
        self.postgres.init()
        self._launch(self.postgres_spec())
        self.console.say(f"provisioning database {cfg.database!r} with one role per service")
        self._provision()
        self._migrate()

        self.console.say(f"Redis on port {cfg.redis_port} ({cfg.redis_dir})")
        cfg.redis_dir.mkdir(parents=True, exist_ok=True)
        self._launch(self.redis_spec())

        # The rest needs only the stores above: start it all at once, then wait for each part.
        self.console.say(f"SMTP sink on port {cfg.smtp_port} (mails in {cfg.mail_dir})")
        self._launch_all(
            [
                self.smtp_sink_spec(),
                *(self.service_spec(svc) for svc in SERVICES),
                *self.worker_specs(),
            ]
        )

        self.console.say(f"gateway on {cfg.gateway_url}")
        self._launch(self.gateway_spec())

        if self.obs is not None:
            self.console.say(f"Prometheus on {self.obs.prometheus_url}, Alertmanager on "
                             f"{self.obs.alertmanager_url}")  # fmt: skip
            self._launch_all(observability.process_specs(cfg, self.obs))

    def stop(self) -> None:
        """Stop every process this stack started. Safe to call again.

        The gateway, the services, their workers and the observability processes are signalled
        together and shut down side by side (one at a time took seconds each); the stores they
        use (the SMTP sink, Redis, PostgreSQL) stop after them, the newest first.
        """
        newest_first = list(reversed(self.processes))
        users = [self.processes[n] for n in newest_first if n not in FOUNDATION]
        for proc in users:
            proc.request_stop()
        for proc in users + [self.processes[n] for n in newest_first if n in FOUNDATION]:
            proc.stop()
        self.processes.clear()
        self._abandon_docs_build()
        self._release_lock()

    def _take_lock(self) -> None:
        """One runner per var dir: a second one would stop the first one's processes as
        leftovers. The lock goes with the runner, however it ends."""
        if self._lock is not None:
            return
        path = self.config.run_dir / "runner.lock"
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise StackError(
                f"another runner (pid {holder}) is using {self.config.var_dir}; stop it first "
                f"(kill -TERM {holder}) or choose another --var-dir"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._lock = fd

    def _release_lock(self) -> None:
        if self._lock is not None:
            with contextlib.suppress(OSError):
                os.close(self._lock)
            self._lock = None

    def watch(self) -> None:
        """Called over and over while the stack runs (the runner's main loop): restart what
        crashed, with backoff (`config.restart_policy`). Raises ProcessDied (a StackError) when a
        process must not or can no longer be restarted; the caller then stops the stack.

        Processes stopped on purpose (`stop_process`) stay stopped.
        """
        for proc in list(self.processes.values()):
            proc.tend(self.config.restart_policy, self.config.ready_timeout)

    def stop_process(self, name: str, *, kill: bool = False) -> None:
        """Stop one process (e.g. a service, to see how the gateway copes).

        `kill=True` sends SIGKILL to its whole group at once, as a crash would.
        """
        if kill:
            self.process(name).kill()
        else:
            self.process(name).stop()

    def start_process(self, name: str) -> None:
        """Start one process again (after `stop_process`) and wait until it is ready."""
        proc = self.process(name)
        ensure_port_free_for(self.config, name)
        proc.start()
        proc.wait_ready(self.config.ready_timeout)

    def process(self, name: str) -> ManagedProcess:
        try:
            return self.processes[name]
        except KeyError:
            raise KeyError(f"no process {name!r}; known: {', '.join(self.processes)}") from None

    def dead_processes(self) -> list[ManagedProcess]:
        """Processes that should be running and are not (crashed, not yet seen by `watch`)."""
        return [
            p for p in self.processes.values() if p.wanted and p.popen is not None and not p.alive()
        ]

    def _launch(self, spec: ProcessSpec) -> None:
        self._launch_all([spec])

    def _launch_all(self, specs: list[ProcessSpec]) -> None:
        """Start several processes at once, then wait for each to be ready."""
        started = []
        for spec in specs:
            proc = ManagedProcess(
                spec, self.config.log_dir, self.console, run_dir=self.config.run_dir
            )
            self.processes[spec.name] = proc
            self._specs[spec.name] = spec
            proc.start()
            started.append(proc)
        for proc in started:
            proc.wait_ready(self.config.ready_timeout)

    # --- the processes -------------------------------------------------------------------
    def python(self, *args: str) -> list[str]:
        """argv for this interpreter (the workspace's virtualenv)."""
        return [sys.executable, *args]

    def postgres_spec(self) -> ProcessSpec:
        make_reachable(self.postgres.socket_dir)
        isready = [
            str(pg_bindir() / "pg_isready"),
            "-h", str(self.postgres.socket_dir),
            "-p", str(self.config.postgres_port),
            "-U", "postgres",
        ]  # fmt: skip

        def ready() -> bool:
            return subprocess.run(isready, capture_output=True, check=False).returncode == 0

        argv = self.postgres.command()
        if Path(argv[0]).name == "setpriv":
            # Changing the user clears the signal the server gets when the runner dies; setpriv
            # sets it again after the change.
            argv.insert(1, "--pdeathsig=keep")
        # SIGINT is PostgreSQL's "fast" shutdown: it does not wait for clients to disconnect.
        return ProcessSpec("postgres", argv, ready=ready, stop_signal=signal.SIGINT)

    def redis_spec(self) -> ProcessSpec:
        argv = self.redis.command()
        argv[0] = redis_binary() or argv[0]
        return ProcessSpec("redis", argv, ready=port_ready(self.config.redis_port))

    def smtp_sink_spec(self) -> ProcessSpec:
        """The SMTP server notify-svc sends to: every mail becomes an .eml file in var/mail/."""
        port = self.config.smtp_port
        return ProcessSpec(
            "smtp-sink",
            self.python("-m", "blueprint_stack.smtp_sink", "--port", str(port),
                        "--dir", str(self.config.mail_dir)),
            cwd=self.config.repo_root,
            ready=port_ready(port),
        )  # fmt: skip

    def service_spec(self, svc: ServiceDef) -> ProcessSpec:
        port = self.config.service_port(svc.name)
        workers = max(1, self.config.service_workers)
        argv = self.python(
            "-m", "uvicorn", f"{svc.package}.main:create_app", "--factory",
            "--host", "127.0.0.1", "--port", str(port), "--no-access-log",
            "--workers", str(workers),
            # Longer than the gateway keeps an idle connection (gateway/nginx.conf.template).
            "--timeout-keep-alive", str(gateway.SERVICE_KEEP_ALIVE_SECONDS),
            # Live event streams never end by themselves: give them this long at shutdown.
            "--timeout-graceful-shutdown", "3",
        )  # fmt: skip
        # The workers of one service add up their metrics in a directory of their own, emptied
        # before they start, and again before a restart (prometheus_client's multiprocess mode).
        metrics_dir = self.config.metrics_dir / svc.name

        def empty_metrics_dir() -> None:
            shutil.rmtree(metrics_dir, ignore_errors=True)
            metrics_dir.mkdir(parents=True)

        env = {
            **self.service_env(svc),
            f"{svc.env_prefix}EVENTS_IN_PROCESS": "false",
            "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
        }
        return ProcessSpec(
            svc.name,
            argv,
            env=env,
            cwd=self.config.repo_root,
            ready=http_ready(f"http://127.0.0.1:{port}/readyz"),
            prepare=empty_metrics_dir,
        )

    def events_spec(self, svc: ServiceDef) -> ProcessSpec:
        """The service's outbox relay and event consumer (`python -m <package>.worker`)."""
        port = self.config.events_metrics_ports[svc.name]
        return ProcessSpec(
            f"{svc.name}-events",
            self.python("-m", f"{svc.package}.worker"),
            env={**self.service_env(svc), f"{svc.env_prefix}WORKER_METRICS_PORT": str(port)},
            cwd=self.config.repo_root,
            ready=port_ready(port),
        )

    def worker_specs(self) -> list[ProcessSpec]:
        """Background processes started after the services: outbox relays, event consumers,
        Celery worker and beat. Each is one entry, e.g.

            ProcessSpec("task-worker", self.python("-m", "task_svc.worker"),
                        env=self.service_env(service("task-svc")), cwd=self.config.repo_root),
            ProcessSpec("notify-celery",
                        self.python("-m", "celery", "-A", "notify_svc.celery_app", "worker"),
                        env=self.service_env(service("notify-svc"))),

        `ready` is optional: without it a process counts as started when it is running.
        """
        return [self.events_spec(svc) for svc in SERVICES] + self.celery_specs()

    def celery_specs(self) -> list[ProcessSpec]:
        """notify-svc's Celery worker (webhook attempts) and beat (re-drive, pruning, gauges)."""
        notify = service("notify-svc")
        env = self.service_env(notify)
        beat_schedule = self.config.run_dir / "celerybeat-schedule"
        celery = ("-m", "celery", "-A", "notify_svc.celery_app")
        port = self.config.celery_metrics_port
        return [
            ProcessSpec(
                "notify-celery",
                self.python(*celery, "worker", "--loglevel", "INFO", "--without-gossip",
                            "--without-mingle", "--hostname", "notify@%h"),
                env={**env, f"{notify.env_prefix}CELERY_METRICS_PORT": str(port)},
                cwd=self.config.repo_root,
                # Its /metrics opens when the worker is ready to take tasks.
                ready=port_ready(port),
            ),
            ProcessSpec(
                "notify-beat",
                self.python(*celery, "beat", "--loglevel", "INFO", "--schedule",
                            str(beat_schedule)),
                env=env,
                cwd=self.config.repo_root,
            ),
        ]  # fmt: skip

    def gateway_spec(self) -> ProcessSpec:
        nginx = nginx_binary()
        if nginx is None:
            raise StackError(
                "nginx is not installed; install with: sudo apt-get install -y nginx-light"
            )
        conf = gateway.write_config(self.config)
        self._build_docs()
        argv = [nginx, "-p", str(self.config.nginx_dir), "-c", str(conf)]
        check = subprocess.run([*argv, "-t", "-q"], capture_output=True, text=True, check=False)
        if check.returncode != 0:
            raise StackError(f"the rendered gateway config ({conf}) is invalid:\n{check.stderr}")
        return ProcessSpec(
            "gateway", argv, ready=http_ready(f"http://127.0.0.1:{self.config.gateway_port}/health")
        )

    def _start_docs_build(self) -> None:
        """Start building the merged OpenAPI document and Swagger UI the gateway serves (in a
        subprocess: it imports every service's app). `_build_docs` waits for it."""
        if self._docs_build is not None:
            return
        out = self.config.nginx_dir / "docs"
        self.config.log_dir.mkdir(parents=True, exist_ok=True)
        with self._docs_log().open("w") as log:
            self._docs_build = subprocess.Popen(
                self.python("-m", "blueprint_stack", "docs", "--out", str(out)),
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.config.repo_root,
            )

    def _docs_log(self) -> Path:
        return self.config.log_dir / "api-docs.log"

    def _build_docs(self) -> None:
        self._start_docs_build()
        build, self._docs_build = self._docs_build, None
        assert build is not None
        try:
            code = build.wait(timeout=300)
        except subprocess.TimeoutExpired:
            build.kill()
            build.wait()
            raise StackError("building the API docs took more than 300s") from None
        if code != 0:
            output = self._docs_log().read_text(errors="replace").strip()
            raise StackError(f"building the API docs failed:\n{output[-2000:]}")

    def _abandon_docs_build(self) -> None:
        build, self._docs_build = self._docs_build, None
        if build is not None and build.poll() is None:
            build.kill()
            build.wait()

    # --- configuration the processes get ---------------------------------------------------
    def database_url(self, svc: ServiceDef) -> str:
        role = self._role(svc)
        return self.postgres.url_for(role, self._passwords[role], self.config.database)

    def service_env(self, svc: ServiceDef) -> dict[str, str]:
        """The environment of a service's processes (its HTTP server and its workers)."""
        cfg = self.config
        p = svc.env_prefix
        env = {
            f"{p}DATABASE_URL": self.database_url(svc),
            f"{p}REDIS_URL": self.redis.url,
            f"{p}JWT_PUBLIC_KEY_FILE": str(cfg.public_key_file),
            f"{p}JWT_ISSUER": DEV_ISSUER,
            f"{p}JWT_AUDIENCE": DEV_AUDIENCE,
            f"{p}SERVICE_TOKEN_PRIVATE_KEY_FILE": str(cfg.private_key_file),
            f"{p}LOG_LEVEL": cfg.log_level,
            f"{p}LOG_JSON": "true",
            f"{p}ENVIRONMENT": "local",
        }
        if svc.name == "notify-svc":
            # Webhooks to receivers on this machine, retried within seconds.
            env[f"{p}WEBHOOK_ALLOWED_NETWORKS"] = '["127.0.0.0/8", "::1/128"]'
            env[f"{p}WEBHOOK_RETRY_SCHEDULE_SECONDS"] = "[1, 2, 4]"
            env[f"{p}WEBHOOK_REDRIVE_INTERVAL_SECONDS"] = "2"
            # Mails go to the stack's SMTP sink (var/mail/), retried within seconds.
            env[f"{p}SMTP_HOST"] = "127.0.0.1"
            env[f"{p}SMTP_PORT"] = str(cfg.smtp_port)
            env[f"{p}PUBLIC_BASE_URL"] = cfg.gateway_url
            env[f"{p}NOTIFICATION_RETRY_SCHEDULE_SECONDS"] = "[1, 2]"
            # A worker killed mid-attempt gives its mail back within seconds.
            env[f"{p}SMTP_TIMEOUT_SECONDS"] = "5"
            env[f"{p}NOTIFICATION_CLAIM_SECONDS"] = "10"
        for other in SERVICES:
            env[f"{p}{other.env_prefix}URL"] = cfg.service_url(other.name)
        return env

    def _role(self, svc: ServiceDef) -> str:
        role: str = importlib.import_module(svc.package).ROLE
        return role

    def _schema(self, svc: ServiceDef) -> str:
        schema: str = importlib.import_module(svc.package).SCHEMA
        return schema

    def _service_dir(self, svc: ServiceDef) -> Path:
        service_dir: Path = importlib.import_module(svc.package).SERVICE_DIR
        return service_dir

    def _load_passwords(self) -> dict[str, str]:
        """Stable dev passwords for the service roles: generated once, kept under var/."""
        path = self.config.passwords_file
        passwords: dict[str, str] = {}
        if path.exists():
            passwords = json.loads(path.read_text())
        changed = False
        for svc in SERVICES:
            role = self._role(svc)
            if role not in passwords:
                passwords[role] = secrets.token_urlsafe(24)
                changed = True
        if changed:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as fh:
                json.dump(passwords, fh, indent=2)
        return passwords

    # --- database ------------------------------------------------------------------------
    def _provision(self) -> None:
        schemas = [
            ServiceSchema(
                role=self._role(s), schema=self._schema(s), password=self._passwords[self._role(s)]
            )
            for s in SERVICES
        ]
        _run_coroutine(provision(self.postgres.admin_dsn, self.config.database, schemas))

    def _migrate(self) -> None:
        """Each service's migrations, as one-shot processes (all four at once)."""
        runs = []
        for svc in SERVICES:
            spec = ProcessSpec(
                f"migrate-{svc.short}",
                self.python(
                    "-m",
                    "servicekit.migrations",
                    "upgrade",
                    "--service-dir",
                    str(self._service_dir(svc)),
                    "--database-url",
                    self.database_url(svc),
                ),
                cwd=self.config.repo_root,
            )
            proc = ManagedProcess(
                spec, self.config.log_dir, self.console, run_dir=self.config.run_dir
            )
            proc.start()
            runs.append((svc, proc))
        failed = []
        for svc, proc in runs:
            try:
                code = proc.wait_exit(300)
            except subprocess.TimeoutExpired:
                proc.stop()
                code = -1
            proc.stop()  # already exited: this removes its pid file
            if code != 0:
                failed.append(f"{svc.name} (exit {code}):\n{proc.log_tail(2000)}")
        if failed:
            raise StackError("migrations failed for " + "\n".join(failed))
        self.console.say("migrations are up to date for " + ", ".join(s.name for s in SERVICES))

    # --- what to tell the person who started it -------------------------------------------
    def summary(self) -> str:
        cfg = self.config
        gw = cfg.gateway_url
        lines = [
            "Blueprint is running.",
            f"  gateway       {gw}   (health: {gw}/health, {gw}/health/<template|task|qc|notify>)",
            f"  API docs      {gw}/docs/ and {gw}/redoc   (OpenAPI: {gw}/openapi.json)",
        ]
        for svc in SERVICES:
            url = cfg.service_url(svc.name)
            lines.append(f"  {svc.name:<13} {url}   (docs {url}/docs, metrics {url}/metrics)")
        events = ", ".join(
            f"http://127.0.0.1:{cfg.events_metrics_ports[s.name]}/metrics" for s in SERVICES
        )
        lines.append(f"  events        relay and consumer metrics: {events}")
        lines.append(
            "  celery        notify-celery (webhook and e-mail attempts; metrics "
            f"http://127.0.0.1:{cfg.celery_metrics_port}/metrics) and notify-beat (re-drive, "
            f"reminders, pruning); logs {cfg.log_dir}/notify-celery.log"
        )
        lines.append(
            f"  mail          SMTP sink on 127.0.0.1:{cfg.smtp_port}; every mail notify-svc "
            f"sends is an .eml file in {cfg.mail_dir}/"
        )
        if self.obs is not None:
            lines += observability.summary_lines(self.obs)
        lines += [
            f"  PostgreSQL    127.0.0.1:{cfg.postgres_port} database {cfg.database}   (psql -h "
            f"{self.postgres.socket_dir} -p {cfg.postgres_port} -U postgres {cfg.database})",
            f"  Redis         {self.redis.url}",
            f"  logs          {cfg.log_dir}/<process>.log, gateway access log "
            f"{cfg.nginx_dir}/logs/access.log",
            "A token:       make token ROLES=planner,operator",
            "               (uv run python -m blueprint_stack token --roles planner,operator)",
            "Restarts:      "
            + (
                cfg.restart_policy.describe()
                if cfg.restart_policy is not None
                else "off (--no-restart): a crashed process stops the stack"
            ),
            f"Ctrl-C stops everything (in a script: kill -TERM {os.getpid()}).",
        ]
        return "\n".join(lines)


def ensure_port_free_for(config: StackConfig, name: str) -> None:
    """Refuse to start process `name` again while something else holds one of its ports."""
    for setting in config.ports():
        if setting.process == name:
            ensure_port_free(setting.port, setting.what)


def service(name: str) -> ServiceDef:
    for svc in SERVICES:
        if svc.name == name:
            return svc
    raise KeyError(name)


def _run_coroutine(coro: Coroutine[Any, Any, None]) -> None:
    """asyncio.run in a thread of its own, so callers may already be inside an event loop."""
    errors: list[BaseException] = []

    def work() -> None:
        try:
            asyncio.run(coro)
        except BaseException as exc:  # re-raised in the caller's thread
            errors.append(exc)

    thread = threading.Thread(target=work, name="provision")
    thread.start()
    thread.join()
    if errors:
        raise errors[0]
