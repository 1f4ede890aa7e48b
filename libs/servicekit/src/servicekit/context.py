"""Per-request context: the values every log line and event carries."""

from __future__ import annotations

from contextvars import ContextVar

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)
org_id_var: ContextVar[str | None] = ContextVar("org_id", default=None)
actor_id_var: ContextVar[str | None] = ContextVar("actor_id", default=None)
# Set from an incoming `traceparent` when tracing is off, so logs still join up across services.
traceparent_var: ContextVar[str | None] = ContextVar("traceparent", default=None)


def current_trace_ids() -> tuple[str | None, str | None]:
    """(trace_id, span_id) of the active span, else of the incoming traceparent."""
    try:
        from opentelemetry import trace

        ctx = trace.get_current_span().get_span_context()
        if ctx.is_valid:
            return format(ctx.trace_id, "032x"), format(ctx.span_id, "016x")
    except Exception:  # noqa: S110 - tracing must never break a request or a log line
        pass
    tp = traceparent_var.get()
    if tp:
        parts = tp.split("-")
        if len(parts) == 4 and len(parts[1]) == 32 and len(parts[2]) == 16:
            return parts[1], parts[2]
    return None, None


def current_traceparent() -> str | None:
    """The W3C traceparent of the active span, with its real sampled flag, else the incoming one.

    The flag matters: an event written under a request nobody sampled must not start a sampled
    trace in the relay and the consumers.
    """
    try:
        from opentelemetry import trace

        ctx = trace.get_current_span().get_span_context()
        if ctx.is_valid:
            return f"00-{ctx.trace_id:032x}-{ctx.span_id:016x}-{int(ctx.trace_flags):02x}"
    except Exception:  # noqa: S110 - tracing must never break a request
        pass
    return traceparent_var.get()
