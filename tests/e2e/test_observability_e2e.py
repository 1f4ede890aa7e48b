"""Operations, proven on the real platform: Prometheus scrapes the whole stack, every dashboard
panel and alert rule has data after a project walk and a mail walk (an assignment mail and a
deadline reminder through the stack's SMTP sink), an alert reaches Alertmanager, and one trace
follows a task from the gateway through the events of two services and back.

The session's stack (tests/e2e/conftest.py) runs Prometheus and Alertmanager, and exports the
spans of sampled requests to a receiver in this process. The alert test stops qc-svc's events
process and starts it again before it ends.
"""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from blueprint_stack import Stack
from blueprint_stack.stack import service as service_def
from blueprint_stack.testing import json_log_lines, wait_for
from notify_svc.receiver import Receiver
from notify_svc.settings import Settings
from servicekit.testing.otlp import OtlpReceiver

from .obs_support import has_data, metric_names, panel_queries, query, rule_queries
from .test_notifications_e2e import Shop, run_scans
from .test_qc_flow_e2e import Org, node

pytestmark = pytest.mark.e2e


def _prometheus(stack: Stack) -> str:
    assert stack.obs is not None
    return stack.obs.prometheus_url


def _walk(org: Org, webhook_url: str) -> None:
    """A project through its life: work, QC reject, rework, a refused and a replayed request;
    its task events go to a webhook subscriber."""
    endpoint = {"url": webhook_url, "event_types": ["task.*"]}
    org.call("POST", "/api/v1/webhooks/endpoints", org.planner, 201, json=endpoint)
    project = org.project(
        [node("prep"), node("paint", qc=True), node("pack")],
        [("prep", "paint"), ("paint", "pack")],
    )
    tasks = org.tasks(project)
    org.act(tasks["pack"]["id"], "start", status=409)  # blocked: a refusal by code
    org.work(tasks["prep"]["id"], tasks["paint"]["id"])
    org.reject(org.pending_inspection(tasks["paint"]["id"], 1))
    paint = org.wait_status(tasks["paint"]["id"], "rework")
    body = {"action": "start", "expected_row_version": paint["row_version"],
            "client_event_id": f"e2e-{uuid.uuid4()}"}  # fmt: skip
    path = f"/api/v1/tasks/{paint['id']}/transitions"
    for _ in range(2):  # the second is an idempotent replay
        org.call("POST", path, org.operator, 200, json=body)


def _mail_walk(stack: Stack, gateway: httpx.Client, monkeypatch: pytest.MonkeyPatch) -> None:
    """E-mail through the stack's SMTP sink: an assignment mail (from the event), then a deadline
    reminder from beat's scan (run here, now, instead of waiting for beat's next one)."""
    shop = Shop(stack, gateway)
    title = f"Ship walk {uuid.uuid4().hex[:6]}"
    tasks = shop.project([{"key": "ship", "title": title, "due_offset_hours": 0.5}],
                         datetime.now(UTC))  # fmt: skip
    shop.assign(tasks["ship"])
    shop.mails_with(f"Assigned to you: {title}", 1)
    for name, value in stack.service_env(service_def("notify-svc")).items():
        monkeypatch.setenv(name, value)
    run_scans(Settings(), 1)
    shop.mails_with(f"Due soon: {title}", 1)


def test_prometheus_scrapes_every_process_and_every_panel_and_rule_has_data(
    stack: Stack, gateway: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    prometheus = _prometheus(stack)

    def all_up() -> list[dict[str, Any]] | None:
        targets = httpx.get(f"{prometheus}/api/v1/targets", trust_env=False).json()
        active = targets["data"]["activeTargets"]
        return active if active and all(t["health"] == "up" for t in active) else None

    # Every target is scraped before the walk, so its counters have a sample from before it.
    active = wait_for(all_up, "every scrape target up", timeout=60)
    jobs = sorted(t["labels"]["job"] for t in active)
    print(f"\n{len(jobs)} targets up: {', '.join(jobs)}")
    assert {"gateway", "gateway-log", "task-svc", "task-svc-events", "qc-svc-events",
            "notify-celery"} <= set(jobs)  # fmt: skip

    # Per-route series are born with the first request to their route, and a series' first
    # sample has no rate: walk once, wait until Prometheus holds the walk's series, walk again.
    started = time.monotonic()
    receiver = Receiver().start()
    _walk(Org(stack, gateway), receiver.url)
    mail_started = time.monotonic()
    _mail_walk(stack, gateway, monkeypatch)
    print(f"the mail walk took {time.monotonic() - mail_started:.1f}s")
    for series in (
        'http_server_request_duration_seconds_count{http_route=~".*/transitions"}',
        'gateway_http_request_duration_seconds_count{service="task-svc", status_class="2xx"}',
        'gateway_http_requests_total{service="notify-svc"}',
    ):
        wait_for(lambda s=series: query(prometheus, s), f"the first walk's {series}", timeout=30)
    _walk(Org(stack, gateway), receiver.url)
    print(f"the walks took {time.monotonic() - started:.0f}s")

    panels = list(panel_queries())
    rules = list(rule_queries())
    empty: list[str] = []

    def nothing_missing() -> bool:
        empty.clear()
        empty.extend(where for where, expr in panels if not has_data(query(prometheus, expr)))
        for alert, expr in rules:
            query(prometheus, expr)  # the whole expression evaluates (firing or not)
            empty.extend(
                f"rule {alert}: {name}"
                for name in sorted(metric_names(expr))
                if not query(prometheus, f'count({{__name__="{name}"}})')
            )
        return not empty

    # The gauges and the last events reach Prometheus within a few scrapes.
    deadline = time.monotonic() + 30
    while not nothing_missing() and time.monotonic() < deadline:
        time.sleep(1)
    print(f"checked {len(panels)} panel queries and {len(rules)} alert rules; "
          f"{len(empty)} without data")  # fmt: skip
    if empty:
        targets = httpx.get(f"{prometheus}/api/v1/targets", trust_env=False).json()
        for t in targets["data"]["activeTargets"]:
            print(f"  {t['labels']['job']}: {t['health']} scrape {t['lastScrapeDuration']:.3f}s "
                  f"{t['lastError']}")  # fmt: skip
    receiver.stop()
    assert not empty, "no data for:\n  " + "\n  ".join(empty)


def test_one_trace_runs_from_the_gateway_through_both_services_and_their_events(
    stack: Stack, gateway: httpx.Client, otlp: OtlpReceiver
) -> None:
    org = Org(stack, gateway)
    project = org.project([node("paint", qc=True)], [])
    paint = org.tasks(project)["paint"]
    org.act(paint["id"], "start")
    trace_id = uuid.uuid4().hex
    headers = {"traceparent": f"00-{trace_id}-{uuid.uuid4().hex[:16]}-01"}
    org.gateway.headers.update(headers)
    try:
        org.act(paint["id"], "complete")  # submits the task to QC
        org.reject(org.pending_inspection(paint["id"], 1))  # the decision, in the same trace
        org.wait_status(paint["id"], "rework")
    finally:
        for name in headers:
            org.gateway.headers.pop(name)

    expected = {
        ("task-svc", "SERVER"),
        ("task-svc", "PRODUCER", "publish task.submitted_for_qc"),
        ("qc-svc", "CONSUMER", "process task.submitted_for_qc"),
        ("qc-svc", "SERVER"),
        ("qc-svc", "PRODUCER", "publish qc.inspection.failed"),
        ("task-svc", "CONSUMER", "process qc.inspection.failed"),
    }

    def of_trace() -> list[tuple[str, str, str]]:
        return [(s.service, s.kind, s.name) for s in otlp.spans if s.trace_id == trace_id]

    def missing(spans: list[tuple[str, str, str]]) -> set[tuple[str, ...]]:
        return {e for e in expected if not any(s[: len(e)] == e or s[:2] == e for s in spans)}

    try:
        spans = wait_for(lambda: (lambda sp: sp if not missing(sp) else None)(of_trace()),
                         f"the spans of trace {trace_id}", timeout=30)  # fmt: skip
    except AssertionError as exc:
        got = sorted(set(of_trace()))
        raise AssertionError(f"{exc}; missing {sorted(missing(of_trace()))}; got {got}") from None
    print(f"\ntrace {trace_id}: {len(spans)} spans; (service, span name) without repeats:")
    for service, kind, name in dict.fromkeys(spans):
        print(f"  ({service}, {name}) {kind}")
    assert any(kind == "CLIENT" and name.startswith(("SELECT", "INSERT", "UPDATE"))
               for _, kind, name in spans), "database spans belong to the trace"  # fmt: skip

    log_dir = stack.config.log_dir
    hops = ("task-svc", "task-svc-events", "qc-svc-events", "qc-svc")
    for process in hops:
        lines = [e for e in json_log_lines(log_dir / f"{process}.log")
                 if e.get("trace_id") == trace_id]  # fmt: skip
        assert lines, f"no JSON log line of {process} carries trace id {trace_id}"
        print(f"  {process}: {len(lines)} log lines with the trace id")


def test_an_alert_reaches_alertmanager_when_qc_svc_stops_consuming(
    stack: Stack, gateway: httpx.Client
) -> None:
    assert stack.obs is not None
    alertmanager = stack.obs.alertmanager_url
    org = Org(stack, gateway)
    project = org.project([node(f"part{i}", qc=True) for i in range(8)], [])
    stack.stop_process("qc-svc-events")
    try:
        for task in org.tasks(project).values():
            org.work(task["id"])  # each enters QC; nobody in qc-svc reads the events

        def lagging() -> dict[str, Any] | None:
            alerts = httpx.get(f"{alertmanager}/api/v2/alerts", trust_env=False).json()
            for alert in alerts:
                labels = alert["labels"]
                if (
                    labels["alertname"] == "BlueprintConsumerLagging"
                    and labels.get("group") == "qc-svc"
                ):
                    return dict(alert)
            return None

        alert = wait_for(lagging, "BlueprintConsumerLagging in Alertmanager", timeout=60)
        print(f"\nAlertmanager: {alert['labels']['alertname']} {alert['annotations']['summary']}")
        assert alert["annotations"]["runbook_url"].endswith("#blueprintconsumerlagging")
        assert alert["status"]["state"] == "active"
    finally:
        stack.start_process("qc-svc-events")


def test_without_a_traceparent_the_gateway_links_a_request_and_its_events_by_its_request_id(
    stack: Stack, gateway: httpx.Client
) -> None:
    """Tracing need not be on: the gateway's traceparent (trace id = its request id, not
    sampled) reaches the service and every event the request causes."""
    org = Org(stack, gateway)
    project = org.project([node("paint", qc=True)], [])
    paint = org.tasks(project)["paint"]
    org.act(paint["id"], "start")
    version = org.task(paint["id"])["row_version"]
    resp = gateway.post(
        f"/api/v1/tasks/{paint['id']}/transitions",
        headers=org.operator,
        json={"action": "complete", "expected_row_version": version,
              "client_event_id": f"e2e-{uuid.uuid4()}"},
    )  # fmt: skip
    assert resp.status_code == 200, resp.text
    request_id = resp.headers["x-request-id"]
    assert len(request_id) == 32, "no client id: the gateway's own, 32 hex digits"

    def handled_in_qc() -> list[dict[str, Any]] | None:
        lines = json_log_lines(stack.config.log_dir / "qc-svc-events.log")
        found = [e for e in lines if e.get("trace_id") == request_id]
        return found or None

    lines = wait_for(handled_in_qc, "qc-svc's log line of the submitted task", timeout=15)
    assert any(e["msg"] == "handling task.submitted_for_qc" for e in lines), lines
    access = [e for e in json_log_lines(stack.config.log_dir / "task-svc.log")
              if e.get("request_id") == request_id]  # fmt: skip
    assert access and all(e["trace_id"] == request_id for e in access)
