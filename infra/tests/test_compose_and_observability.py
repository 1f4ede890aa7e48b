"""The compose stack and the observability configs agree with each other and with the code.

- docker-compose.yml is valid for the Compose this machine has: `docker compose` (v2) when the
  Docker CLI has it, else `docker-compose` (1.29 is what Debian 12 packages);
- every metric a Grafana dashboard or a Prometheus rule queries is one the services export,
  taken from prometheus_client's registry after importing the services, never from a list;
- the YAML and JSON configs parse, rules are well formed, every service is scraped, dashboards
  use provisioned datasources, images copy files that exist;
- promtool's checks and rule unit tests: test_prometheus_rules.py.
"""

from __future__ import annotations

import fnmatch
import importlib
import importlib.util
import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from blueprint_stack import StackConfig
from blueprint_stack.gateway import SERVICE_KEEP_ALIVE_SECONDS, render
from blueprint_stack.gateway_exporter import GatewayMetrics, Routes, parse_args
from blueprint_stack.observability import ObsConfig, scrape_targets

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"
COMPOSE_FILE = ROOT / "docker-compose.yml"
PROMETHEUS_CONFIG = INFRA / "prometheus" / "prometheus.yml"
RULE_FILES = sorted((INFRA / "prometheus" / "rules").glob("*.yml"))
DASHBOARDS = sorted((INFRA / "grafana" / "dashboards").glob("*.json"))
DATASOURCES = INFRA / "grafana" / "provisioning" / "datasources" / "datasources.yml"
ALLOY_CONFIG = INFRA / "alloy" / "config.alloy"
GATEWAY_TEMPLATE = ROOT / "gateway" / "nginx.conf.template"

SERVICES = ("template-svc", "task-svc", "qc-svc", "notify-svc")
# The four services' images are built from one Dockerfile with `--build-arg SERVICE=<service>`.
SERVICE_DOCKERFILE_PATH = "infra/compose/service.Dockerfile"
SERVICE_DOCKERFILE = ROOT / SERVICE_DOCKERFILE_PATH

# Modules whose import registers every metric the services export. A module that defines new
# metrics must be reachable from one of these (a service's main imports its routers).
METRIC_MODULES = ("servicekit.metrics", *(f"{s.replace('-', '_')}.main" for s in SERVICES))
# Imported as well when they exist: processes that are not the HTTP app.
OPTIONAL_METRIC_MODULES = ("notify_svc.celery_app",)
# prometheus_client's default process and platform collectors, the gateway's exporter
# (prometheus-nginx-exporter, reading nginx's stub_status), and Prometheus's own `up`.
ALLOWED_PREFIXES = ("process_", "python_", "nginx_")
ALLOWED_NAMES = frozenset({"up"})


# --- helpers ---------------------------------------------------------------------------------


def _load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def _config_files() -> list[Path]:
    files = [COMPOSE_FILE]
    for folder in ("prometheus", "grafana", "loki", "otel-collector"):
        for pattern in ("*.yml", "*.yaml", "*.json"):
            files.extend((INFRA / folder).rglob(pattern))
    return sorted(files)


def exported_series_names() -> set[str]:
    """Series names the services (and the gateway's log exporter) expose on /metrics, read from
    prometheus_client's registries."""
    from prometheus_client import REGISTRY

    for module in METRIC_MODULES:
        importlib.import_module(module)
    for module in OPTIONAL_METRIC_MODULES:
        if importlib.util.find_spec(module) is not None:
            importlib.import_module(module)

    # The gateway's access log exporter keeps its metrics in a registry of its own.
    gateway = GatewayMetrics(Routes.from_nginx_conf(GATEWAY_TEMPLATE.read_text())).registry
    names: set[str] = set()
    for family in [*REGISTRY.collect(), *gateway.collect()]:
        name = family.name
        if family.type == "counter":
            names.update({f"{name}_total", f"{name}_created"})
        elif family.type in ("histogram", "gaugehistogram"):
            names.update({f"{name}_bucket", f"{name}_sum", f"{name}_count", f"{name}_created"})
        elif family.type == "summary":
            names.update({name, f"{name}_sum", f"{name}_count", f"{name}_created"})
        elif family.type == "info":
            names.add(f"{name}_info")
        else:
            names.add(name)
    return names


_STRINGS = re.compile(r'"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])*\'|`[^`]*`')
_MATCHERS = re.compile(r"\{[^{}]*\}")
_RANGES = re.compile(r"\[[^\]]*\]")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_GRAFANA_VARS = re.compile(r"\$\{[^}]*\}|\$\w+")
_OFFSET = re.compile(r"\boffset\s+-?[\w$]+")
# An identifier that is not part of a number or a longer name, and is not a function call.
_IDENT = re.compile(r"(?<![\w.:])([a-zA-Z_:][a-zA-Z0-9_:]*)(?![\w:])(?!\s*\()")
_KEYWORDS = frozenset(
    {"and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right",
     "bool", "offset", "inf", "nan", "atan2"}
)  # fmt: skip


def promql_metric_names(expr: str) -> set[str]:
    """Metric names a PromQL expression selects (label names, functions, keywords left out)."""
    text = _STRINGS.sub('""', expr)
    text = _MATCHERS.sub("", text)
    text = _RANGES.sub("", text)
    text = _GROUPING.sub("", text)
    text = _GRAFANA_VARS.sub("", text)
    text = _OFFSET.sub("", text)
    return {m for m in _IDENT.findall(text) if m.lower() not in _KEYWORDS}


def grafana_variable_metric_names(query: str) -> set[str]:
    """Metric names in a Grafana Prometheus variable query (label_values, query_result, PromQL)."""
    query = query.strip()
    if query.startswith("label_values("):
        inner = _MATCHERS.sub("", _STRINGS.sub('""', query[len("label_values(") :]))
        args = inner.rstrip(") ").split(",")
        return promql_metric_names(args[0]) if len(args) > 1 else set()
    if query.startswith("query_result("):
        return promql_metric_names(query[len("query_result(") : -1])
    if query.startswith(("label_names(", "metrics(")):
        return set()
    return promql_metric_names(query)


def _panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        yield panel
        yield from _panels(panel.get("panels", []))


def _is_loki(datasource: Any) -> bool:
    if isinstance(datasource, dict):
        return datasource.get("type") == "loki" or datasource.get("uid") == "loki"
    return isinstance(datasource, str) and datasource.lower() == "loki"


def dashboard_promql(dashboard: dict[str, Any]) -> Iterator[tuple[str, str, set[str]]]:
    """(where, expression, metric names) for every Prometheus query in a dashboard."""
    for panel in _panels(dashboard.get("panels", [])):
        for target in panel.get("targets", []):
            datasource = target.get("datasource", panel.get("datasource"))
            if _is_loki(datasource) or not target.get("expr"):
                continue
            where = f"panel {panel.get('title')!r} ({target.get('refId')})"
            yield where, target["expr"], promql_metric_names(target["expr"])
    for variable in dashboard.get("templating", {}).get("list", []):
        if variable.get("type") != "query" or _is_loki(variable.get("datasource")):
            continue
        query = variable.get("query")
        query = query.get("query", "") if isinstance(query, dict) else query or ""
        where = f"variable ${variable.get('name')}"
        yield where, query, grafana_variable_metric_names(query)


def rule_promql() -> Iterator[tuple[str, str, set[str]]]:
    for path in RULE_FILES:
        for group in _load_yaml(path)["groups"]:
            for rule in group["rules"]:
                name = rule.get("alert") or rule.get("record")
                yield f"{path.name}: {name}", rule["expr"], promql_metric_names(rule["expr"])


def _compose() -> dict[str, Any]:
    data: dict[str, Any] = _load_yaml(COMPOSE_FILE)
    return data


# --- the compose file ------------------------------------------------------------------------


def _compose_command() -> list[str] | None:
    """`docker compose` (v2) when the Docker CLI has it, else `docker-compose`, as `make up`."""
    docker = shutil.which("docker")
    if docker is not None:
        probe = subprocess.run(
            [docker, "compose", "version"], capture_output=True, timeout=60, check=False
        )
        if probe.returncode == 0:
            return [docker, "compose"]
    legacy = shutil.which("docker-compose")
    return [legacy] if legacy is not None else None


def test_compose_config_is_valid_for_docker_compose() -> None:
    command = _compose_command()
    if command is None:
        pytest.skip("neither `docker compose` nor docker-compose is installed (make setup)")
    result = subprocess.run(
        [*command, "-f", str(COMPOSE_FILE), "config", "-q"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, f"`{' '.join(command)} config` failed:\n{result.stderr}"


def test_compose_starts_the_services_after_provisioning_and_the_gateway_after_the_services() -> (
    None
):
    services = _compose()["services"]
    for name in SERVICES:
        depends = services[name]["depends_on"]
        assert depends["provision"]["condition"] == "service_completed_successfully", name
        assert depends["postgres"]["condition"] == "service_healthy", name
        assert depends["redis"]["condition"] == "service_healthy", name
        assert services[name]["build"]["dockerfile"] == SERVICE_DOCKERFILE_PATH, name
        assert services[name]["build"]["args"] == {"SERVICE": name}, name
    # Celery's worker and beat run from the notify-svc image, built the same way.
    for name in ("notify-worker", "notify-beat"):
        assert services[name]["build"] == services["notify-svc"]["build"], name
        assert services[name]["image"] == services["notify-svc"]["image"], name
    gateway = services["gateway"]
    assert {n: d["condition"] for n, d in gateway["depends_on"].items()} == {
        n: "service_healthy" for n in (*SERVICES, "gateway-log-exporter")
    }
    assert any(str(p).split(":")[-1] == "8080" for p in gateway["ports"])
    assert "pg_stat_statements" in " ".join(services["postgres"]["command"])


def test_the_gateway_template_gets_every_variable_it_uses() -> None:
    if not GATEWAY_TEMPLATE.exists():
        pytest.skip("gateway/nginx.conf.template is not in the repository yet")
    gateway = _compose()["services"]["gateway"]
    used = set(re.findall(r"\$\{([A-Z][A-Z0-9_]*)\}", GATEWAY_TEMPLATE.read_text()))
    provided = set(gateway["environment"])
    assert used <= provided, f"set these in the gateway's environment: {sorted(used - provided)}"
    # The entrypoint substitutes only *_UPSTREAM and GATEWAY_* names (nginx's own $vars stay).
    unsubstituted = {v for v in used if not (v.endswith("_UPSTREAM") or v.startswith("GATEWAY_"))}
    assert not unsubstituted, f"rename to *_UPSTREAM or GATEWAY_*: {sorted(unsubstituted)}"


_UPSTREAM = re.compile(r"^ {4}upstream (\w+) \{(.*?)^ {4}\}", re.MULTILINE | re.DOTALL)
_UPSTREAM_IDLE = re.compile(r"^\s*keepalive_timeout (\d+)s;", re.MULTILINE)


def test_the_gateway_closes_an_idle_connection_to_a_service_before_the_service_does() -> None:
    # Otherwise a request can go onto a connection the service is closing: a POST gets a 502.
    upstreams = dict(_UPSTREAM.findall(GATEWAY_TEMPLATE.read_text()))
    assert set(upstreams) == {"template_svc", "task_svc", "qc_svc", "notify_svc"}
    for name, block in upstreams.items():
        idle = _UPSTREAM_IDLE.findall(block)
        assert len(idle) == 1, f"upstream {name}: one keepalive_timeout in seconds"
        assert int(idle[0]) < SERVICE_KEEP_ALIVE_SECONDS, name


_COMPOSE_DEFAULT = re.compile(r"\$\{[A-Z0-9_]+:?-([^}]*)\}")
_HTTP_ACCESS_LOG = re.compile(r"^ {4}access_log (\S+)(?: (\w+))?;", re.MULTILINE)
_SYSLOG_SERVER = re.compile(r"^syslog:server=([^:,]+):(\d+)(,.*)?$")


def _compose_gateway_config() -> str:
    """The template as the gateway container renders it: its compose environment (interpolated
    with the file's defaults) filled in, with the same contract as its envsubst."""
    environment = _compose()["services"]["gateway"]["environment"]
    values = {
        name: _COMPOSE_DEFAULT.sub(lambda m: m.group(1), str(value)).replace("$$", "$")
        for name, value in environment.items()
    }
    return render(GATEWAY_TEMPLATE.read_text(), values)


def test_the_gateway_sends_its_access_log_by_syslog_to_the_log_exporter() -> None:
    services = _compose()["services"]
    exporter = services["gateway-log-exporter"]
    command = exporter["command"]
    assert command[:3] == ["python", "-m", "blueprint_stack.gateway_exporter"]
    args = parse_args([str(word) for word in command[3:]])  # the exporter's own argparse
    assert args.syslog_udp is not None and args.access_log is None
    _, syslog_port = args.syslog_udp

    config = _compose_gateway_config()
    logs = _HTTP_ACCESS_LOG.findall(config)
    # Loki still gets every line from the container's stdout; the exporter gets a copy.
    assert ("/dev/stdout", "json") in logs
    syslog = [
        (_SYSLOG_SERVER.match(where), fmt) for where, fmt in logs if where.startswith("syslog:")
    ]
    assert len(syslog) == 1, logs
    server, fmt = syslog[0]
    assert server is not None, logs
    assert (server.group(1), int(server.group(2))) == ("gateway-log-exporter", syslog_port)
    assert fmt == "json" and re.search(r"^\s*log_format json ", config, re.MULTILINE)
    assert not re.search(r"^\s*access_log off;", config.split("server {")[0], re.MULTILINE)

    # It reads the routes from the template its image copies, the gateway's own.
    dockerfile = ROOT / exporter["build"]["dockerfile"]
    assert f"COPY gateway/nginx.conf.template {args.nginx_conf}" in dockerfile.read_text()
    assert "gateway-log-exporter" in services["gateway"]["depends_on"]


def test_prometheus_scrapes_the_log_exporter_under_the_local_stack_job_name() -> None:
    services = _compose()["services"]
    args = parse_args([str(word) for word in services["gateway-log-exporter"]["command"][3:]])
    config = _load_yaml(PROMETHEUS_CONFIG)
    jobs = {
        target: job["job_name"]
        for job in config["scrape_configs"]
        for static in job.get("static_configs", [])
        for target in static["targets"]
    }
    # The rules and dashboards see the same `job` on both: the local stack's exporter job.
    obs = ObsConfig()
    local = scrape_targets(StackConfig(), obs)
    local_job = next(
        job for job, t in local.items() if t.endswith(f":{obs.gateway_log_exporter_port}")
    )
    assert jobs.get(f"gateway-log-exporter:{args.port}") == local_job == "gateway-log"


# --- images ----------------------------------------------------------------------------------


def _dockerignore_patterns() -> list[str]:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    return [ln.strip() for ln in lines if ln.strip() and not ln.startswith("#")]


def _is_ignored(rel: str, patterns: list[str]) -> bool:
    parts = rel.strip("/").split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    for pattern in patterns:
        anywhere = pattern.startswith("**/")
        pat = pattern.removeprefix("**/")
        candidates = prefixes
        if anywhere:
            candidates = [
                "/".join(parts[i : j + 1]) for i in range(len(parts)) for j in range(i, len(parts))
            ]
        if any(fnmatch.fnmatchcase(c, pat) for c in candidates):
            return True
    return False


def _image_builds() -> list[tuple[Path, dict[str, str]]]:
    """Every image's Dockerfile with the build arguments compose passes to it."""
    return [(SERVICE_DOCKERFILE, {"SERVICE": s}) for s in SERVICES] + [
        (INFRA / "compose" / "provision.Dockerfile", {}),
        (INFRA / "compose" / "gateway-log-exporter.Dockerfile", {}),
    ]


_DOCKERFILE_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)")


def _expand_build_args(word: str, args: dict[str, str]) -> str:
    def value(m: re.Match[str]) -> str:
        name = m.group(1) or m.group(2)
        assert name in args, f"{word} uses ${name}, which is not a build argument here"
        return args[name]

    return _DOCKERFILE_VARIABLE.sub(value, word)


@pytest.mark.parametrize(
    ("dockerfile", "build_args"),
    _image_builds(),
    ids=lambda v: str(v.relative_to(ROOT)) if isinstance(v, Path) else ",".join(v.values()),
)
def test_images_copy_only_files_that_exist_and_are_sent_to_the_builder(
    dockerfile: Path, build_args: dict[str, str]
) -> None:
    patterns = _dockerignore_patterns()
    sources = []
    for line in dockerfile.read_text().splitlines():
        words = line.split()
        if words[:1] == ["COPY"] and not any(w.startswith("--from") for w in words):
            sources.extend(
                _expand_build_args(w, build_args) for w in words[1:-1] if not w.startswith("--")
            )
    assert sources
    for source in sources:
        assert (ROOT / source).exists(), f"{dockerfile.name} copies {source}, which does not exist"
        assert not _is_ignored(source, patterns), f"{source} is excluded by .dockerignore"


def test_service_image_installs_from_the_lock_and_runs_unprivileged() -> None:
    text = SERVICE_DOCKERFILE.read_text()
    lines = text.splitlines()
    # The argument is declared in both stages (a build argument is scoped to its stage) and the
    # final one keeps it in the environment, for the start command.
    stages = re.split(r"^FROM ", text, flags=re.MULTILINE)[1:]
    assert len(stages) == 2
    assert all(re.search(r"^ARG SERVICE$", stage, re.MULTILINE) for stage in stages)
    assert re.search(r"^\s+SERVICE=\$\{SERVICE\}$", stages[1], re.MULTILINE)
    assert text.count('uv sync --frozen --no-dev --package "${SERVICE}"') == 2
    assert "COPY ${SERVICE}/ ${SERVICE}/" in lines
    assert re.search(r"^USER app$", text, re.MULTILINE)
    assert "HEALTHCHECK" in text and "/healthz" in text
    assert "--build-arg SERVICE=task-svc" in text


@pytest.mark.parametrize("service", SERVICES)
def test_service_image_starts_the_service_app_as_pid_1(service: str, tmp_path: Path) -> None:
    """The exec-form CMD runs sh with SERVICE from the image's environment; sh replaces itself
    with uvicorn (`exec`), so uvicorn is PID 1 and gets SIGTERM. Run here with an `uvicorn` that
    prints its process id and arguments."""
    if shutil.which("sh") is None:
        pytest.skip("no sh")
    cmd_lines = [ln for ln in SERVICE_DOCKERFILE.read_text().splitlines() if ln.startswith("CMD ")]
    assert len(cmd_lines) == 1
    cmd = json.loads(cmd_lines[0].removeprefix("CMD "))
    assert cmd[:2] == ["sh", "-c"] and cmd[2].startswith("exec uvicorn ")
    assert len(cmd) == 3
    uvicorn = tmp_path / "uvicorn"
    uvicorn.write_text('#!/bin/sh\necho "$$"; for arg in "$@"; do echo "$arg"; done\n')
    uvicorn.chmod(0o755)
    path = f"{tmp_path}:/usr/local/bin:/usr/bin:/bin"
    process = subprocess.Popen(
        cmd, env={"PATH": path, "SERVICE": service}, stdout=subprocess.PIPE, text=True
    )
    out, _ = process.communicate(timeout=30)
    assert process.returncode == 0
    pid, *argv = out.splitlines()
    assert int(pid) == process.pid, "uvicorn must replace the shell, not run as its child"
    package = service.replace("-", "_")
    assert argv == [
        f"{package}.main:create_app",
        "--factory",
        "--host",
        "0.0.0.0",
        "--port",
        "8000",
        "--no-access-log",
        "--timeout-keep-alive",
        str(SERVICE_KEEP_ALIVE_SECONDS),
    ]


# --- config files ----------------------------------------------------------------------------


@pytest.mark.parametrize("path", _config_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_config_file_parses(path: Path) -> None:
    if path.suffix == ".json":
        assert isinstance(json.loads(path.read_text(encoding="utf-8")), dict)
    else:
        assert isinstance(_load_yaml(path), dict)


def test_alloy_config_references_only_components_it_declares() -> None:
    text = re.sub(r"//[^\n]*", "", ALLOY_CONFIG.read_text())
    assert text.count("{") == text.count("}")
    declared = set(re.findall(r'^([a-z_]+(?:\.[a-z_]+)+)\s+"([\w-]+)"\s*\{', text, re.MULTILINE))
    referenced = set(
        re.findall(r"\b((?:discovery|loki|local|prometheus)\.[a-z_.]+?)\.([\w]+)\.(?:targets|"
                   r"output|rules|receiver)\b", text)
    )  # fmt: skip
    assert referenced, "expected components wired together"
    assert referenced <= declared, f"undeclared: {sorted(referenced - declared)}"
    # Labels stay few: only service and level (request and trace ids are structured metadata).
    labels_block = re.search(r"stage\.labels\s*\{\s*values\s*=\s*\{([^}]*)\}", text)
    assert labels_block is not None
    assert set(re.findall(r"(\w+)\s*=", labels_block.group(1))) == {"service", "level"}


# --- Prometheus and Grafana agree with the code ----------------------------------------------


def test_promql_metric_names_finds_metrics_and_nothing_else() -> None:
    expr = (
        'histogram_quantile(0.99, sum by (service, le) (rate(req_seconds_bucket{route!~"/a|/b",'
        ' le="+Inf"}[$__rate_interval]))) / on (service) group_left sum without (x)'
        ' (errors_total offset 5m) > bool 1e3 and up{job=~"$service"} == 0'
    )
    assert promql_metric_names(expr) == {"req_seconds_bucket", "errors_total", "up"}
    assert grafana_variable_metric_names('label_values(http_x_total{a="b"}, route)') == {
        "http_x_total"
    }
    assert grafana_variable_metric_names("label_values(route)") == set()


def test_every_dashboard_and_rule_metric_is_exported_by_the_services() -> None:
    exported = exported_series_names()
    assert "http_requests_total" in exported  # the registry was read, not an empty set

    def known(name: str) -> bool:
        return name in exported or name in ALLOWED_NAMES or name.startswith(ALLOWED_PREFIXES)

    queries = list(rule_promql())
    for path in DASHBOARDS:
        queries.extend(
            (f"{path.name}: {where}", expr, names)
            for where, expr, names in dashboard_promql(json.loads(path.read_text(encoding="utf-8")))
        )
    assert queries
    unknown = [(where, sorted(n for n in names if not known(n))) for where, _, names in queries]
    unknown = [(where, names) for where, names in unknown if names]
    assert not unknown, f"metrics no service exports: {unknown}"
    assert all(names for _, _, names in queries), "a query selects no metric at all"


def test_alert_rules_are_well_formed() -> None:
    seen: set[str] = set()
    for path in RULE_FILES:
        for group in _load_yaml(path)["groups"]:
            for rule in group["rules"]:
                assert rule["alert"] not in seen, f"duplicate alert {rule['alert']}"
                seen.add(rule["alert"])
                assert rule["labels"]["severity"] in {"critical", "warning", "info"}
                assert rule["annotations"]["summary"] and rule["annotations"]["description"]
                assert rule["annotations"]["runbook_url"].startswith("docs/runbooks.md#")
    assert {
        "BlueprintTargetDown",
        "BlueprintHigh5xxRate",
        "BlueprintHighP99Latency",
        "BlueprintInFlightSaturation",
        "BlueprintOutboxBacklogOld",
        "BlueprintConsumerLagging",
        "BlueprintDeadLettersGrowing",
    } <= seen


def test_prometheus_scrapes_every_service() -> None:
    config = _load_yaml(PROMETHEUS_CONFIG)
    targets = {
        target
        for job in config["scrape_configs"]
        for static in job.get("static_configs", [])
        for target in static["targets"]
    }
    compose_services = set(_compose()["services"])
    for service in SERVICES:
        assert f"{service}:8000" in targets
    for target in targets:
        host = target.split(":")[0]
        assert host == "localhost" or host in compose_services, f"{target}: no such service"
    assert any(pattern.endswith("rules/*.yml") for pattern in config["rule_files"])


def test_dashboards_use_provisioned_datasources() -> None:
    uids = {ds["uid"] for ds in _load_yaml(DATASOURCES)["datasources"]}
    assert DASHBOARDS
    for path in DASHBOARDS:
        dashboard = json.loads(path.read_text(encoding="utf-8"))
        used = {
            p["datasource"]["uid"]
            for p in _panels(dashboard["panels"])
            if isinstance(p.get("datasource"), dict)
        }
        assert used <= uids, f"{path.name} uses datasources that are not provisioned"
        ids = [p["id"] for p in _panels(dashboard["panels"])]
        assert len(ids) == len(set(ids)), f"{path.name}: panel ids repeat"
