"""Database spans from the engine's own cursor events.

The OpenTelemetry SQLAlchemy instrumentation declares `sqlalchemy<2.1`, so with SQLAlchemy 2.1 it
refuses to instrument anything and traces had no database spans. The engine's cursor events are
all it needs, and they are stable across SQLAlchemy versions: one CLIENT span per statement,
named `<OPERATION> <database>` with the database semantic-convention attributes. Parameters are
never recorded (they carry user data); the statement text is.

Async engines run these events inside the request's context (SQLAlchemy's greenlets share it), so
each span is a child of the request's span. Statements run on the pool's asyncpg connection
itself (`servicekit.db.driver_transaction`) bypass the engine's events: asyncpg's query logger
gives them the same spans (`driver_span_logger`).
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Callable
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode
from sqlalchemy import event
from sqlalchemy.engine import Engine

_SPAN_KEY = "_servicekit_db_span"
_tracer = trace.get_tracer("servicekit.db")
_MAX_STATEMENT = 2000
_instrumented: weakref.WeakSet[Engine] = weakref.WeakSet()


def _operation(statement: str) -> str:
    word = statement.lstrip().split(None, 1)
    return word[0].upper() if word else "SQL"


def instrument_engine(engine: Engine) -> bool:
    """Emit a span per statement run on `engine` (the `sync_engine` of an async engine).

    Returns False when the engine was already instrumented (calling twice adds nothing).
    """
    if event.contains(engine, "before_cursor_execute", _before):
        return False
    event.listen(engine, "before_cursor_execute", _before)
    event.listen(engine, "after_cursor_execute", _after)
    event.listen(engine, "handle_error", _error)
    _instrumented.add(engine)
    return True


def _attributes(url: Any, statement: str, operation: str) -> dict[str, Any]:
    return {
        "db.system": "postgresql",
        "db.name": url.database or "",
        "db.operation": operation,
        "db.statement": statement[:_MAX_STATEMENT],
        "server.address": url.host or "",
        "server.port": url.port or 5432,
    }


def driver_span_logger(engine: Engine) -> Callable[[Any], None] | None:
    """An asyncpg query logger giving each statement its span, as `engine`'s statements get
    theirs; None when `engine` is not instrumented (tracing is off).

    asyncpg calls it soon after each statement, in the statement's context (so the span is a
    child of the request's), with the statement's duration: the span is dated back to its
    start.
    """
    if engine not in _instrumented:
        return None
    url = engine.url

    def log(record: Any) -> None:
        end = time.time_ns()
        operation = _operation(record.query)
        span = _tracer.start_span(
            f"{operation} {url.database}",
            kind=SpanKind.CLIENT,
            attributes=_attributes(url, record.query, operation),
            start_time=end - int(record.elapsed * 1e9),
        )
        if record.exception is not None:
            span.record_exception(record.exception)
            span.set_status(Status(StatusCode.ERROR, type(record.exception).__name__))
        span.end(end_time=end)

    return log


def _before(
    conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool
) -> None:
    if context is None:
        return
    url = conn.engine.url
    operation = _operation(statement)
    span = _tracer.start_span(
        f"{operation} {url.database}",
        kind=SpanKind.CLIENT,
        attributes=_attributes(url, statement, operation),
    )
    setattr(context, _SPAN_KEY, span)


def _after(
    conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool
) -> None:
    span = getattr(context, _SPAN_KEY, None)
    if span is not None:
        span.end()
        setattr(context, _SPAN_KEY, None)


def _error(exception_context: Any) -> None:
    context = exception_context.execution_context
    span = getattr(context, _SPAN_KEY, None) if context is not None else None
    if span is None:
        return
    error = exception_context.original_exception
    span.record_exception(error)
    span.set_status(Status(StatusCode.ERROR, type(error).__name__))
    span.end()
    setattr(context, _SPAN_KEY, None)
