"""The exporter fed by syslog, as in compose: the real exporter process on a UDP port, and the
real nginx running the gateway template with its second access log sent there by syslog. The
services behind it are not running, so a routed request gets the gateway's own 502."""

from __future__ import annotations

import http.client
import signal
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from blueprint_stack import StackConfig
from blueprint_stack.gateway import write_config
from blueprint_stack.install import nginx_binary
from blueprint_stack.supervisor import port_ready
from blueprint_stack.testing import wait_for
from servicekit.devstack.ports import free_port

pytestmark = pytest.mark.skipif(nginx_binary() is None, reason="nginx is not installed")

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]
Popen = subprocess.Popen[bytes]


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _request(port: int, method: str, path: str) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(method, path)
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


def _scrape(port: int) -> Samples | None:
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        conn.request("GET", "/metrics")
        text = conn.getresponse().read().decode()
        conn.close()
    except OSError:
        return None
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def _get(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def _stop(process: Popen) -> int:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    try:
        return process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        raise


@dataclass
class Running:
    gateway_port: int
    metrics_port: int
    syslog_port: int
    access_log: Path
    exporter: Popen

    def samples(self) -> Samples | None:
        return _scrape(self.metrics_port)


def _start(argv: list[str], log: Path, ready: Callable[[], object], what: str) -> Popen:
    """Start a process, its output in `log`; wait until `ready()` (or its early death)."""
    with log.open("wb") as output:
        process = subprocess.Popen(argv, stdout=output, stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: process.poll() is not None or ready(), what, timeout=120)
        assert process.poll() is None, f"{what} exited:\n{log.read_text()}"
    except BaseException:
        _stop(process)
        raise
    return process


@pytest.fixture
def running(tmp_path: Path) -> Iterator[Running]:
    config = StackConfig.for_tests(tmp_path / "var")
    syslog_port, metrics_port = _free_udp_port(), free_port()
    syslog = f"access_log syslog:server=127.0.0.1:{syslog_port},tag=gateway,nohostname json;"
    conf = write_config(config, {"GATEWAY_METRICS_ACCESS_LOG": syslog})
    # The routes come from the template itself, as in compose.
    exporter = _start(
        [sys.executable, "-m", "blueprint_stack.gateway_exporter",
         "--syslog-udp", f"127.0.0.1:{syslog_port}",
         "--nginx-conf", str(config.gateway_template), "--port", str(metrics_port)],
        tmp_path / "exporter.log", lambda: _scrape(metrics_port), "the exporter",
    )  # fmt: skip
    try:
        # Ready once its port is bound; no request to check it, as it would be logged too.
        nginx = _start(
            [str(nginx_binary()), "-p", str(config.nginx_dir), "-c", str(conf)],
            tmp_path / "nginx.log", port_ready(config.gateway_port), "nginx",
        )  # fmt: skip
    except BaseException:
        _stop(exporter)
        raise
    try:
        yield Running(
            config.gateway_port, metrics_port, syslog_port,
            config.nginx_dir / "logs" / "access.log", exporter,
        )  # fmt: skip
    finally:
        _stop(nginx)
        _stop(exporter)


DURATION = "gateway_http_request_duration_seconds_count"
REQUESTS = "gateway_http_requests_total"
LINES = "gateway_access_log_lines_total"


def test_every_request_nginx_logs_by_syslog_is_counted(running: Running) -> None:
    port = running.gateway_port
    assert _request(port, "GET", "/health") == 200  # answered by the gateway itself
    assert _request(port, "GET", "/api/v1/no-such-route") == 404
    assert _request(port, "BREW", "/api/v1/tasks") == 501  # a method the API does not know
    assert _request(port, "GET", "/api/v1/tasks") == 502  # task-svc is not running
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.sendto(b"<190>Dec  3 14:00:00 gateway: not json", ("127.0.0.1", running.syslog_port))

    # nginx sends a line once the response is sent: wait until all five have arrived.
    def counted() -> Samples | None:
        got = running.samples()
        if got and _get(got, LINES, outcome="parsed") + _get(got, LINES, outcome="invalid") == 5:
            return got
        return None

    got = wait_for(counted, "four requests and a malformed datagram counted")
    assert _get(got, LINES, outcome="invalid") == 1
    assert _get(got, DURATION, service="gateway", http_request_method="GET",
                status_class="2xx") == 1  # fmt: skip
    assert _get(got, DURATION, service="gateway", http_request_method="GET",
                status_class="4xx") == 1  # fmt: skip
    assert _get(got, DURATION, service="task-svc", http_request_method="_OTHER",
                status_class="5xx") == 1  # fmt: skip
    assert _get(got, DURATION, service="task-svc", http_request_method="GET",
                status_class="5xx") == 1  # fmt: skip
    assert _get(got, REQUESTS, service="gateway", http_response_status_code="200") == 1
    assert _get(got, REQUESTS, service="gateway", http_response_status_code="404") == 1
    assert _get(got, REQUESTS, service="task-svc", http_response_status_code="501") == 1
    assert _get(got, REQUESTS, service="task-svc", http_response_status_code="502") == 1
    total = sum(v for (name, _), v in got.items() if name == REQUESTS)
    assert total == 4
    # The file nginx writes beside the syslog copy has as many lines: none was lost.
    assert len(running.access_log.read_text().splitlines()) == 4
    assert _stop(running.exporter) == 0  # SIGTERM: it shuts down and exits cleanly
