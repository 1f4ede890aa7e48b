"""The app factory every service builds on: routers, error handlers, lifespan, observability."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import redis.asyncio as aioredis
from fastapi import APIRouter, FastAPI
from fastapi.telemetry import TelemetryConfig

from servicekit import health, metrics, openapi
from servicekit.auth import ServiceTokenProvider, TokenVerifier
from servicekit.db import Database, make_engine
from servicekit.errors import install_error_handlers
from servicekit.events.handlers import EventHandlers
from servicekit.events.runtime import EventsRuntime
from servicekit.jsonutil import FastJSONResponse
from servicekit.limits import RequestLimitsMiddleware
from servicekit.logging import configure_logging
from servicekit.middleware import RequestContextMiddleware
from servicekit.openapi_docs import ServiceDocs, camel_operation_id
from servicekit.sampling import MetricSampler
from servicekit.settings import BaseServiceSettings
from servicekit.tracing import instrument_fastapi, setup_tracing

NO_NATIVE_TELEMETRY: TelemetryConfig = {
    "tracing": False,
    "metrics": False,
    "logs": False,
    "operation_spans": False,
    "auto_configure": False,
}

Hook = Callable[[FastAPI], Awaitable[None]]


def tune_gc() -> None:
    """What the app holds from start-up stays: keep the collector from scanning it on every
    collection, and let short-lived request objects pile up further before collecting."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 10, 10)


def build_app(
    settings: BaseServiceSettings,
    *,
    title: str,
    description: str = "",
    version: str = "0.1.0",
    routers: Sequence[APIRouter] = (),
    database: Database | None = None,
    on_startup: Sequence[Hook] = (),
    on_shutdown: Sequence[Hook] = (),
    openapi_tags: list[dict[str, Any]] | None = None,
    event_handlers: EventHandlers | None = None,
    api_docs: ServiceDocs | None = None,
    metric_samplers: Sequence[MetricSampler] = (),
) -> FastAPI:
    """A FastAPI app with the platform's conventions.

    `database` lets tests hand in a Database bound to one connection; normally the lifespan makes
    the engine from settings.

    `event_handlers` are the events this service consumes. The relay and the consumer run in
    this process when `settings.events_in_process` is on and the app owns its database
    (a test app bound to one connection never runs them); `python -m <svc>.worker` runs them
    otherwise.

    `api_docs`: the service's documentation tables (operationIds, examples, problem codes).
    `metric_samplers` read gauges from the database; they run where the events run (one
    process per service, see servicekit.sampling).
    """
    configure_logging(settings.service_name, level=settings.log_level, json_lines=settings.log_json)
    metrics.set_service(settings.service_name)

    lifespan = _lifespan(settings, database, on_startup, on_shutdown, event_handlers)
    app = FastAPI(
        title=title,
        description=description,
        version=version,
        lifespan=lifespan,
        default_response_class=FastJSONResponse,
        openapi_tags=openapi_tags,
        docs_url="/docs",
        redoc_url=None,
        # servicekit owns telemetry: its middleware counts and times requests, and
        # `setup_tracing` instruments FastAPI when an OTLP endpoint is set. FastAPI's own would
        # add a second server span per request, and asks the OpenTelemetry providers whether it
        # is on for every request even when it is not.
        telemetry=NO_NATIVE_TELEMETRY,
        generate_unique_id_function=camel_operation_id,
    )
    instrument_fastapi(app, settings)
    app.state.settings = settings
    app.state.api_docs = api_docs or ServiceDocs()
    app.state.event_handlers = event_handlers or EventHandlers()
    app.state.metric_samplers = tuple(metric_samplers)
    app.state.token_verifier = TokenVerifier.from_settings(settings)
    app.state.service_tokens = ServiceTokenProvider(settings)
    install_error_handlers(app)
    openapi.install(app)
    # Added last is outermost: the context (request id, metrics, the 500 answer) wraps the limits.
    app.add_middleware(
        RequestLimitsMiddleware,
        max_header_bytes=settings.max_request_header_bytes,
        max_body_bytes=settings.max_request_body_bytes,
    )
    app.add_middleware(RequestContextMiddleware, service=settings.service_name)
    app.include_router(health.router)
    app.include_router(metrics.router)
    for router in routers:
        app.include_router(router)
    return app


def _lifespan(
    settings: BaseServiceSettings,
    database: Database | None,
    on_startup: Sequence[Hook],
    on_shutdown: Sequence[Hook],
    event_handlers: EventHandlers | None,
) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    """Start-up and shut-down: the database (unless a test handed one in), Redis, tracing, the
    service's hooks, and the events runtime when it runs in this process."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owns_db = database is None
        if owns_db:
            engine = make_engine(
                settings.database_url,
                schema=settings.db_schema,
                application_name=settings.service_name,
                pool_size=settings.db_pool_size,
                max_overflow=settings.db_max_overflow,
                echo=settings.db_echo,
            )
            app.state.db = Database(engine)
        else:
            app.state.db = database
        app.state.redis = aioredis.from_url(settings.redis_url, socket_timeout=5)
        setup_tracing(app, settings, app.state.db.engine)
        for hook in on_startup:
            await hook(app)
        if settings.gc_tuning:
            tune_gc()
        events: EventsRuntime | None = None
        if settings.events_in_process and owns_db:
            events = EventsRuntime(
                settings, app.state.db, event_handlers, app.state.metric_samplers
            )
            await events.start()
        app.state.events = events
        try:
            yield
        finally:
            if events is not None:
                await events.stop()
            for hook in reversed(on_shutdown):
                await hook(app)
            await app.state.redis.aclose()
            if owns_db:
                await app.state.db.dispose()

    return lifespan
