"""Gauges read from the database on a schedule, by one process of a service.

Counts such as "tasks by status" are the database's to tell, not any worker's: if every HTTP
worker sampled them, N workers would run N identical queries and report N copies. A service
registers its samplers with `build_app(metric_samplers=...)`; they run in the process that runs
the service's events (`<service>-events`, or the API process when events run in it), every
`metrics_sample_interval_seconds`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

log = logging.getLogger("servicekit.sampling")

# Reads the database on the connection it is given and sets its gauges.
MetricSampler = Callable[[AsyncConnection], Awaitable[None]]


async def sample_once(engine: AsyncEngine, samplers: Sequence[MetricSampler]) -> None:
    """Run every sampler once; one failing is logged and leaves the gauges as they were."""
    for sampler in samplers:
        try:
            async with engine.connect() as conn:
                await sampler(conn)
        except Exception:
            log.warning("metric sampler %s failed", getattr(sampler, "__name__", sampler),
                        exc_info=True)  # fmt: skip


async def run_samplers(
    engine: AsyncEngine, samplers: Sequence[MetricSampler], interval: float, stop: asyncio.Event
) -> None:
    """Sample at once, then every `interval` seconds until `stop` is set."""
    while not stop.is_set():
        await sample_once(engine, samplers)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=interval)
