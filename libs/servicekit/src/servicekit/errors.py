"""RFC 9457 problem details: the AppError hierarchy and the handlers that render it.

Every refusal leaves a service as `application/problem+json` with a stable `code`. Request
validation lists each offending field. A crash is a 500 problem without a stack trace (the trace
goes to the log, under the request id).
"""

from __future__ import annotations

import logging
from typing import Any

import asyncpg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from sqlalchemy.exc import DBAPIError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from servicekit.context import request_id_var
from servicekit.jsonutil import dumps
from servicekit.metrics import count_problem

PROBLEM_JSON = "application/problem+json"
log = logging.getLogger("servicekit.errors")


class AppError(Exception):
    """Base of every error a service raises on purpose. Subclasses set status, code and title."""

    status: int = 400
    code: str = "BAD_REQUEST"
    title: str = "Bad request"

    def __init__(
        self,
        detail: str | None = None,
        *,
        code: str | None = None,
        status: int | None = None,
        title: str | None = None,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status
        if title is not None:
            self.title = title
        self.headers = headers or {}
        self.extra = extra


class BadRequest(AppError):
    status, code, title = 400, "BAD_REQUEST", "Bad request"


class Unauthorized(AppError):
    status, code, title = 401, "UNAUTHORIZED", "Authentication required"

    def __init__(self, detail: str | None = None, **kw: Any) -> None:
        kw.setdefault("headers", {"WWW-Authenticate": 'Bearer realm="blueprint"'})
        super().__init__(detail, **kw)


class Forbidden(AppError):
    status, code, title = 403, "FORBIDDEN", "Forbidden"


class NotFound(AppError):
    status, code, title = 404, "NOT_FOUND", "Not found"


class Conflict(AppError):
    status, code, title = 409, "CONFLICT", "Conflict"


class VersionConflict(Conflict):
    """The row moved on since the client read it; nothing was changed.

    One shape everywhere: the problem carries `current_row_version` and `current_status`, and an
    `ETag` header of the current version. 409 when the body named the version
    (`expected_row_version`); 412 Precondition Failed when an `If-Match` header did (RFC 9110);
    the code is `VERSION_CONFLICT` either way.
    """

    code, title = "VERSION_CONFLICT", "Version conflict"

    def __init__(
        self,
        detail: str,
        *,
        current_row_version: int,
        current_status: str,
        from_header: bool = False,
    ) -> None:
        super().__init__(
            detail,
            status=412 if from_header else 409,
            title="Precondition failed" if from_header else None,
            headers={"ETag": f'"{current_row_version}"'},
            current_row_version=current_row_version,
            current_status=str(current_status),
        )
        self.current_row_version = current_row_version
        self.current_status = str(current_status)


class Unprocessable(AppError):
    status, code, title = 422, "UNPROCESSABLE", "Unprocessable request"


class UpstreamUnavailable(AppError):
    status, code, title = 503, "UPSTREAM_UNAVAILABLE", "A service this request needs is unavailable"


class UpstreamError(AppError):
    status, code, title = 502, "UPSTREAM_ERROR", "A service this request needs answered wrongly"


def problem_body(
    *, status: int, code: str, title: str, detail: str, instance: str | None = None, **extra: Any
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": f"/problems/{code.lower().replace('_', '-')}",
        "title": title,
        "status": status,
        "detail": detail,
        "code": code,
    }
    if instance:
        body["instance"] = instance
    rid = request_id_var.get()
    if rid:
        body["request_id"] = rid
    body.update(extra)
    errors = body.get("errors")
    if isinstance(errors, list):
        # Every field error has the same shape (in, field, message, type), whoever raised it.
        body["errors"] = [
            e if not isinstance(e, dict) or "type" in e else {**e, "type": "value_error"}
            for e in errors
        ]
    return body


def problem_response(
    *,
    status: int,
    code: str,
    title: str,
    detail: str,
    instance: str | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> Response:
    body = problem_body(
        status=status, code=code, title=title, detail=detail, instance=instance, **extra
    )
    count_problem(code, status)
    hdrs = dict(headers or {})
    rid = request_id_var.get()
    if rid:
        hdrs.setdefault("X-Request-ID", rid)
    return Response(dumps(body), status_code=status, media_type=PROBLEM_JSON, headers=hdrs)


def _field_path(loc: tuple[Any, ...] | list[Any]) -> tuple[str, str]:
    """('body', 'payload', 'assign', 'assign_to') -> ('body', 'payload.assign_to')."""
    parts = list(loc)
    where = str(parts[0]) if parts else "body"
    rest = parts[1:] if where in {"body", "query", "path", "header", "cookie"} else parts
    # Drop discriminator tags pydantic puts in the location of tagged unions, e.g. 'assign'.
    cleaned: list[str] = []
    for p in rest:
        if isinstance(p, int):
            cleaned.append(f"[{p}]")
        else:
            cleaned.append(str(p))
    path = ""
    for p in cleaned:
        path += p if p.startswith("[") else (f".{p}" if path else p)
    return where, path or where


def _message(err: dict[str, Any]) -> str:
    kind = err.get("type", "")
    msg = str(err.get("msg", "invalid"))
    if kind == "extra_forbidden":
        return "unknown field: remove it (this endpoint refuses fields it does not define)"
    if kind == "missing":
        return "required field is missing"
    return msg


def validation_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    out = []
    for err in exc.errors():
        where, field = _field_path(tuple(err.get("loc", ())))
        item: dict[str, Any] = {"in": where, "field": field, "message": _message(err)}
        item["type"] = err.get("type", "value_error")
        out.append(item)
    return out


async def _app_error_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, AppError)
    return problem_response(
        status=exc.status,
        code=exc.code,
        title=exc.title,
        detail=exc.detail,
        instance=request.url.path,
        headers=exc.headers,
        **exc.extra,
    )


async def _validation_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errors = validation_errors(exc)
    if any(e["type"] == "json_invalid" for e in errors):
        return problem_response(
            status=400,
            code="BODY_NOT_JSON",
            title="Request body is not valid JSON",
            detail="the request body could not be parsed as JSON: send a JSON object",
            instance=request.url.path,
            errors=errors,
        )
    fields = ", ".join(f"{e['field']} ({e['message']})" for e in errors[:5])
    more = f" and {len(errors) - 5} more" if len(errors) > 5 else ""
    return problem_response(
        status=422,
        code="VALIDATION_FAILED",
        title="Request is not valid",
        detail=f"invalid fields: {fields}{more}",
        instance=request.url.path,
        errors=errors,
    )


_HTTP_CODES = {
    400: ("BAD_REQUEST", "Bad request"),
    401: ("UNAUTHORIZED", "Authentication required"),
    403: ("FORBIDDEN", "Forbidden"),
    404: ("NOT_FOUND", "Not found"),
    405: ("METHOD_NOT_ALLOWED", "Method not allowed"),
    406: ("NOT_ACCEPTABLE", "Not acceptable"),
    413: ("PAYLOAD_TOO_LARGE", "Payload too large"),
    415: ("UNSUPPORTED_MEDIA_TYPE", "Unsupported media type"),
    429: ("RATE_LIMITED", "Too many requests"),
}


async def _http_exception_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    code, title = _HTTP_CODES.get(exc.status_code, ("HTTP_ERROR", "HTTP error"))
    detail = exc.detail if isinstance(exc.detail, str) else title
    if exc.status_code == 404 and detail == "Not Found":
        detail = f"no resource at {request.method} {request.url.path}"
    if exc.status_code == 405:
        detail = f"{request.method} is not allowed on {request.url.path}"
    return problem_response(
        status=exc.status_code,
        code=code,
        title=title,
        detail=detail,
        instance=request.url.path,
        headers=dict(exc.headers or {}),
    )


def internal_error_response(method: str, path: str, exc: BaseException) -> Response:
    """The 500 problem for an unexpected error, which is logged with its trace (never sent)."""
    log.error("unhandled error on %s %s", method, path, exc_info=exc)
    return problem_response(
        status=500,
        code="INTERNAL_ERROR",
        title="Internal server error",
        detail="the server failed to handle this request; quote the request_id when reporting it",
        instance=path,
    )


async def _unhandled_handler(request: Request, exc: Exception) -> Response:
    return internal_error_response(request.method, request.url.path, exc)


def _causes(exc: BaseException) -> list[BaseException]:
    """The exception and what it wraps (SQLAlchemy's `orig`, `__cause__`), outermost first."""
    seen: set[int] = set()
    out: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        out.append(current)
        current = getattr(current, "orig", None) or current.__cause__
    return out


def _is_data_error(exc: BaseException) -> bool:
    """A value the database refused as data (SQLSTATE class 22: out of range, bad encoding,
    invalid datetime) or asyncpg refused to encode as a parameter, wherever it is wrapped."""
    return any(
        isinstance(e, asyncpg.exceptions.DataError)
        or str(getattr(e, "sqlstate", "") or "").startswith("22")
        for e in _causes(exc)
    )


# A deadlock (40P01) or a serialization failure (40001): PostgreSQL rolled the whole transaction
# back, so nothing of the request was applied and sending it again is safe.
_TRANSIENT_SQLSTATES = frozenset({"40P01", "40001"})


def is_write_collision(exc: BaseException) -> bool:
    """A deadlock or serialization failure, wherever it is wrapped: safe to try again."""
    return any(str(getattr(e, "sqlstate", "") or "") in _TRANSIENT_SQLSTATES for e in _causes(exc))


async def _database_error_handler(request: Request, exc: Exception) -> Response:
    """The last line of defence for values no schema bounded: a 422, never a 500. Schemas bound
    what they know (integers to the column type, text without NUL); this catches the rest.

    Two writes that collided (a deadlock, a serialization failure) are a 503 with Retry-After:
    the database rolled the request back whole, so the client sends it again (with the same
    client_event_id or Idempotency-Key)."""
    if is_write_collision(exc):
        path = request.url.path
        log.warning("concurrent writes collided on %s %s: %s", request.method, path, exc)
        return problem_response(
            status=503,
            code="WRITE_COLLISION",
            title="Concurrent writes collided",
            detail="this request collided with another write and was rolled back as a whole; "
            "nothing of it was applied: send it again",
            instance=request.url.path,
            headers={"Retry-After": "1"},
        )
    if not _is_data_error(exc):
        return internal_error_response(request.method, request.url.path, exc)
    log.warning("database refused a value on %s %s: %s", request.method, request.url.path, exc)
    return problem_response(
        status=422,
        code="VALUE_OUT_OF_RANGE",
        title="A value cannot be stored",
        detail="a value in the request is outside what can be stored (a number too large, a "
        "date beyond the calendar's range or text that cannot be encoded): check the fields",
        instance=request.url.path,
    )


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(AppError, _app_error_handler)
    app.add_exception_handler(RequestValidationError, _validation_handler)
    app.add_exception_handler(StarletteHTTPException, _http_exception_handler)
    app.add_exception_handler(DBAPIError, _database_error_handler)
    app.add_exception_handler(asyncpg.exceptions.DataError, _database_error_handler)
    app.add_exception_handler(asyncpg.exceptions.TransactionRollbackError, _database_error_handler)
    app.add_exception_handler(Exception, _unhandled_handler)
