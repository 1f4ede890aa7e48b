"""Starting and stopping a service's relay and consumer, in the API process or in a worker."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Sequence
from typing import Any

import redis.asyncio as aioredis

from servicekit.db import Database, make_engine
from servicekit.events import metrics as event_metrics
from servicekit.events.consumer import Consumer
from servicekit.events.entries import OUTCOMES
from servicekit.events.handlers import EventHandlers
from servicekit.events.names import stream_for
from servicekit.events.relay import Relay
from servicekit.sampling import MetricSampler, run_samplers
from servicekit.settings import BaseServiceSettings

log = logging.getLogger("servicekit.events")


class EventsRuntime:
    """The relay (always) and the consumer (when there are handlers) of one service."""

    def __init__(
        self,
        settings: BaseServiceSettings,
        database: Database,
        handlers: EventHandlers | None = None,
        samplers: Sequence[MetricSampler] = (),
    ) -> None:
        self.settings = settings
        self.database = database
        self.handlers = handlers or EventHandlers()
        self.samplers = tuple(samplers)
        self._stop_sampling = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._clients: list[aioredis.Redis] = []
        self.relay: Relay | None = None
        self.consumer: Consumer | None = None

    def _redis(self, socket_timeout: float) -> aioredis.Redis:
        client = aioredis.from_url(
            self.settings.redis_url, decode_responses=True, socket_timeout=socket_timeout
        )
        self._clients.append(client)
        return client

    async def start(self) -> None:
        s = self.settings
        event_metrics.start_at_zero(s.service_name, self.handlers.types(), OUTCOMES)
        self.relay = Relay(
            engine=self.database.engine,
            schema=s.db_schema,
            redis=self._redis(10.0),
            stream=stream_for(s.service_name, s.events_stream_prefix),
            service=s.service_name,
            batch_size=s.relay_batch_size,
            poll_interval=s.relay_poll_interval_seconds,
            stream_retention_seconds=s.events_stream_retention_hours * 3600,
            outbox_retention_seconds=s.outbox_retention_hours * 3600,
        )
        self._tasks.append(asyncio.create_task(self.relay.run(), name="outbox-relay"))
        if self.handlers:
            self.consumer = Consumer(
                sessionmaker=self.database.sessionmaker,
                schema=s.db_schema,
                redis=self._redis(s.consumer_block_ms / 1000 + 10.0),
                group=s.service_name,
                handlers=self.handlers,
                prefix=s.events_stream_prefix,
                batch_size=s.consumer_batch_size,
                block_ms=s.consumer_block_ms,
                claim_idle_ms=s.consumer_claim_idle_ms,
                max_attempts=s.consumer_max_attempts,
            )
            self._tasks.append(asyncio.create_task(self.consumer.run(), name="event-consumer"))
        if self.samplers:
            sampling = run_samplers(
                self.database.engine,
                self.samplers,
                s.metrics_sample_interval_seconds,
                self._stop_sampling,
            )
            self._tasks.append(asyncio.create_task(sampling, name="metric-samplers"))
        log.info(
            "events started",
            extra={"consumes": self.handlers.types(), "streams": self.handlers.streams()},
        )

    async def stop(self, grace: float = 5.0) -> None:
        for part in (self.relay, self.consumer):
            if part is not None:
                part.stop()
        self._stop_sampling.set()
        if self._tasks:
            _, pending = await asyncio.wait(self._tasks, timeout=grace)
            for task in pending:
                task.cancel()
            for task in self._tasks:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        self._tasks.clear()
        for client in self._clients:
            await client.aclose()  # type: ignore[attr-defined]
        self._clients.clear()


async def serve_worker(app: Any) -> None:
    """Run a service's relay and consumer until SIGTERM or SIGINT (see `run_worker`)."""
    from servicekit.tracing import setup_tracing

    settings: BaseServiceSettings = app.state.settings
    handlers: EventHandlers | None = getattr(app.state, "event_handlers", None)
    samplers: Sequence[MetricSampler] = getattr(app.state, "metric_samplers", ())
    engine = make_engine(
        settings.database_url,
        schema=settings.db_schema,
        application_name=f"{settings.service_name}-worker",
        pool_size=4,
        max_overflow=2,
    )
    database = Database(engine)
    setup_tracing(app, settings, engine)
    if settings.worker_metrics_port:
        from prometheus_client import start_http_server

        start_http_server(settings.worker_metrics_port)
    runtime = EventsRuntime(settings, database, handlers, samplers)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await runtime.start()
    try:
        await stop.wait()
    finally:
        await runtime.stop()
        await database.dispose()


def run_worker(app: Any) -> None:
    """`python -m <svc>.worker`: the service's events without its HTTP API.

    `app` is the service's app from `create_app()`: its settings and its registered handlers.
    """
    asyncio.run(serve_worker(app))
