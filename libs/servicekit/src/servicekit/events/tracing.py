"""Continuing a request's trace across the outbox, the stream and the consumer.

The outbox row keeps the W3C `traceparent` of the request that wrote it. The relay opens a
PRODUCER span under it and puts that span's traceparent in the envelope; the consumer opens a
CONSUMER span under the envelope's traceparent, so one trace runs from the request to the
handling in every service. With tracing off (no SDK provider) the original traceparent travels
unchanged and logs still carry its trace id.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import SpanKind
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from servicekit.context import traceparent_var

_propagator = TraceContextTextMapPropagator()
_tracer = trace.get_tracer("servicekit.events")


@contextmanager
def continued_span(
    name: str, traceparent: str | None, *, kind: SpanKind, attributes: dict[str, str] | None = None
) -> Iterator[str | None]:
    """A span whose parent is `traceparent`; yields the traceparent of the new span."""
    parent = _propagator.extract({"traceparent": traceparent}) if traceparent else None
    token = otel_context.attach(parent) if parent is not None else None
    var_token = traceparent_var.set(traceparent)
    try:
        with _tracer.start_as_current_span(name, kind=kind, attributes=attributes) as span:
            carrier: dict[str, str] = {}
            _propagator.inject(carrier)
            current = carrier.get("traceparent", traceparent)
            try:
                yield current
            except Exception as exc:
                span.record_exception(exc)
                span.set_status(trace.Status(trace.StatusCode.ERROR, str(exc)))
                raise
    finally:
        traceparent_var.reset(var_token)
        if token is not None:
            otel_context.detach(token)
