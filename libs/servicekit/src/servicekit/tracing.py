"""OpenTelemetry: on when an OTLP endpoint is configured, entirely off otherwise."""

from __future__ import annotations

import logging
from typing import Any

from servicekit.db_tracing import instrument_engine
from servicekit.settings import BaseServiceSettings

log = logging.getLogger("servicekit.tracing")
_provider_set = False
_EXCLUDED_URLS = "/metrics,/healthz,/readyz"


def instrument_fastapi(app: Any, settings: BaseServiceSettings) -> bool:
    """Server spans for `app`'s requests, when an OTLP endpoint is set.

    Called when the app is built, before any ASGI call: uvicorn's first call (the lifespan)
    builds the middleware stack, and the instrumentation only wraps how that stack is built, so
    instrumenting from the lifespan would leave requests without server spans. The spans go to
    the tracer provider `setup_tracing` installs at startup (the global provider is a proxy
    until then).
    """
    if not settings.otlp_endpoint:
        return False
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    FastAPIInstrumentor.instrument_app(app, excluded_urls=_EXCLUDED_URLS)
    return True


def setup_tracing(app: Any, settings: BaseServiceSettings, engine: Any | None = None) -> bool:
    """Instrument FastAPI, httpx, the database engine and Redis; export spans over OTLP/HTTP."""
    global _provider_set
    if not settings.otlp_endpoint:
        return False
    from opentelemetry import trace
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
    from opentelemetry.instrumentation.redis import RedisInstrumentor
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    if not _provider_set:
        provider = TracerProvider(
            resource=Resource.create(
                {
                    "service.name": settings.service_name,
                    "deployment.environment": settings.environment,
                }
            )
        )
        provider.add_span_processor(
            BatchSpanProcessor(OTLPSpanExporter(endpoint=settings.otlp_endpoint))
        )
        trace.set_tracer_provider(provider)
        HTTPXClientInstrumentor().instrument()
        RedisInstrumentor().instrument()
        _provider_set = True
    # A no-op for apps `instrument_fastapi` instrumented when they were built.
    FastAPIInstrumentor.instrument_app(app, excluded_urls=_EXCLUDED_URLS)
    if engine is not None:
        instrument_engine(engine.sync_engine)
    log.info("tracing on, exporting to %s", settings.otlp_endpoint)
    return True
