"""The gateway's access log exporter: routes read from the real gateway template, a real log
file followed through the exporter's own HTTP /metrics, and syslog datagrams as nginx frames
them (the whole path with nginx and the exporter process: test_gateway_exporter_syslog.py)."""

from __future__ import annotations

import json
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from blueprint_stack.gateway_exporter import Exporter, Routes

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "gateway" / "nginx.conf.template"


@pytest.fixture(scope="module")
def routes() -> Routes:
    return Routes.from_nginx_conf(TEMPLATE.read_text())


@pytest.mark.parametrize(
    ("uri", "service"),
    [
        ("/api/v1/templates", "template-svc"),
        ("/api/v1/templates/abc/versions/3?expand=graph", "template-svc"),
        ("/api/v1/templates/abc/versions/3/migrations", "task-svc"),  # before templates
        ("/api/v1/projects/p1/stream", "task-svc"),
        ("/api/v1/tasks/t1/transitions", "task-svc"),
        ("/api/v1/deliverables", "task-svc"),
        ("/api/v1/inspections/i1/decision", "qc-svc"),
        ("/api/v1/notifications/jobs/email", "notify-svc"),
        ("/api/v1/webhooks/endpoints", "notify-svc"),
        ("/health/qc", "qc-svc"),
        ("/health", "gateway"),
        ("/docs/", "gateway"),
        ("/api/v1/templatesX", "gateway"),  # no route: the gateway's own 404
        ("/internal/anything", "gateway"),
    ],
)
def test_a_path_belongs_to_the_service_the_gateway_routes_it_to(
    routes: Routes, uri: str, service: str
) -> None:
    assert routes.service(uri) == service


def _line(uri: str, method: str, status: int, seconds: float) -> str:
    entry = {"ts": "2026-01-01T00:00:00+00:00", "service": "gateway", "method": method,
             "uri": uri, "status": status, "request_time": seconds}  # fmt: skip
    return json.dumps(entry) + "\n"


@pytest.fixture
def log(tmp_path: Path) -> Path:
    path = tmp_path / "access.log"
    path.write_text(_line("/api/v1/tasks", "GET", 200, 0.5))  # before the exporter: not counted
    return path


@pytest.fixture
def metrics_url(log: Path, routes: Routes) -> Iterator[str]:
    server = Exporter(log, routes).server("127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/metrics"
    finally:
        server.shutdown()
        server.server_close()


def _samples(url: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    # No proxy from the environment for a local URL.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(url, timeout=5) as resp:
        assert resp.status == 200
        text = resp.read().decode()
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def _get(samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str,
         **labels: str) -> float:  # fmt: skip
    return samples.get((name, frozenset(labels.items())), 0.0)


def test_every_logged_request_is_counted_by_service_method_and_status(
    log: Path, metrics_url: str
) -> None:
    with log.open("a") as f:
        f.write(_line("/api/v1/tasks/t1/transitions", "POST", 200, 0.03))
        f.write(_line("/api/v1/tasks/t2/transitions", "POST", 503, 2.0))
        f.write(_line("/api/v1/qc/x", "BREW", 501, 0.0))
        f.write(_line("/api/v1/projects/p1/stream", "GET", 200, 900.0))  # a live stream
        f.write("not json at all\n")
        f.write(_line("/api/v1/tasks", "GET", 200, 0.001)[:40])  # half a line, still written
    got = _samples(metrics_url)
    duration = "gateway_http_request_duration_seconds"
    assert _get(got, f"{duration}_count", service="task-svc", http_request_method="POST",
                status_class="2xx") == 1  # fmt: skip
    assert _get(got, f"{duration}_bucket", service="task-svc", http_request_method="POST",
                status_class="5xx", le="1.0") == 0  # fmt: skip
    assert _get(got, f"{duration}_bucket", service="task-svc", http_request_method="POST",
                status_class="5xx", le="2.5") == 1  # fmt: skip
    assert _get(got, f"{duration}_count", service="qc-svc", http_request_method="_OTHER",
                status_class="5xx") == 1  # fmt: skip
    requests = "gateway_http_requests_total"
    assert _get(got, requests, service="task-svc", http_response_status_code="503") == 1
    assert _get(got, requests, service="qc-svc", http_response_status_code="501") == 1
    # A live stream is a request, but its duration is how long the client listened.
    assert _get(got, requests, service="task-svc", http_response_status_code="200") == 2
    assert _get(got, f"{duration}_count", service="task-svc", http_request_method="GET",
                status_class="2xx") == 0  # fmt: skip
    assert _get(got, "gateway_access_log_lines_total", outcome="parsed") == 4
    assert _get(got, "gateway_access_log_lines_total", outcome="invalid") == 1

    # The half line is counted once it is whole.
    with log.open("a") as f:
        f.write(_line("/api/v1/tasks", "GET", 200, 0.001)[40:])
    got = _samples(metrics_url)
    assert _get(got, requests, service="task-svc", http_response_status_code="200") == 3
    assert _get(got, f"{duration}_count", service="task-svc", http_request_method="GET",
                status_class="2xx") == 1  # fmt: skip
    assert _get(got, "gateway_access_log_lines_total", outcome="invalid") == 1


def test_a_truncated_or_replaced_log_is_read_from_its_start(log: Path, metrics_url: str) -> None:
    requests = "gateway_http_requests_total"
    log.write_text(_line("/health", "GET", 200, 0.0))  # truncated, then one line
    assert _get(_samples(metrics_url), requests, service="gateway",
                http_response_status_code="200") == 1  # fmt: skip
    replacement = log.with_name("access.log.new")
    replacement.write_text(_line("/health", "GET", 200, 0.0) * 2)
    replacement.replace(log)  # another file under the same name
    assert _get(_samples(metrics_url), requests, service="gateway",
                http_response_status_code="200") == 3  # fmt: skip


def test_a_syslog_datagram_is_counted_from_its_json_line_and_a_malformed_one_as_invalid(
    routes: Routes,
) -> None:
    exporter = Exporter(None, routes)  # no file: syslog datagrams only
    line = _line("/api/v1/qc/x", "GET", 200, 0.01).encode()
    for datagram in (
        b"<190>Dec  3 14:00:00 gateway: " + line.strip(),  # nohostname, as the gateway sends
        b"<190>Dec  3 14:00:00 gw-host gateway: " + line,  # a hostname, a trailing newline
        b"<190>Dec  3 14:00:00 gateway: no json here",
        b"<190>Dec  3 14:00:00 gateway: " + line[:30],  # cut short
        b'<190>Dec  3 14:00:00 gateway: {"uri":"/","method":"GET","status":1e400,"request_time":0}',
    ):
        exporter.observe_datagram(datagram)
    got = {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(exporter.scrape().decode())
        for s in family.samples
    }
    assert _get(got, "gateway_http_requests_total", service="qc-svc",
                http_response_status_code="200") == 2  # fmt: skip
    assert _get(got, "gateway_access_log_lines_total", outcome="parsed") == 2
    assert _get(got, "gateway_access_log_lines_total", outcome="invalid") == 3
