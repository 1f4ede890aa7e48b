"""Request limits every service enforces before its routes see a request.

- Headers larger than `max_request_header_bytes` in all answer 431: a 10 MB Authorization header
  is refused by the service itself, not only by the gateway in front of it.
- A body larger than `max_request_body_bytes` answers 413, read no further than the limit (a
  declared Content-Length over it is refused before a byte of the body is read).
- Text with the NUL character (U+0000) answers 422 naming the field: PostgreSQL cannot store it
  in text or jsonb, so no service can accept it, and refusing it here keeps every route from
  failing on it later. Checked in the query string, the path and JSON bodies; the body check
  costs one substring search unless the body really holds an escaped NUL.

A plain ASGI middleware: the body is read once here and handed on to the app unchanged.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from servicekit.errors import problem_response

_BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_NUL_MESSAGE = "must not contain the NUL character (U+0000)"
_MAX_REPORTED = 10


class RequestLimitsMiddleware:
    def __init__(self, app: ASGIApp, *, max_header_bytes: int, max_body_bytes: int) -> None:
        self.app = app
        self.max_header_bytes = max_header_bytes
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        header_bytes = 0
        declared_length = -1
        for name, value in scope["headers"]:
            header_bytes += len(name) + len(value) + 4
            if name == b"content-length" and value.isdigit():
                declared_length = int(value)
        if header_bytes > self.max_header_bytes:
            await self._refuse_headers(scope, send, header_bytes)
            return
        nul_errors = _nul_in_target(scope)
        if nul_errors:
            await _refuse_nul(scope, send, nul_errors)
            return
        if scope["method"] not in _BODY_METHODS:
            await self.app(scope, receive, send)
            return
        if declared_length > self.max_body_bytes:
            await self._refuse_body(scope, send)
            return
        body = await self._read_body(receive)
        if body is None:
            await self._refuse_body(scope, send)
            return
        if b"\\u0000" in body:
            nul_errors = _nul_in_json(body)
            if nul_errors:
                await _refuse_nul(scope, send, nul_errors)
                return
        await self.app(scope, _replay(body, receive), send)

    async def _read_body(self, receive: Receive) -> bytes | None:
        """The whole body, or None once it grows past the limit."""
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    async def _refuse_headers(self, scope: Scope, send: Send, size: int) -> None:
        response = problem_response(
            status=431,
            code="REQUEST_HEADERS_TOO_LARGE",
            title="Request header fields too large",
            detail=f"the request's headers take {size} bytes; at most {self.max_header_bytes} "
            "are accepted (a bearer token is a few KB)",
            instance=scope["path"],
            limit=self.max_header_bytes,
        )
        await response(scope, _no_receive, send)

    async def _refuse_body(self, scope: Scope, send: Send) -> None:
        response = problem_response(
            status=413,
            code="PAYLOAD_TOO_LARGE",
            title="Payload too large",
            detail=f"the request body is larger than {self.max_body_bytes} bytes",
            instance=scope["path"],
            limit=self.max_body_bytes,
        )
        await response(scope, _no_receive, send)


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


async def _no_receive() -> Message:
    return {"type": "http.disconnect"}


def _nul_in_target(scope: Scope) -> list[dict[str, str]]:
    errors: list[dict[str, str]] = []
    if "\x00" in scope["path"]:
        errors.append(_nul_error("path", "path"))
    query: bytes = scope.get("query_string", b"")
    if b"%00" in query:
        for name, value in parse_qsl(query.decode("latin-1"), keep_blank_values=True):
            if "\x00" in name or "\x00" in value:
                errors.append(_nul_error("query", name.replace("\x00", "\\u0000")))
    return errors[:_MAX_REPORTED]


def _nul_in_json(body: bytes) -> list[dict[str, str]]:
    """Where an escaped NUL lands in a JSON body (empty when the body is not JSON: the route's
    own parsing then answers for it, or when the escape was only text, as in "\\\\u0000")."""
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        return []
    errors: list[dict[str, str]] = []
    stack: list[tuple[str, Any]] = [("", document)]
    while stack and len(errors) < _MAX_REPORTED:
        path, value = stack.pop()
        if isinstance(value, str):
            if "\x00" in value:
                errors.append(_nul_error("body", path or "body"))
        elif isinstance(value, dict):
            for key, item in value.items():
                if "\x00" in key:
                    errors.append(_nul_error("body", f"{path}.<key>" if path else "<key>"))
                child = key.replace("\x00", "\\u0000")
                stack.append((f"{path}.{child}" if path else child, item))
        elif isinstance(value, list):
            stack.extend((f"{path}[{i}]", item) for i, item in enumerate(value))
    return errors


def _nul_error(where: str, field: str) -> dict[str, str]:
    return {"in": where, "field": field, "message": _NUL_MESSAGE, "type": "string_nul"}


async def _refuse_nul(scope: Scope, send: Send, errors: list[dict[str, str]]) -> None:
    fields = ", ".join(f"{e['field']} ({e['in']})" for e in errors)
    response = problem_response(
        status=422,
        code="VALIDATION_FAILED",
        title="Request is not valid",
        detail=f"text {_NUL_MESSAGE}: {fields}",
        instance=scope["path"].replace("\x00", "\\u0000"),
        errors=errors,
    )
    await response(scope, _no_receive, send)
