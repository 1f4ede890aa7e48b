"""The platform through its one entry point: routing, request ids, errors as problem details,
limits, and what happens when a service is down."""

from __future__ import annotations

import uuid
from dataclasses import replace
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from blueprint_stack import Stack
from blueprint_stack.supervisor import ManagedProcess
from blueprint_stack.testing import json_log_lines, wait_for
from servicekit.devstack import free_port

pytestmark = pytest.mark.e2e

PROBLEM = "application/problem+json"
SERVICES = {"template": "template-svc", "task": "task-svc", "qc": "qc-svc", "notify": "notify-svc"}
ROUTES = [
    ("/api/v1/templates", "template-svc"),
    # A template's batch migrations are task-svc's (ADR 0005); the version itself is not.
    ("/api/v1/templates/0b6f8a8e-5d7c-4f1e-9a63-2c1d0e9b7a10/versions/2/migrations", "task-svc"),
    ("/api/v1/templates/0b6f8a8e-5d7c-4f1e-9a63-2c1d0e9b7a10/versions", "template-svc"),
    ("/api/v1/projects", "task-svc"),
    ("/api/v1/tasks", "task-svc"),
    ("/api/v1/deliverables", "task-svc"),
    ("/api/v1/inspections", "qc-svc"),
    ("/api/v1/qc", "qc-svc"),
    ("/api/v1/webhooks", "notify-svc"),
    ("/api/v1/notifications", "notify-svc"),
]


def new_request_id() -> str:
    return f"abc-{uuid.uuid4().hex}"


def assert_problem(resp: httpx.Response, status: int) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith(PROBLEM), resp.headers
    body: dict[str, Any] = resp.json()
    assert body["status"] == status
    for key in ("type", "title", "detail", "code"):
        assert body.get(key), f"problem body lacks {key!r}: {body}"
    assert body["request_id"] == resp.headers["x-request-id"]
    return body


def service_log_entry(stack: Stack, service: str, request_id: str) -> dict[str, Any] | None:
    log = stack.config.log_dir / f"{service}.log"
    for entry in json_log_lines(log):
        if entry.get("request_id") == request_id and entry.get("logger") == "servicekit.access":
            return entry
    return None


@pytest.mark.parametrize("short", list(SERVICES))
def test_health_of_each_service_through_the_gateway(gateway: httpx.Client, short: str) -> None:
    resp = gateway.get(f"/health/{short}")
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["status"] == "ready"
    assert body["service"] == SERVICES[short]


def test_gateway_answers_its_own_health(gateway: httpx.Client) -> None:
    resp = gateway.get("/health")
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("application/json")
    assert resp.json()["status"] == "ok"


@pytest.mark.parametrize(("prefix", "service"), ROUTES)
def test_each_prefix_reaches_its_service_with_the_path_unchanged(
    stack: Stack, gateway: httpx.Client, prefix: str, service: str
) -> None:
    rid = new_request_id()
    path = f"{prefix}/e2e-probe-{uuid.uuid4().hex[:8]}"
    resp = gateway.get(path, headers={"X-Request-ID": rid})
    # No such resource yet: the answer is the service's own problem, naming the path it saw.
    assert resp.status_code in (401, 404), resp.text
    entry = wait_for(lambda: service_log_entry(stack, service, rid), f"{rid} in {service}'s log")
    assert entry["path"] == path


def test_internal_routes_are_not_reachable(stack: Stack, gateway: httpx.Client) -> None:
    rid = new_request_id()
    resp = gateway.get("/internal/x", headers={"X-Request-ID": rid})
    body = assert_problem(resp, 404)
    assert body["code"] == "NOT_FOUND"
    for service in SERVICES.values():
        assert service_log_entry(stack, service, rid) is None


@pytest.mark.parametrize("path", ["/nothing-here", "/api/v1/templatesx", "/api/v2/tasks", "/docsx"])
def test_unknown_paths_are_404_problems(gateway: httpx.Client, path: str) -> None:
    body = assert_problem(gateway.get(path), 404)
    assert body["code"] == "NOT_FOUND"


def test_request_id_is_kept_passed_on_and_logged(stack: Stack, gateway: httpx.Client) -> None:
    rid = new_request_id()
    trace_id = uuid.uuid4().hex
    traceparent = f"00-{trace_id}-{uuid.uuid4().hex[:16]}-01"
    resp = gateway.get(
        "/api/v1/templates/request-id-probe",
        headers={"X-Request-ID": rid, "traceparent": traceparent},
    )
    assert resp.headers["x-request-id"] == rid
    assert resp.json()["request_id"] == rid
    entry = wait_for(lambda: service_log_entry(stack, "template-svc", rid), "the log line")
    assert entry["path"] == "/api/v1/templates/request-id-probe"
    assert entry["trace_id"] == trace_id


def test_a_request_without_an_id_gets_one(gateway: httpx.Client) -> None:
    resp = gateway.get("/api/v1/tasks/without-id", headers={"X-Request-ID": "not a valid id!"})
    rid = resp.headers["x-request-id"]
    assert rid and rid != "not a valid id!"
    assert resp.json()["request_id"] == rid


def test_templates_need_a_token(stack: Stack, gateway: httpx.Client) -> None:
    spec = httpx.get(f"{stack.config.service_url('template-svc')}/openapi.json").json()
    if not any(p.startswith("/api/v1/templates") for p in spec.get("paths", {})):
        pytest.skip("template-svc serves no /api/v1/templates route yet")
    body = assert_problem(gateway.get("/api/v1/templates"), 401)
    assert body["code"] == "TOKEN_MISSING"


def test_oversize_body_is_a_413_problem(gateway: httpx.Client) -> None:
    too_big = b"x" * (1024 * 1024 + 1)  # the gateway accepts 1m
    resp = gateway.post(
        "/api/v1/projects", content=too_big, headers={"Content-Type": "application/json"}
    )
    body = assert_problem(resp, 413)
    assert body["code"] == "PAYLOAD_TOO_LARGE"
    assert "(1m)" in body["detail"]


def test_templates_take_whole_graphs_up_to_their_own_limit(gateway: httpx.Client) -> None:
    # A 10,000-node graph is a few MB: it reaches template-svc, which reads it (and refuses
    # this one as not JSON) instead of the gateway refusing it for its size.
    big = b"x" * (5 * 1024 * 1024)
    resp = gateway.post(
        "/api/v1/templates", content=big, headers={"Content-Type": "application/json"}
    )
    assert assert_problem(resp, 400)["code"] == "BODY_NOT_JSON"
    too_big = b"x" * (17 * 1024 * 1024 + 1)
    body = assert_problem(
        gateway.post(
            "/api/v1/templates", content=too_big, headers={"Content-Type": "application/json"}
        ),
        413,
    )
    assert "(17m)" in body["detail"]


def test_writes_over_the_rate_are_429_problems_and_reads_are_not_limited(stack: Stack) -> None:
    # A second gateway, rendered from the same template by the runner with a tiny write rate,
    # in front of the same services: the session gateway keeps its normal limits for other tests.
    limited_cfg = replace(
        stack.config,
        var_dir=stack.config.var_dir / "limited-gateway",
        gateway_port=free_port(),
        write_rate="1r/m",
        write_burst=2,
    )
    spec = replace(Stack(limited_cfg).gateway_spec(), name="gateway-limited")
    limited = ManagedProcess(spec, stack.config.log_dir, stack.console)
    limited.start()
    try:
        limited.wait_ready(30)
        with httpx.Client(base_url=f"http://127.0.0.1:{limited_cfg.gateway_port}") as client:
            statuses = []
            for _ in range(10):
                resp = client.post("/api/v1/tasks/rate-probe", json={})
                statuses.append(resp.status_code)
                if resp.status_code == 429:
                    break
            assert 429 in statuses, statuses
            body = assert_problem(resp, 429)
            assert body["code"] == "RATE_LIMITED"
            assert resp.headers["retry-after"]
            # Reads pass while writes are refused.
            assert client.get("/health/task").status_code == 200
            assert client.post("/api/v1/tasks/rate-probe", json={}).status_code == 429
    finally:
        limited.stop()


def test_a_stopped_service_gives_a_502_problem(stack: Stack, gateway: httpx.Client) -> None:
    stack.stop_process("notify-svc")
    try:
        for path in ("/health/notify", "/api/v1/notifications"):
            resp = gateway.get(path)
            assert resp.status_code in (502, 503), resp.text
            body = assert_problem(resp, resp.status_code)
            assert body["code"] in ("BAD_GATEWAY", "SERVICE_UNAVAILABLE")
        # The others are not affected.
        assert gateway.get("/health/task").status_code == 200
    finally:
        stack.start_process("notify-svc")
    assert gateway.get("/health/notify").status_code == 200


def _readyz_count(stack: Stack, service: str) -> float:
    text = httpx.get(f"{stack.config.service_url(service)}/metrics").text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = sample.labels
            if (
                sample.name == "http_requests_total"
                and labels.get("route") == "/readyz"
                and labels.get("method") == "GET"
                and labels.get("status") == "200"
                and labels.get("service") == service
            ):
                return sample.value
    return 0.0


@pytest.mark.parametrize("short", list(SERVICES))
def test_metrics_count_the_request_by_route_template(
    stack: Stack, gateway: httpx.Client, short: str
) -> None:
    service = SERVICES[short]
    before = _readyz_count(stack, service)
    assert gateway.get(f"/health/{short}").status_code == 200
    assert _readyz_count(stack, service) >= before + 1


def test_docs_are_served_from_local_assets(gateway: httpx.Client) -> None:
    page = gateway.get("/docs/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "/docs/swagger-ui-bundle.js" in page.text
    assert "http://" not in page.text and "https://" not in page.text, "no CDN"
    bundle = gateway.get("/docs/swagger-ui-bundle.js")
    assert bundle.status_code == 200
    assert bundle.headers["content-type"].startswith("application/javascript")
    assert gateway.get("/docs", follow_redirects=False).status_code == 301


def test_merged_openapi_lists_every_service_and_no_internal_route(gateway: httpx.Client) -> None:
    resp = gateway.get("/openapi.json")
    assert resp.status_code == 200
    paths = resp.json()["paths"]
    for prefix in ("/api/v1/templates", "/api/v1/projects", "/api/v1/tasks", "/api/v1/inspections"):
        assert any(p.startswith(prefix) for p in paths), prefix
    assert not [p for p in paths if p.startswith("/internal")]


@pytest.mark.parametrize("service", ["template-svc", "task-svc", "qc-svc", "notify-svc"])
def test_each_events_process_serves_its_relay_and_consumer_metrics(
    stack: Stack, service: str
) -> None:
    url = f"http://127.0.0.1:{stack.config.events_metrics_ports[service]}/metrics"

    def backlog() -> str | None:
        text = httpx.get(url, timeout=5).text
        return text if f'outbox_backlog{{service="{service}"}}' in text else None

    text = wait_for(backlog, f"{service}-events to report its outbox backlog", 30)
    names = {family.name for family in text_string_to_metric_families(text)}
    assert {"outbox_backlog", "outbox_published", "events_consumed"} <= names
