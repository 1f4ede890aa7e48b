"""What the observability proof tests ask Prometheus: every PromQL expression of the dashboards
and the alert rules, and the metric names each one selects."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import yaml

ROOT = Path(__file__).resolve().parents[2]
DASHBOARDS = sorted((ROOT / "infra" / "grafana" / "dashboards").glob("*.json"))
RULE_FILES = sorted((ROOT / "infra" / "prometheus" / "rules").glob("*.yml"))

# Grafana's variables as a query over the whole stack, on a window the walk fits in.
GRAFANA_VARIABLES = {
    "$__rate_interval": "5m",
    "$__range": "10m",
    "$service": ".*",
    "$route": ".*",
}
_STRINGS = re.compile(r'"(?:\\.|[^"\\])*"')
_MATCHERS = re.compile(r"\{[^{}]*\}")
_RANGES = re.compile(r"\[[^\]]*\]")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_IDENT = re.compile(r"(?<![\w.:])([a-zA-Z_:][a-zA-Z0-9_:]*)(?![\w:])(?!\s*\()")
_KEYWORDS = frozenset({"and", "or", "unless", "by", "without", "on", "ignoring", "bool", "offset"})


def panel_queries() -> Iterator[tuple[str, str]]:
    """(dashboard / panel / refId, PromQL with Grafana's variables filled) of every panel."""
    for path in DASHBOARDS:
        dashboard = json.loads(path.read_text())
        stack = list(dashboard["panels"])
        while stack:
            panel = stack.pop(0)
            stack.extend(panel.get("panels", []))
            for target in panel.get("targets", []):
                datasource = target.get("datasource") or panel.get("datasource") or {}
                if datasource.get("type") == "loki" or not target.get("expr"):
                    continue
                expr = target["expr"]
                for name, value in GRAFANA_VARIABLES.items():
                    expr = expr.replace(name, value)
                yield f"{path.stem} / {panel['title']} ({target['refId']})", expr


def rule_queries() -> Iterator[tuple[str, str]]:
    """(alert name, expression) of every alert rule."""
    for path in RULE_FILES:
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                if "alert" in rule:
                    yield rule["alert"], rule["expr"]


def metric_names(expr: str) -> set[str]:
    text = _GROUPING.sub("", _RANGES.sub("", _MATCHERS.sub("", _STRINGS.sub('""', expr))))
    return {m for m in _IDENT.findall(text) if m.lower() not in _KEYWORDS}


def query(prometheus: str, expr: str) -> list[dict[str, Any]]:
    """An instant query; raises on an error (a bad expression is a failure, not "no data")."""
    resp = httpx.get(f"{prometheus}/api/v1/query", params={"query": expr}, timeout=10,
                     trust_env=False)  # fmt: skip
    body = resp.json()
    assert body.get("status") == "success", f"{expr}: {body}"
    result: list[dict[str, Any]] = body["data"]["result"]
    return result


def has_data(result: list[dict[str, Any]]) -> bool:
    """At least one series with a number (a quantile of no observations is NaN: not data)."""
    return any(not math.isnan(float(series["value"][1])) for series in result)
