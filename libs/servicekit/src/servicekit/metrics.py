"""Prometheus metrics: HTTP RED by route template, in-flight requests, and `/metrics`.

`http_server_request_duration_seconds` follows the OpenTelemetry HTTP server convention (labels
`http_request_method`, `http_route`, `http_response_status_code`); dashboards and alerts use it.
`http_requests_total` and `http_request_duration_seconds` are the previous names, kept for one
release. Methods outside the HTTP standard count as `_OTHER`, as the convention says, so a client
sending made-up methods cannot create series.
"""

from __future__ import annotations

import os

from fastapi import APIRouter
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from starlette.responses import Response

from servicekit.process_metrics import WorkerProcessCollector

HTTP_REQUESTS = Counter(
    "http_requests_total",
    "HTTP requests handled, by route template and status code",
    ["service", "method", "route", "status"],
)
HTTP_DURATION = Histogram(
    "http_request_duration_seconds",
    "Time to handle an HTTP request, by route template",
    ["service", "method", "route"],
    buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
HTTP_SERVER_DURATION = Histogram(
    "http_server_request_duration_seconds",
    "Duration of HTTP server requests (OpenTelemetry http.server.request.duration)",
    ["service", "http_request_method", "http_route", "http_response_status_code"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0),
)
HTTP_IN_FLIGHT = Gauge(
    "http_requests_in_flight",
    "HTTP requests being handled right now",
    ["service"],
    multiprocess_mode="livesum",
)

PROBLEMS = Counter(
    "http_problems_total",
    "Requests refused or failed with a problem+json answer, by its stable code and status",
    ["service", "code", "status"],
)
# The service this process serves (set by build_app): problem answers are counted under it.
_service = {"name": "unknown"}


def set_service(name: str) -> None:
    _service["name"] = name


def count_problem(code: str, status: int) -> None:
    PROBLEMS.labels(_service["name"], code, str(status)).inc()


KNOWN_METHODS = frozenset(
    {"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"}
)
OTHER_METHOD = "_OTHER"


def method_label(method: str) -> str:
    """The request method, or `_OTHER` for one outside the HTTP standard (bounded labels)."""
    return method if method in KNOWN_METHODS else OTHER_METHOD


router = APIRouter(include_in_schema=False)


def _registry() -> CollectorRegistry | None:
    """With several worker processes (PROMETHEUS_MULTIPROC_DIR set), their metrics added up."""
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return None
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    registry.register(WorkerProcessCollector(os.environ["PROMETHEUS_MULTIPROC_DIR"]))
    return registry


@router.get("/metrics")
async def metrics() -> Response:
    registry = _registry()
    body = generate_latest(registry) if registry is not None else generate_latest()
    return Response(body, media_type=CONTENT_TYPE_LATEST)
