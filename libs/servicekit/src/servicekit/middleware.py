"""Per-request context: request id in and out, RED metrics by route template, access log, and
the 500 answer for an unexpected error.

A plain ASGI middleware (not BaseHTTPMiddleware): it costs a few microseconds per request.

An unexpected error is answered here and not re-raised. Starlette's outermost error middleware
answers too, but then re-raises, and the server closes the kept-alive connection after the
answer: the gateway, which pools connections to the service, could then send the next client's
request onto a connection being closed and answer that unrelated request with a 502.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from servicekit.context import request_id_var, traceparent_var
from servicekit.errors import internal_error_response
from servicekit.metrics import (
    HTTP_DURATION,
    HTTP_IN_FLIGHT,
    HTTP_REQUESTS,
    HTTP_SERVER_DURATION,
    method_label,
)

_SAFE_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")
access_log = logging.getLogger("servicekit.access")
_QUIET_ROUTES = {"/metrics", "/healthz", "/readyz"}


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp, *, service: str) -> None:
        self.app = app
        self.service = service
        self.in_flight = HTTP_IN_FLIGHT.labels(service)
        # Label children by (method, route[, status]), resolved once: `labels()` takes a lock and
        # builds a key on every call, which the hottest routes would pay per request.
        self._counted: dict[tuple[str, str, int], tuple[Any, Any]] = {}
        self._timed: dict[tuple[str, str], Any] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = None
        traceparent = None
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                candidate = value.decode("latin-1")
                if _SAFE_ID.match(candidate):
                    request_id = candidate
            elif name == b"traceparent":
                traceparent = value.decode("latin-1")
        if request_id is None:
            request_id = uuid.uuid4().hex
        # Each request runs in its own task with a copied context, so nothing needs resetting;
        # leaving the values set lets the 500 handler (outside this middleware) still see them.
        request_id_var.set(request_id)
        if traceparent:
            traceparent_var.set(traceparent)
        rid_header = (b"x-request-id", request_id.encode())
        status = 500
        started = False

        async def send_wrapper(message: Message) -> None:
            nonlocal status, started
            if message["type"] == "http.response.start":
                started = True
                status = message["status"]
                headers = [h for h in message.get("headers", []) if h[0].lower() != b"x-request-id"]
                headers.append(rid_header)
                message["headers"] = headers
            await send(message)

        start = time.perf_counter()
        self.in_flight.inc()
        try:
            await self.app(scope, receive, send_wrapper)
        except Exception as exc:
            if started:
                raise  # half an answer is out: only closing the connection can end it
            response = internal_error_response(scope["method"], scope["path"], exc)
            await response(scope, receive, send_wrapper)
        finally:
            self.in_flight.dec()
            elapsed = time.perf_counter() - start
            route_obj: Any = scope.get("route")
            route = getattr(route_obj, "path", None) or "<unmatched>"
            method = method_label(scope["method"])
            counter, server_duration = self._by_status(method, route, status)
            counter.inc()
            server_duration.observe(elapsed)
            self._timer(method, route).observe(elapsed)
            if route not in _QUIET_ROUTES:
                access_log.info(
                    "%s %s %s",
                    scope["method"],
                    scope["path"],
                    status,
                    extra={
                        "http_method": scope["method"],
                        "path": scope["path"],
                        "route": route,
                        "status": status,
                        "duration_ms": round(elapsed * 1000, 2),
                    },
                )

    def _by_status(self, method: str, route: str, status: int) -> tuple[Any, Any]:
        children = self._counted.get((method, route, status))
        if children is None:
            labels = (self.service, method, route, str(status))
            children = (HTTP_REQUESTS.labels(*labels), HTTP_SERVER_DURATION.labels(*labels))
            self._counted[(method, route, status)] = children
        return children

    def _timer(self, method: str, route: str) -> Any:
        child = self._timed.get((method, route))
        if child is None:
            child = HTTP_DURATION.labels(self.service, method, route)
            self._timed[(method, route)] = child
        return child
