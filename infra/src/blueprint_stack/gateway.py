"""Rendering gateway/nginx.conf.template: `${UPPER_CASE}` names are filled in, nginx's own
lower-case `$variables` are left alone (the same contract as envsubst with a variable list).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path

from blueprint_stack.config import SERVICES, StackConfig

_PLACEHOLDER = re.compile(r"\$\{([A-Z][A-Z0-9_]*)\}")
# How long a service keeps an idle kept-alive connection (uvicorn --timeout-keep-alive; the
# service image's command says the same): longer than the gateway keeps its idle connections
# to the services (`keepalive_timeout` in each upstream block), so the gateway closes them first.
SERVICE_KEEP_ALIVE_SECONDS = 75


class TemplateError(ValueError):
    pass


def render(template: str, values: Mapping[str, str]) -> str:
    """Fill every `${NAME}`; a name without a value is an error, an unused value is fine."""
    missing = sorted({m.group(1) for m in _PLACEHOLDER.finditer(template)} - set(values))
    if missing:
        raise TemplateError(f"the gateway template needs values for: {', '.join(missing)}")
    return _PLACEHOLDER.sub(lambda m: str(values[m.group(1)]), template)


def placeholders(template: str) -> set[str]:
    return {m.group(1) for m in _PLACEHOLDER.finditer(template)}


def gateway_values(config: StackConfig) -> dict[str, str]:
    """The template's values for the local stack."""
    runtime = config.nginx_dir
    values = {
        # nginx's workers default to `nobody`, who may not reach a var dir inside a home or
        # project directory; when we are root the workers simply stay root (local only).
        "GATEWAY_USER_DIRECTIVE": "user root;" if os.geteuid() == 0 else "",
        "GATEWAY_WORKER_PROCESSES": "2",
        "GATEWAY_RUNTIME_DIR": str(runtime),
        "GATEWAY_DOCS_DIR": str(runtime / "docs"),
        "GATEWAY_BOARD_DIR": str(config.repo_root / "clients" / "board"),
        # The error log goes to the supervisor, like every process's output: var/log/gateway.log
        # and the console. The access log (one JSON line per request) stays in its own file.
        "GATEWAY_ERROR_LOG": "stderr",
        "GATEWAY_ACCESS_LOG": str(runtime / "logs" / "access.log"),
        # No second access log: the stack's gateway-log-exporter follows the file above.
        "GATEWAY_METRICS_ACCESS_LOG": "",
        "GATEWAY_LISTEN": f"{config.gateway_host}:{config.gateway_port}",
        "GATEWAY_WRITE_RATE": config.write_rate,
        "GATEWAY_WRITE_BURST": str(config.write_burst),
        "GATEWAY_CLIENT_MAX_BODY_SIZE": config.client_max_body_size,
        "GATEWAY_TEMPLATE_MAX_BODY_SIZE": config.template_max_body_size,
        "GATEWAY_PROXY_CONNECT_TIMEOUT": "5s",
        "GATEWAY_PROXY_READ_TIMEOUT": "60s",
        "GATEWAY_PROXY_SEND_TIMEOUT": "60s",
    }
    for svc in SERVICES:
        values[f"{svc.package.upper()}_UPSTREAM"] = f"127.0.0.1:{config.service_port(svc.name)}"
    return values


def render_for_stack(config: StackConfig, overrides: Mapping[str, str] | None = None) -> str:
    """The template filled with the stack's values; `overrides` replaces some of them (tests
    render a gateway with, say, a short read timeout or an upstream of their own)."""
    values = gateway_values(config)
    unknown = sorted(set(overrides or {}) - set(values))
    if unknown:
        raise TemplateError(f"the gateway template has no values named: {', '.join(unknown)}")
    values.update(overrides or {})
    return render(config.gateway_template.read_text(), values)


def write_config(config: StackConfig, overrides: Mapping[str, str] | None = None) -> Path:
    """Render into var/nginx/nginx.conf and create the directories nginx writes to."""
    runtime = config.nginx_dir
    for sub in ("logs", "tmp"):
        (runtime / sub).mkdir(parents=True, exist_ok=True)
    target = runtime / "nginx.conf"
    target.write_text(render_for_stack(config, overrides))
    return target
