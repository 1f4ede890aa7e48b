"""What the stack runs on: its var directory, ports and gateway limits.

Every value has a default, an environment variable (`BLUEPRINT_...`) and a CLI flag; tests build
a config directly with a temporary var directory and free ports.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from blueprint_stack.supervisor import RestartPolicy
from servicekit.devstack import free_port

# infra/src/blueprint_stack/config.py -> the repository root
REPO_ROOT = Path(__file__).resolve().parents[3]


@dataclass(frozen=True)
class ServiceDef:
    """One of the platform's HTTP services."""

    name: str  # process and log name, e.g. "task-svc"
    package: str  # e.g. "task_svc"
    short: str  # the gateway's /health/<short>
    default_port: int

    @property
    def env_prefix(self) -> str:
        return self.package.upper() + "_"

    @property
    def port_env(self) -> str:
        return f"BLUEPRINT_{self.env_prefix}PORT"

    @property
    def events_name(self) -> str:
        """Its `<service>-events` process (outbox relay and event consumer)."""
        return f"{self.name}-events"

    @property
    def default_events_port(self) -> int:
        return self.default_port + 100

    @property
    def events_port_env(self) -> str:
        return f"BLUEPRINT_{self.env_prefix}EVENTS_PORT"


SERVICES: tuple[ServiceDef, ...] = (
    ServiceDef("template-svc", "template_svc", "template", 8101),
    ServiceDef("task-svc", "task_svc", "task", 8102),
    ServiceDef("qc-svc", "qc_svc", "qc", 8103),
    ServiceDef("notify-svc", "notify_svc", "notify", 8104),
)


def _default_service_ports() -> dict[str, int]:
    return {svc.name: svc.default_port for svc in SERVICES}


def _default_events_metrics_ports() -> dict[str, int]:
    return {svc.name: svc.default_events_port for svc in SERVICES}


@dataclass(frozen=True)
class PortSetting:
    """One port the stack listens on, and how the person running it moves it."""

    port: int
    what: str  # e.g. "PostgreSQL", "task-svc", "task-svc-events metrics"
    flag: str  # the `run` flag, e.g. "--postgres-port"
    env: str  # the environment variable, e.g. "BLUEPRINT_POSTGRES_PORT"
    process: str  # the process that listens on it, e.g. "postgres"


@dataclass(frozen=True)
class StackConfig:
    var_dir: Path = REPO_ROOT / "var"
    repo_root: Path = REPO_ROOT
    postgres_port: int = 55432
    redis_port: int = 56379
    gateway_port: int = 8080
    # The SMTP sink notify-svc sends its mails to; they land in var/mail/ as .eml files.
    smtp_port: int = 8025
    gateway_host: str = "127.0.0.1"
    service_ports: Mapping[str, int] = field(default_factory=_default_service_ports)
    # Each `<service>-events` process serves its relay and consumer metrics here.
    events_metrics_ports: Mapping[str, int] = field(default_factory=_default_events_metrics_ports)
    # notify-svc's Celery worker serves its /metrics (webhook attempts, task outcomes) here.
    celery_metrics_port: int = 8205
    database: str = "blueprint"
    # Gateway limits.
    write_rate: str = "20r/s"
    write_burst: int = 40
    client_max_body_size: str = "1m"
    template_max_body_size: str = "17m"
    log_level: str = "INFO"
    # HTTP worker processes per service (one per core); each service's outbox relay and event
    # consumer run in one process of their own, `<service>-events`, so a service has exactly one
    # consumer and handles an aggregate's events in order.
    service_workers: int = field(default_factory=lambda: os.cpu_count() or 1)
    # Copy every process's output to the console with a `name | ` prefix.
    echo: bool = True
    # Install missing PostgreSQL / Redis / nginx with apt-get (only possible as root).
    install_missing: bool = True
    ready_timeout: float = 60.0
    # A process that crashes is started again with backoff; None: a crash stops the stack.
    restart_policy: RestartPolicy | None = field(default_factory=RestartPolicy)

    # --- derived paths -----------------------------------------------------------------
    @property
    def metrics_dir(self) -> Path:
        """Where the HTTP workers of each service share their Prometheus metrics."""
        return self.var_dir / "metrics"

    @property
    def run_dir(self) -> Path:
        """The runner's lock and one pid file per process it started."""
        return self.var_dir / "run"

    @property
    def pg_dir(self) -> Path:
        return self.var_dir / "pg"

    @property
    def redis_dir(self) -> Path:
        return self.var_dir / "redis"

    @property
    def log_dir(self) -> Path:
        return self.var_dir / "log"

    @property
    def keys_dir(self) -> Path:
        return self.var_dir / "keys"

    @property
    def private_key_file(self) -> Path:
        return self.keys_dir / "private.pem"

    @property
    def public_key_file(self) -> Path:
        return self.keys_dir / "public.pem"

    @property
    def mail_dir(self) -> Path:
        """Where the SMTP sink keeps every mail it receives (.eml files)."""
        return self.var_dir / "mail"

    @property
    def nginx_dir(self) -> Path:
        return self.var_dir / "nginx"

    @property
    def passwords_file(self) -> Path:
        return self.var_dir / "secrets" / "db-passwords.json"

    @property
    def gateway_template(self) -> Path:
        return self.repo_root / "gateway" / "nginx.conf.template"

    def service_port(self, name: str) -> int:
        return self.service_ports[name]

    def service_url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.service_port(name)}"

    @property
    def gateway_url(self) -> str:
        host = "localhost" if self.gateway_host in ("127.0.0.1", "0.0.0.0") else self.gateway_host
        return f"http://{host}:{self.gateway_port}"

    def ports(self) -> list[PortSetting]:
        """Every port the stack listens on: what it is for, and its flag and variable.

        The one list of ports: the runner checks them before starting anything, the CLI names
        their flags when one is taken, and tests pass all of them (`run_args`), so none of them
        can be left on its default by accident.
        """
        return [
            PortSetting(
                self.postgres_port, "PostgreSQL", "--postgres-port", "BLUEPRINT_POSTGRES_PORT",
                "postgres",
            ),
            PortSetting(
                self.redis_port, "Redis", "--redis-port", "BLUEPRINT_REDIS_PORT", "redis"
            ),
            *(
                PortSetting(
                    self.service_port(s.name), s.name, f"--{s.short}-port", s.port_env, s.name
                )
                for s in SERVICES
            ),
            *(
                PortSetting(
                    self.events_metrics_ports[s.name],
                    f"{s.events_name} metrics",
                    f"--{s.short}-events-port",
                    s.events_port_env,
                    s.events_name,
                )
                for s in SERVICES
            ),
            PortSetting(
                self.celery_metrics_port, "notify-celery metrics", "--celery-metrics-port",
                "BLUEPRINT_CELERY_METRICS_PORT", "notify-celery",
            ),
            PortSetting(
                self.gateway_port, "the gateway", "--gateway-port", "BLUEPRINT_GATEWAY_PORT",
                "gateway",
            ),
            PortSetting(
                self.smtp_port, "the SMTP sink", "--smtp-port", "BLUEPRINT_SMTP_PORT",
                "smtp-sink",
            ),
        ]  # fmt: skip

    def run_args(self) -> list[str]:
        """`run` flags that put every port of this config in place (e.g. for a test stack)."""
        args = ["--var-dir", str(self.var_dir)]
        for setting in self.ports():
            args += [setting.flag, str(setting.port)]
        return args

    # --- construction ------------------------------------------------------------------
    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> StackConfig:
        """Defaults overridden by `BLUEPRINT_*` environment variables."""
        env = os.environ if env is None else env
        cfg = cls()
        changes: dict[str, object] = {}
        if "BLUEPRINT_VAR_DIR" in env:
            changes["var_dir"] = Path(env["BLUEPRINT_VAR_DIR"]).resolve()
        for key, attr in (
            ("BLUEPRINT_POSTGRES_PORT", "postgres_port"),
            ("BLUEPRINT_REDIS_PORT", "redis_port"),
            ("BLUEPRINT_GATEWAY_PORT", "gateway_port"),
            ("BLUEPRINT_CELERY_METRICS_PORT", "celery_metrics_port"),
            ("BLUEPRINT_SMTP_PORT", "smtp_port"),
            ("BLUEPRINT_WRITE_BURST", "write_burst"),
            ("BLUEPRINT_SERVICE_WORKERS", "service_workers"),
        ):
            if key in env:
                changes[attr] = _int(key, env[key])
        for key, attr in (
            ("BLUEPRINT_GATEWAY_HOST", "gateway_host"),
            ("BLUEPRINT_WRITE_RATE", "write_rate"),
            ("BLUEPRINT_CLIENT_MAX_BODY_SIZE", "client_max_body_size"),
            ("BLUEPRINT_LOG_LEVEL", "log_level"),
        ):
            if key in env:
                changes[attr] = env[key]
        ports = dict(cfg.service_ports)
        events_ports = dict(cfg.events_metrics_ports)
        for svc in SERVICES:
            if svc.port_env in env:
                ports[svc.name] = _int(svc.port_env, env[svc.port_env])
            if svc.events_port_env in env:
                events_ports[svc.name] = _int(svc.events_port_env, env[svc.events_port_env])
        changes["service_ports"] = ports
        changes["events_metrics_ports"] = events_ports
        return replace(cfg, **changes)  # type: ignore[arg-type]

    @classmethod
    def for_tests(cls, var_dir: Path, **overrides: object) -> StackConfig:
        """A stack in `var_dir` on free ports, quiet on the console, installing nothing."""
        ports = _distinct_free_ports(5 + 2 * len(SERVICES))
        values: dict[str, object] = {
            "var_dir": Path(var_dir).resolve(),
            "postgres_port": ports[0],
            "redis_port": ports[1],
            "gateway_port": ports[2],
            "service_ports": {
                svc.name: port
                for svc, port in zip(SERVICES, ports[3 : 3 + len(SERVICES)], strict=True)
            },
            "events_metrics_ports": {
                svc.name: port
                for svc, port in zip(SERVICES, ports[3 + len(SERVICES) : -2], strict=True)
            },
            "celery_metrics_port": ports[-2],
            "smtp_port": ports[-1],
            "echo": False,
            "install_missing": False,
            # A test machine running other suites beside this one can take minutes to start
            # every process at once; a process that dies while starting still fails at once.
            "ready_timeout": 180.0,
        }
        values.update(overrides)
        return cls(**values)  # type: ignore[arg-type]


def _distinct_free_ports(count: int) -> list[int]:
    ports: list[int] = []
    while len(ports) < count:
        port = free_port()
        if port not in ports:
            ports.append(port)
    return ports


def _int(key: str, raw: str) -> int:
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"{key} must be a port number, not {raw!r}") from None
