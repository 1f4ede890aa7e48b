"""Database spans from the engine's own cursor events.

The OpenTelemetry SQLAlchemy instrumentation declares `sqlalchemy<2.1`, so with SQLAlchemy 2.1 it
refuses to instrument anything and traces had no database spans. The engine's cursor events are
all it needs, and they are stable across SQLAlchemy versions: one CLIENT span per statement,
named `<OPERATION> <database>` with the database semantic-convention attributes. Parameters are
never recorded (they carry user data); the statement text is.

Async engines run these events inside the request's context (SQLAlchemy's greenlets share it), so
each span is a child of the request's span.
"""

from __future__ import annotations

from typing import Any

from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode
from sqlalchemy import event
from sqlalchemy.engine import Engine

_SPAN_KEY = "_servicekit_db_span"
_tracer = trace.get_tracer("servicekit.db")
_MAX_STATEMENT = 2000


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
    return True


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
        attributes={
            "db.system": "postgresql",
            "db.name": url.database or "",
            "db.operation": operation,
            "db.statement": statement[:_MAX_STATEMENT],
            "server.address": url.host or "",
            "server.port": url.port or 5432,
        },
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
