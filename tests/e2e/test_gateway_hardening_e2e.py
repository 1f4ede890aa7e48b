"""The gateway against requests that are malformed, oversized or unusual: every answer nginx
produces itself is a problem+json with the right status, and a client's unsafe X-Request-ID
never reaches a response, a service or a log. Malformed requests are written on raw sockets:
HTTP clients refuse to send them."""

from __future__ import annotations

import contextlib
import json
import re
import socket
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

import httpx
import pytest

from blueprint_stack import Stack
from blueprint_stack.gateway import write_config
from blueprint_stack.install import nginx_binary
from blueprint_stack.supervisor import ManagedProcess, ProcessSpec, http_ready
from blueprint_stack.testing import json_log_lines, wait_for
from servicekit.devstack import free_port

pytestmark = pytest.mark.e2e

PROBLEM = "application/problem+json"
HOST = b"Host: gateway\r\nConnection: close\r\n"
# nginx's own $request_id: what the gateway puts in place of a client's unsafe id.
GENERATED_ID = re.compile(r"^[0-9a-f]{32}$")
API_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


@dataclass
class RawResponse:
    status: int
    headers: list[tuple[str, str]]
    body: bytes

    def header_values(self, name: str) -> list[str]:
        return [value for key, value in self.headers if key.lower() == name.lower()]


def raw_request(port: int, data: bytes) -> RawResponse:
    """Send `data` as it is and read the answer up to the close (every request here either asks
    for Connection: close or is one after which nginx closes)."""
    with socket.create_connection(("127.0.0.1", port), timeout=15) as sock:
        # The gateway may answer before reading everything, and close.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(data)
        received = b""
        while True:
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    assert status_line.startswith("HTTP/1.1 "), received[:200]
    headers = [tuple(line.split(": ", 1)) for line in header_lines]
    return RawResponse(int(status_line.split()[1]), headers, body)  # type: ignore[arg-type]


def assert_problem(resp: RawResponse | httpx.Response, status: int, code: str) -> dict[str, Any]:
    """A problem details answer: status, content type, the fields every problem has, and the
    one X-Request-ID header naming the same id as the body."""
    if isinstance(resp, httpx.Response):
        got_status, body = resp.status_code, resp.content
        content_types = resp.headers.get_list("content-type")
        request_ids = resp.headers.get_list("x-request-id")
    else:
        got_status, body = resp.status, resp.body
        content_types = resp.header_values("content-type")
        request_ids = resp.header_values("x-request-id")
    assert got_status == status, body[:300]
    assert len(content_types) == 1 and content_types[0].startswith(PROBLEM), content_types
    problem: dict[str, Any] = json.loads(body)
    assert problem["status"] == status
    assert problem["code"] == code, problem
    for key in ("type", "title", "detail"):
        assert problem.get(key), f"problem body lacks {key!r}: {problem}"
    assert request_ids == [problem["request_id"]]
    return problem


def service_entries(stack: Stack, service: str, path: str) -> list[dict[str, Any]]:
    return [
        entry
        for entry in json_log_lines(stack.config.log_dir / f"{service}.log")
        if entry.get("logger") == "servicekit.access" and entry.get("path") == path
    ]


def access_log_text(stack: Stack) -> str:
    return (stack.config.nginx_dir / "logs" / "access.log").read_text(errors="replace")


def probe_path(prefix: str = "/api/v1/tasks") -> str:
    return f"{prefix}/gateway-probe-{uuid.uuid4().hex}"


# --- methods --------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["FOO", "FOO123", "get", "Get", "PROPFIND", "M-SEARCH"])
def test_a_method_the_api_does_not_use_is_a_501_problem(stack: Stack, method: str) -> None:
    # Well-formed method tokens the platform does not recognise: 501, whether nginx could
    # parse them (FOO, PROPFIND) or not (a digit, a lower-case letter). Never nginx's HTML 500.
    path = probe_path()
    resp = raw_request(
        stack.config.gateway_port, f"{method} {path} HTTP/1.1\r\n".encode() + HOST + b"\r\n"
    )
    problem = assert_problem(resp, 501, "METHOD_NOT_IMPLEMENTED")
    assert "GET, HEAD, POST, PUT, PATCH, DELETE and OPTIONS" in problem["detail"]
    assert service_entries(stack, "task-svc", path) == []


@pytest.mark.parametrize("method", API_METHODS)
def test_the_api_methods_reach_the_service(
    stack: Stack, gateway: httpx.Client, method: str
) -> None:
    path = probe_path()
    resp = gateway.request(method, path)
    assert resp.status_code not in (501, 502), resp.text
    entry = wait_for(lambda: service_entries(stack, "task-svc", path), f"{method} in the log")
    assert entry[0]["http_method"] == method


def test_trace_is_a_405_problem(stack: Stack) -> None:
    # A method HTTP defines but the gateway never allows (nginx refuses it itself).
    resp = raw_request(
        stack.config.gateway_port, b"TRACE /api/v1/tasks HTTP/1.1\r\n" + HOST + b"\r\n"
    )
    assert_problem(resp, 405, "METHOD_NOT_ALLOWED")


# --- every error nginx answers by itself ----------------------------------------------------

BUILT_IN_ERRORS = [
    pytest.param(
        b"GET /api/v1/tasks HTTP/1.1 trailing-garbage\r\n" + HOST + b"\r\n",
        400,
        "BAD_REQUEST",
        id="400-malformed-request-line",
    ),
    pytest.param(
        b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03\r\n\r\n",
        400,
        "BAD_REQUEST",
        id="400-tls-handshake-on-plain-http",
    ),
    pytest.param(
        b"GET /health HTTP/1.1\r\nConnection: close\r\n\r\n", 400, "BAD_REQUEST", id="400-no-host"
    ),
    pytest.param(
        b"GET /health HTTP/1.1\r\n" + HOST + b"X-Probe: a\x00b\r\n\r\n",
        400,
        "BAD_REQUEST",
        id="400-nul-in-a-header",
    ),
    pytest.param(
        b"POST /api/v1/tasks HTTP/1.1\r\n" + HOST + b"Content-Length: ten\r\n\r\n",
        400,
        "BAD_REQUEST",
        id="400-invalid-content-length",
    ),
    pytest.param(
        b"POST /api/v1/tasks HTTP/1.1\r\n"
        + HOST
        + b"Content-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        400,
        "BAD_REQUEST",
        id="400-content-length-and-chunked",
    ),
    pytest.param(
        b"GET /api/v1/tasks?q=" + b"q" * 9000 + b" HTTP/1.1\r\n" + HOST + b"\r\n",
        414,
        "URI_TOO_LONG",
        id="414-request-line-over-8k",
    ),
    pytest.param(
        b"GET /api/v1/tasks HTTP/1.1\r\n"
        + HOST
        + b"Authorization: Bearer "
        + b"t" * 100_000
        + b"\r\n\r\n",
        431,
        "HEADER_TOO_LARGE",
        id="431-100KB-bearer-token",
    ),
    pytest.param(
        b"GET /api/v1/tasks HTTP/1.1\r\n" + HOST + b"X-Request-ID: " + b"r" * 10_240 + b"\r\n\r\n",
        431,
        "HEADER_TOO_LARGE",
        id="431-10KB-request-id",
    ),
    pytest.param(
        b"GET /api/v1/tasks HTTP/1.1\r\n"
        + HOST
        + b"".join(b"X-Probe-%d: %s\r\n" % (i, b"p" * 7000) for i in range(5))
        + b"\r\n",
        431,
        "HEADER_TOO_LARGE",
        id="431-headers-over-4x8k",
    ),
    pytest.param(b"GET /health HTTP/2.0\r\n" + HOST + b"\r\n", 505, "HTTP_VERSION_NOT_SUPPORTED"),
    pytest.param(
        b"POST /api/v1/tasks HTTP/1.1\r\n" + HOST + b"Transfer-Encoding: gzip\r\n\r\n",
        501,
        "NOT_IMPLEMENTED",
        id="501-transfer-encoding-gzip",
    ),
    pytest.param(
        b"GET /openapi.json HTTP/1.1\r\n"
        + HOST
        + b"If-Unmodified-Since: Thu, 01 Jan 1970 00:00:01 GMT\r\n\r\n",
        412,
        "PRECONDITION_FAILED",
        id="412-documents-precondition",
    ),
    pytest.param(
        b"POST /openapi.json HTTP/1.1\r\n" + HOST + b"Content-Length: 0\r\n\r\n",
        405,
        "METHOD_NOT_ALLOWED",
        id="405-post-to-a-document",
    ),
    pytest.param(
        b"GET /nothing-here.html HTTP/1.1\r\n" + HOST + b"\r\n",
        404,
        "NOT_FOUND",
        id="404-path-ending-in-html",
    ),
    pytest.param(
        b"GET /_problem/500 HTTP/1.1\r\n" + HOST + b"\r\n",
        404,
        "NOT_FOUND",
        id="404-error-pages-are-internal",
    ),
]


@pytest.mark.parametrize(("request_bytes", "status", "code"), BUILT_IN_ERRORS)
def test_errors_nginx_answers_itself_are_problems(
    stack: Stack, request_bytes: bytes, status: int, code: str
) -> None:
    resp = raw_request(stack.config.gateway_port, request_bytes)
    problem = assert_problem(resp, status, code)
    # Nothing the client sent is echoed: the id is the gateway's, the detail a fixed text.
    assert GENERATED_ID.match(problem["request_id"])
    if status in (414, 431):
        assert "8k" in problem["detail"]


def test_a_chunked_body_over_the_limit_is_a_413_naming_it(gateway: httpx.Client) -> None:
    # No Content-Length: the limit is found while the body streams in, inside the route.
    def body() -> Iterator[bytes]:
        for _ in range(17):
            yield b"x" * 65536

    resp = gateway.post(probe_path(), content=body(), headers={"Content-Type": "application/json"})
    assert "(1m)" in assert_problem(resp, 413, "PAYLOAD_TOO_LARGE")["detail"]


def test_a_bearer_token_of_a_few_KB_reaches_the_service(
    stack: Stack, gateway: httpx.Client
) -> None:
    # The header limit leaves room for real JWTs (a few KB; this one is 6 KB).
    path = probe_path()
    resp = gateway.get(path, headers={"Authorization": "Bearer " + "t" * 6000})
    assert resp.status_code != 431, resp.text
    wait_for(lambda: service_entries(stack, "task-svc", path), "the request in task-svc's log")


# --- X-Request-ID ---------------------------------------------------------------------------


def _marker() -> str:
    return f"rid{uuid.uuid4().hex}"


UNSAFE_IDS = [
    pytest.param(lambda m: f"{m} with spaces".encode(), id="spaces"),
    pytest.param(lambda m: (m + '"}},"admin":true,"x":{"').encode(), id="json-quotes"),
    pytest.param(lambda m: f"{m}<script>alert(1)</script>".encode(), id="markup"),
    pytest.param(lambda m: f"{m}\\u000a".encode(), id="backslash"),
    pytest.param(lambda m: f"{m}-ünïcödé".encode(), id="non-ascii"),
    pytest.param(lambda m: (m * 10)[:129].encode(), id="129-chars"),
    pytest.param(lambda m: (m * 300)[:8000].encode(), id="8000-chars"),
]


@pytest.mark.parametrize("make_id", UNSAFE_IDS)
def test_an_unsafe_request_id_is_replaced_everywhere(
    stack: Stack, gateway: httpx.Client, make_id: Any
) -> None:
    marker = _marker()
    unsafe: bytes = make_id(marker)
    path = probe_path()
    resp = gateway.get(path, headers={b"X-Request-ID": unsafe})
    rid = resp.headers["x-request-id"]
    assert GENERATED_ID.match(rid), rid
    assert resp.headers.get_list("x-request-id") == [rid]
    assert resp.json()["request_id"] == rid
    # The service was given the gateway's id, and logged it.
    entry = wait_for(lambda: service_entries(stack, "task-svc", path), "the service's log line")
    assert entry[0]["request_id"] == rid
    access = wait_for(
        lambda: [line for line in access_log_text(stack).splitlines() if path in line],
        "the access log line",
    )
    assert json.loads(access[0])["request_id"] == rid
    # The client's value is in no log.
    assert marker not in access_log_text(stack)
    service_log = (stack.config.log_dir / "task-svc.log").read_text(errors="replace")
    assert marker not in service_log


def test_a_request_id_with_a_carriage_return_is_a_400_and_never_echoed(stack: Stack) -> None:
    marker = _marker()
    resp = raw_request(
        stack.config.gateway_port,
        f"GET {probe_path()} HTTP/1.1\r\n".encode()
        + HOST
        + f"X-Request-ID: {marker}\rInjected: yes\r\n\r\n".encode(),
    )
    problem = assert_problem(resp, 400, "BAD_REQUEST")
    assert GENERATED_ID.match(problem["request_id"])
    assert not resp.header_values("injected")
    assert marker.encode() not in resp.body
    assert marker not in " ".join(value for _, value in resp.headers)


def test_a_10KB_request_id_gets_a_431_with_the_gateways_id(stack: Stack) -> None:
    marker = _marker()
    resp = raw_request(
        stack.config.gateway_port,
        b"GET /api/v1/tasks HTTP/1.1\r\n"
        + HOST
        + b"X-Request-ID: "
        + (marker * 300)[:10_240].encode()
        + b"\r\n\r\n",
    )
    problem = assert_problem(resp, 431, "HEADER_TOO_LARGE")
    assert GENERATED_ID.match(problem["request_id"])
    assert marker not in access_log_text(stack)


def test_a_plain_128_character_request_id_is_kept(stack: Stack, gateway: httpx.Client) -> None:
    rid = ("abc-" + uuid.uuid4().hex * 4)[:128]
    path = probe_path()
    resp = gateway.get(path, headers={"X-Request-ID": rid})
    assert resp.headers.get_list("x-request-id") == [rid]
    entry = wait_for(lambda: service_entries(stack, "task-svc", path), "the service's log line")
    assert entry[0]["request_id"] == rid


def test_two_request_ids_give_one_safe_id(stack: Stack) -> None:
    path = probe_path()
    resp = raw_request(
        stack.config.gateway_port,
        f"GET {path} HTTP/1.1\r\n".encode()
        + HOST
        + b"X-Request-ID: first-id\r\nX-Request-ID: second id\r\n\r\n",
    )
    [rid] = resp.header_values("x-request-id")
    assert re.fullmatch(r"[A-Za-z0-9._:-]{1,128}", rid)
    entry = wait_for(lambda: service_entries(stack, "task-svc", path), "the service's log line")
    assert entry[0]["request_id"] == rid


# --- upstreams that are down or do not answer -----------------------------------------------


@pytest.fixture(scope="module")
def gateway_without_services(stack: Stack) -> Iterator[int]:
    """A second gateway from the same template: qc-svc's upstream accepts connections and never
    answers (read timeout 1s), the other three have nothing listening."""
    silent = socket.create_server(("127.0.0.1", 0))  # the kernel completes handshakes; no reply
    cfg = replace(
        stack.config,
        var_dir=stack.config.var_dir / "gateway-without-services",
        gateway_port=free_port(),
        service_ports={name: free_port() for name in stack.config.service_ports},
    )
    conf = write_config(
        cfg,
        {
            "GATEWAY_PROXY_READ_TIMEOUT": "1s",
            "QC_SVC_UPSTREAM": f"127.0.0.1:{silent.getsockname()[1]}",
        },
    )
    nginx = nginx_binary()
    assert nginx is not None
    spec = ProcessSpec(
        "gateway-without-services",
        [nginx, "-p", str(cfg.nginx_dir), "-c", str(conf)],
        ready=http_ready(f"http://127.0.0.1:{cfg.gateway_port}/health"),
    )
    process = ManagedProcess(spec, stack.config.log_dir, stack.console)
    process.start()
    try:
        process.wait_ready(30)
        yield cfg.gateway_port
    finally:
        process.stop()
        silent.close()


@pytest.mark.parametrize(
    ("path", "status", "code"),
    [
        ("/api/v1/templates", 502, "BAD_GATEWAY"),
        ("/health/template", 502, "BAD_GATEWAY"),
        ("/api/v1/projects", 502, "BAD_GATEWAY"),
        ("/api/v1/tasks", 502, "BAD_GATEWAY"),
        ("/api/v1/deliverables", 502, "BAD_GATEWAY"),
        ("/health/task", 502, "BAD_GATEWAY"),
        ("/api/v1/webhooks", 502, "BAD_GATEWAY"),
        ("/api/v1/notifications", 502, "BAD_GATEWAY"),
        ("/health/notify", 502, "BAD_GATEWAY"),
        ("/api/v1/inspections", 504, "GATEWAY_TIMEOUT"),
        ("/api/v1/qc", 504, "GATEWAY_TIMEOUT"),
        ("/health/qc", 504, "GATEWAY_TIMEOUT"),
    ],
)
def test_an_upstream_down_or_silent_is_a_problem(
    gateway_without_services: int, path: str, status: int, code: str
) -> None:
    with httpx.Client(base_url=f"http://127.0.0.1:{gateway_without_services}") as client:
        for method in ("GET", "POST"):
            resp = client.request(method, path, json={} if method == "POST" else None)
            assert_problem(resp, status, code)
