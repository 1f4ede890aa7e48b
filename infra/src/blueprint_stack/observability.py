"""`make run OBS=1`: Prometheus, Alertmanager and the gateway's exporter beside the local stack.

Prometheus (Debian's `prometheus`) scrapes every process of the stack: each service's HTTP
workers, each `<service>-events` process, the gateway through `prometheus-nginx-exporter`
(reading the gateway's stub_status) and through `gateway-log-exporter` (request durations and
statuses read from its JSON access log, blueprint_stack.gateway_exporter), Alertmanager and
itself. It loads the same rule files as the compose stack (infra/prometheus/rules/*.yml) and
sends its alerts to Alertmanager (Debian's `prometheus-alertmanager`). Everything lives under
var/obs/.

Tests shorten the scrape and rule intervals and every rule's `for` (`ObsConfig.for_tests`), so an
alert can fire within a test; the rule files themselves are never changed.
"""

from __future__ import annotations

import re
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from blueprint_stack.config import SERVICES, StackConfig
from blueprint_stack.supervisor import ProcessSpec, StackError, http_ready
from servicekit.devstack import free_port

# apt package -> the binary it installs.
PACKAGES: dict[str, str] = {
    "prometheus": "prometheus",
    "prometheus-alertmanager": "prometheus-alertmanager",
    "prometheus-nginx-exporter": "prometheus-nginx-exporter",
}
STUB_STATUS_PATH = "/_gateway/stub_status"


@dataclass(frozen=True)
class ObsConfig:
    prometheus_port: int = 9090
    alertmanager_port: int = 9093
    nginx_exporter_port: int = 9113
    gateway_log_exporter_port: int = 9114
    scrape_interval: str = "15s"
    evaluation_interval: str = "15s"
    # Replaces every rule's `for` (tests: an alert fires within seconds); None keeps the files'.
    rule_for: str | None = None
    # Alertmanager's group_wait: how long it holds a new alert group before notifying.
    group_wait: str = "30s"

    @classmethod
    def for_tests(cls) -> ObsConfig:
        ports: list[int] = []
        while len(ports) < 4:
            port = free_port()
            if port not in ports:
                ports.append(port)
        return cls(
            prometheus_port=ports[0],
            alertmanager_port=ports[1],
            nginx_exporter_port=ports[2],
            gateway_log_exporter_port=ports[3],
            # A busy test machine can take over a second to answer a scrape of a service with
            # several workers (scrape_timeout cannot exceed the interval).
            scrape_interval="2s",
            evaluation_interval="1s",
            rule_for="3s",
            group_wait="1s",
        )

    def ports(self) -> list[tuple[int, str, str]]:
        """(port, what it is for, the `run` flag that moves it)."""
        return [
            (self.prometheus_port, "Prometheus", "--prometheus-port"),
            (self.alertmanager_port, "Alertmanager", "--alertmanager-port"),
            (self.nginx_exporter_port, "the gateway's metrics exporter", "--gateway-exporter-port"),
            (
                self.gateway_log_exporter_port,
                "the gateway's access log exporter",
                "--gateway-log-exporter-port",
            ),
        ]

    @property
    def prometheus_url(self) -> str:
        return f"http://127.0.0.1:{self.prometheus_port}"

    @property
    def alertmanager_url(self) -> str:
        return f"http://127.0.0.1:{self.alertmanager_port}"


def missing_packages() -> list[str]:
    return [pkg for pkg, binary in PACKAGES.items() if shutil.which(binary) is None]


def obs_dir(config: StackConfig) -> Path:
    return config.var_dir / "obs"


def rules_dir(config: StackConfig) -> Path:
    return config.repo_root / "infra" / "prometheus" / "rules"


def scrape_targets(config: StackConfig, obs: ObsConfig) -> dict[str, str]:
    """job -> host:port for every process of the stack that serves /metrics."""
    targets: dict[str, str] = {}
    for svc in SERVICES:
        targets[svc.name] = f"127.0.0.1:{config.service_port(svc.name)}"
        targets[svc.events_name] = f"127.0.0.1:{config.events_metrics_ports[svc.name]}"
    targets["notify-celery"] = f"127.0.0.1:{config.celery_metrics_port}"
    targets["gateway"] = f"127.0.0.1:{obs.nginx_exporter_port}"
    targets["gateway-log"] = f"127.0.0.1:{obs.gateway_log_exporter_port}"
    targets["alertmanager"] = f"127.0.0.1:{obs.alertmanager_port}"
    targets["prometheus"] = f"127.0.0.1:{obs.prometheus_port}"
    return targets


def prometheus_config(
    config: StackConfig, obs: ObsConfig, rule_files: list[Path]
) -> dict[str, Any]:
    alertmanager = {"static_configs": [{"targets": [f"127.0.0.1:{obs.alertmanager_port}"]}]}
    return {
        "global": {
            "scrape_interval": obs.scrape_interval,
            "evaluation_interval": obs.evaluation_interval,
            "external_labels": {"platform": "blueprint"},
        },
        "rule_files": [str(p) for p in rule_files],
        "alerting": {"alertmanagers": [alertmanager]},
        "scrape_configs": [
            {"job_name": job, "static_configs": [{"targets": [target]}]}
            for job, target in scrape_targets(config, obs).items()
        ],
    }


def alertmanager_config(obs: ObsConfig) -> dict[str, Any]:
    """One receiver that notifies nobody: alerts are read in Alertmanager's UI and API."""
    return {
        "route": {
            "receiver": "local",
            "group_by": ["alertname", "service"],
            "group_wait": obs.group_wait,
            "group_interval": "1m",
            "repeat_interval": "4h",
        },
        "receivers": [{"name": "local"}],
    }


_FOR = re.compile(r"^(\s*)for:\s*\S+\s*$", re.MULTILINE)


def write_rule_files(config: StackConfig, obs: ObsConfig) -> list[Path]:
    """The rule files Prometheus loads: the repository's own, or copies with a short `for`."""
    sources = sorted(rules_dir(config).glob("*.yml"))
    if obs.rule_for is None:
        return sources
    out = obs_dir(config) / "rules"
    out.mkdir(parents=True, exist_ok=True)
    copies = []
    for src in sources:
        target = out / src.name
        target.write_text(_FOR.sub(lambda m: f"{m.group(1)}for: {obs.rule_for}", src.read_text()))
        copies.append(target)
    return copies


def write_configs(config: StackConfig, obs: ObsConfig) -> tuple[Path, Path]:
    base = obs_dir(config)
    base.mkdir(parents=True, exist_ok=True)
    prom = base / "prometheus.yml"
    prom.write_text(yaml.safe_dump(prometheus_config(config, obs, write_rule_files(config, obs))))
    am = base / "alertmanager.yml"
    am.write_text(yaml.safe_dump(alertmanager_config(obs)))
    return prom, am


def process_specs(config: StackConfig, obs: ObsConfig) -> list[ProcessSpec]:
    """The gateway's exporters, Alertmanager and Prometheus, each ready when its HTTP endpoint
    answers."""
    missing = missing_packages()
    if missing:
        raise StackError(
            f"OBS=1 needs {', '.join(missing)}; install with: sudo apt-get install -y "
            f"{' '.join(missing)} (or `make setup OBS=1`)"
        )
    prom_conf, am_conf = write_configs(config, obs)
    base = obs_dir(config)
    gateway = f"http://127.0.0.1:{config.gateway_port}{STUB_STATUS_PATH}"
    log_exporter = [
        sys.executable, "-m", "blueprint_stack.gateway_exporter",
        "--access-log", str(config.nginx_dir / "logs" / "access.log"),
        "--nginx-conf", str(config.nginx_dir / "nginx.conf"),
        "--port", str(obs.gateway_log_exporter_port),
    ]  # fmt: skip
    return [
        ProcessSpec(
            "gateway-exporter",
            [
                "prometheus-nginx-exporter",
                f"-nginx.scrape-uri={gateway}",
                f"-web.listen-address=127.0.0.1:{obs.nginx_exporter_port}",
            ],
            ready=http_ready(f"http://127.0.0.1:{obs.nginx_exporter_port}/metrics"),
        ),
        ProcessSpec(
            "gateway-log-exporter",
            log_exporter,
            cwd=config.repo_root,
            ready=http_ready(f"http://127.0.0.1:{obs.gateway_log_exporter_port}/metrics"),
        ),
        ProcessSpec(
            "alertmanager",
            [
                "prometheus-alertmanager",
                f"--config.file={am_conf}",
                f"--storage.path={base / 'alertmanager'}",
                f"--web.listen-address=127.0.0.1:{obs.alertmanager_port}",
                "--cluster.listen-address=",
            ],
            ready=http_ready(f"{obs.alertmanager_url}/-/ready"),
        ),
        ProcessSpec(
            "prometheus",
            [
                "prometheus",
                f"--config.file={prom_conf}",
                f"--storage.tsdb.path={base / 'prometheus'}",
                f"--web.listen-address=127.0.0.1:{obs.prometheus_port}",
                "--storage.tsdb.retention.time=7d",
            ],
            ready=http_ready(f"{obs.prometheus_url}/-/ready"),
        ),
    ]


def summary_lines(obs: ObsConfig) -> list[str]:
    return [
        f"  Prometheus    {obs.prometheus_url}   (targets: {obs.prometheus_url}/targets, "
        f"alerts: {obs.prometheus_url}/alerts)",
        f"  Alertmanager  {obs.alertmanager_url}",
        f"  gateway       metrics http://127.0.0.1:{obs.nginx_exporter_port}/metrics "
        "(prometheus-nginx-exporter)",
        f"                request durations http://127.0.0.1:{obs.gateway_log_exporter_port}"
        "/metrics (gateway-log-exporter, from the access log)",
    ]
