"""The gateway's request metrics, read from its JSON access log (one line per request).

    python -m blueprint_stack.gateway_exporter --access-log var/nginx/logs/access.log \\
        --nginx-conf var/nginx/nginx.conf --port 9114
    python -m blueprint_stack.gateway_exporter --syslog-udp 0.0.0.0:9514 \\
        --nginx-conf /app/nginx.conf.template --host 0.0.0.0 --port 9114

nginx (Debian's) has no histogram of its own and stub_status only counts requests; its access
log has each request's method, status and `request_time`. This process reads the log and
serves, on /metrics:

- `gateway_http_request_duration_seconds` (histogram): `service` (the upstream the route goes
  to, or `gateway` for what nginx answers itself), `http_request_method` (known methods, else
  `_OTHER`), `status_class` (`1xx` ... `5xx`); live streams (routes the gateway does not buffer,
  `proxy_buffering off`, open for as long as the client listens) are left out of it;
- `gateway_http_requests_total` (counter): `service`, `http_response_status_code`;
- `gateway_access_log_lines_total` (counter): `outcome` (`parsed`, `invalid`).

The service of a path is taken from the gateway's own config: its `location` blocks that
`proxy_pass` to an upstream, matched as nginx does (exact locations first, then the regular
expressions in order), so the exporter cannot disagree with the routing.

The log comes in one of two ways, each line going through the same parsing and counting:

- `--access-log FILE` (the local stack): the file nginx writes, read when Prometheus scrapes,
  up to the last complete line, so a scrape counts every request logged before it. Reading
  starts at the log's end (a restarted exporter does not count old requests again) and starts
  over at the beginning of a log that was truncated or replaced.
- `--syslog-udp HOST:PORT` (docker compose): nginx sends a second access log by syslog
  (`access_log syslog:server=HOST:PORT,tag=gateway,nohostname json;`), one datagram per request,
  `<PRI>TIMESTAMP TAG: ` and the JSON line; the line is taken from the first `{`. A file shared
  between the two containers would grow for ever in its volume: nginx in one container cannot
  be told to reopen a file that a rotator in another has moved. Datagrams are counted as they
  arrive; one is lost only when the socket's receive buffer (asked for RECEIVE_BUFFER, capped
  by the kernel's net.core.rmem_max) overflows, or while the exporter is not running.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import socket
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    ProcessCollector,
    generate_latest,
)

from servicekit.metrics import method_label

GATEWAY = "gateway"  # the `service` of requests nginx answers itself (health, docs, errors)
BUCKETS = (0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
# Bytes read per scrape at most; a longer backlog is read by the next scrapes.
MAX_READ = 64 * 1024 * 1024
# The syslog socket's receive buffer: requests that arrive while a scrape holds the lock wait
# here, and what does not fit is dropped by the kernel.
RECEIVE_BUFFER = 8 * 1024 * 1024
MAX_DATAGRAM = 65535

# `location = /x { ... }` or `location ~ regex { ... }` without nested blocks (the template's
# `${NAME}` placeholders aside), and the upstream its proxy_pass names (`http://task_svc` or
# `http://task_svc/readyz`).
_LOCATION = re.compile(
    r"^\s*location\s+(=|~)\s+(\S+)\s*\{((?:[^{}]|\$\{[A-Z0-9_]+\})*)\}", re.MULTILINE
)
_PROXY_PASS = re.compile(r"\bproxy_pass\s+https?://([A-Za-z0-9_]+)")


_STREAMING = re.compile(r"\bproxy_buffering\s+off\s*;")


@dataclass(frozen=True)
class Route:
    service: str
    streaming: bool = False  # a live stream: its duration is how long the client listened


GATEWAY_ROUTE = Route(GATEWAY)


@dataclass(frozen=True)
class Routes:
    """Which service a request path goes to, as the gateway routes it."""

    exact: dict[str, Route]
    patterns: tuple[tuple[re.Pattern[str], Route], ...]

    @classmethod
    def from_nginx_conf(cls, text: str) -> Routes:
        exact: dict[str, Route] = {}
        patterns: list[tuple[re.Pattern[str], Route]] = []
        for match in _LOCATION.finditer(text):
            kind, where, body = match.groups()
            upstream = _PROXY_PASS.search(body)
            if upstream is None:
                continue
            route = Route(upstream.group(1).replace("_", "-"), bool(_STREAMING.search(body)))
            if kind == "=":
                exact.setdefault(where, route)
            else:
                patterns.append((re.compile(where), route))
        if not patterns:
            raise ValueError("no `location ~ ... { proxy_pass ... }` routes in the nginx config")
        return cls(exact, tuple(patterns))

    def route(self, uri: str) -> Route:
        path = uri.split("?", 1)[0]
        if path in self.exact:
            return self.exact[path]
        for pattern, route in self.patterns:
            if pattern.search(path):
                return route
        return GATEWAY_ROUTE

    def service(self, uri: str) -> str:
        return self.route(uri).service


def status_class(status: int) -> str:
    return f"{status // 100}xx" if 100 <= status <= 599 else "other"


class GatewayMetrics:
    """The exporter's metrics in a registry of their own."""

    def __init__(self, routes: Routes, registry: CollectorRegistry | None = None) -> None:
        self.routes = routes
        self.registry = registry or CollectorRegistry()
        self.duration = Histogram(
            "gateway_http_request_duration_seconds",
            "Requests through the gateway, from the first byte read to the last byte sent "
            "(nginx's request_time), by upstream service, method and status class",
            ["service", "http_request_method", "status_class"],
            buckets=BUCKETS,
            registry=self.registry,
        )
        self.requests = Counter(
            "gateway_http_requests_total",
            "Requests through the gateway by upstream service and response status code",
            ["service", "http_response_status_code"],
            registry=self.registry,
        )
        self.lines = Counter(
            "gateway_access_log_lines",
            "Access log lines read (from the file or as syslog datagrams): parsed, or invalid "
            "(not a JSON request line)",
            ["outcome"],
            registry=self.registry,
        )
        for outcome in ("parsed", "invalid"):
            self.lines.labels(outcome)
        # Children by label values already seen (labels() is the slow part of a line).
        self._parsed = self.lines.labels("parsed")
        self._durations: dict[tuple[str, str, int], Any] = {}
        self._requests: dict[tuple[str, int], Any] = {}

    def observe_line(self, line: bytes) -> None:
        entry = _parse(line)
        if entry is None:
            self.lines.labels("invalid").inc()
            return
        uri, method, status, seconds = entry
        route = self.routes.route(uri)
        if not route.streaming:
            key = (route.service, method_label(method), status // 100)
            histogram = self._durations.get(key)
            if histogram is None:
                labels = (route.service, key[1], status_class(status))
                histogram = self._durations[key] = self.duration.labels(*labels)
            histogram.observe(seconds)
        counter = self._requests.get((route.service, status))
        if counter is None:
            counter = self.requests.labels(route.service, str(status))
            self._requests[(route.service, status)] = counter
        counter.inc()
        self._parsed.inc()

    def observe_lines(self, lines: Iterable[bytes]) -> None:
        for line in lines:
            if line.strip():
                self.observe_line(line)


def _parse(line: bytes) -> tuple[str, str, int, float] | None:
    try:
        entry: Any = json.loads(line)
        uri, method = str(entry["uri"]), str(entry["method"])
        status, seconds = int(entry["status"]), float(entry["request_time"])
    except (ValueError, KeyError, TypeError, OverflowError):  # OverflowError: int(1e400)
        return None
    return uri, method, status, max(0.0, seconds)


class LogFollower:
    """New complete lines of a file that is appended to (and may be truncated or replaced)."""

    def __init__(self, path: Path, *, from_start: bool = False) -> None:
        self.path = path
        self.position = 0
        self.inode: int | None = None
        if not from_start:
            try:
                stat = path.stat()
            except FileNotFoundError:
                pass  # every line of a log that appears later is new
            else:
                self.position, self.inode = stat.st_size, stat.st_ino

    def read_lines(self) -> list[bytes]:
        try:
            handle = self.path.open("rb")
        except FileNotFoundError:
            return []
        with handle:
            stat = os.fstat(handle.fileno())
            if stat.st_ino != self.inode or stat.st_size < self.position:
                self.position, self.inode = 0, stat.st_ino  # a new or truncated log
            handle.seek(self.position)
            data = handle.read(MAX_READ)
        end = data.rfind(b"\n")
        if end < 0:
            return []  # no complete line yet: read the partial one when it is whole
        self.position += end + 1
        return data[:end].split(b"\n")


class Exporter:
    """Serves the metrics; with a log file, every scrape first counts the lines written since
    the last one, and syslog datagrams are counted as they arrive."""

    def __init__(self, log: Path | None, routes: Routes, *, from_start: bool = False) -> None:
        self.metrics = GatewayMetrics(routes)
        ProcessCollector(registry=self.metrics.registry)
        self.follower = None if log is None else LogFollower(log, from_start=from_start)
        self._lock = threading.Lock()

    def scrape(self) -> bytes:
        with self._lock:
            if self.follower is not None:
                self.metrics.observe_lines(self.follower.read_lines())
            return generate_latest(self.metrics.registry)

    def observe_datagram(self, datagram: bytes) -> None:
        with self._lock:
            self.metrics.observe_line(syslog_message(datagram))

    def server(self, host: str, port: int) -> ThreadingHTTPServer:
        exporter = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path.split("?", 1)[0] != "/metrics":
                    self.send_error(404, "only /metrics here")
                    return
                body = exporter.scrape()
                self.send_response(200)
                self.send_header("Content-Type", CONTENT_TYPE_LATEST)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # a line per scrape says nothing

        return ThreadingHTTPServer((host, port), Handler)


def syslog_message(datagram: bytes) -> bytes:
    """The JSON line of an nginx syslog datagram (`<190>Dec  3 14:00:00 gateway: {...}`), or
    nothing (an invalid line) when it has none."""
    start = datagram.find(b"{")
    return datagram[start:].strip() if start >= 0 else b""


def syslog_socket(host: str, port: int) -> socket.socket:
    """A UDP socket bound to host:port, with a receive buffer as large as the kernel allows up
    to RECEIVE_BUFFER."""
    family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER)
        sock.bind(address)
    except OSError:
        sock.close()
        raise
    return sock


def receive_syslog(sock: socket.socket, exporter: Exporter) -> None:
    """Count every datagram that arrives, until the socket is closed."""
    while True:
        try:
            datagram = sock.recv(MAX_DATAGRAM)
        except OSError:
            return
        exporter.observe_datagram(datagram)


def host_port(text: str) -> tuple[str, int]:
    """`HOST:PORT` (`0.0.0.0:9514`, `[::]:9514`) for argparse."""
    host, _, port = text.rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    if not host or not port.isdigit() or not 0 <= int(port) < 65536:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}")
    return host, int(port)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--access-log", type=Path, help="the JSON access log file to follow")
    source.add_argument(
        "--syslog-udp",
        type=host_port,
        metavar="HOST:PORT",
        help="receive the JSON access log as nginx's syslog datagrams on this UDP address",
    )
    parser.add_argument("--nginx-conf", type=Path, required=True, help="the gateway's config")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    routes = Routes.from_nginx_conf(args.nginx_conf.read_text())
    exporter = Exporter(args.access_log, routes)
    source = str(args.access_log)
    sock = None
    if args.syslog_udp is not None:
        sock = syslog_socket(*args.syslog_udp)
        buffer = sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
        address = f"{args.syslog_udp[0]}:{sock.getsockname()[1]}"
        source = f"syslog on udp {address} (receive buffer {buffer} bytes)"
        threading.Thread(target=receive_syslog, args=(sock, exporter), daemon=True).start()
    server = exporter.server(args.host, args.port)
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    print(f"gateway metrics on http://{args.host}:{args.port}/metrics from {source}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        if sock is not None:
            sock.close()


if __name__ == "__main__":
    main()
