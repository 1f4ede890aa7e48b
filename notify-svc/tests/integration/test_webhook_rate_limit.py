"""The per-endpoint rate limit across worker processes: two real Celery workers and the events
process (its dispatcher) drain one rate-limited endpoint's backlog into a real local receiver.

What the limit guarantees (`batch.rate_budget`): a fixed window per wall-clock second, counted
in Redis by every worker; at most `rate_limit_per_second` attempts of one endpoint are let go in
each second (by the time the workers read when they take the budget). Windows are aligned to
the second, so one that ends full and the next that starts full put up to twice the limit
inside one sliding second: that is the documented burst. Nothing is dropped: deliveries held
back wait in the database, unattempted, and go in a later window.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from contracts.envelope import CloudEvent
from notify_svc.events.handlers import fan_out
from notify_svc.receiver import Receiver
from notify_svc.settings import Settings
from servicekit.testing.plugin import JwtKeys

from ..support import webhooks as support

ORG = uuid.UUID("00000000-0000-4000-8000-00000000000c")
LIMIT = 5
BACKLOG = 40


def service_env(settings: Settings) -> dict[str, str]:
    """The tests' settings for processes of their own (env `NOTIFY_SVC_...`)."""
    values: dict[str, Any] = {
        "DATABASE_URL": settings.database_url,
        "REDIS_URL": settings.redis_url,
        "JWT_PUBLIC_KEY_FILE": settings.jwt_public_key_file,
        "JWT_ISSUER": settings.jwt_issuer,
        "JWT_AUDIENCE": settings.jwt_audience,
        "SERVICE_TOKEN_PRIVATE_KEY_FILE": settings.service_token_private_key_file,
        "WEBHOOK_ALLOWED_NETWORKS": json.dumps(settings.webhook_allowed_networks),
        "WEBHOOK_TIMEOUT_SECONDS": settings.webhook_timeout_seconds,
        "EVENTS_IN_PROCESS": "false",
        "LOG_LEVEL": "WARNING",
    }
    return {**os.environ, **{f"NOTIFY_SVC_{k}": str(v) for k, v in values.items()}}


@contextmanager
def processes(env: dict[str, str], *commands: list[str]) -> Iterator[None]:
    """Run the commands (Python modules and their arguments) for the duration of the block."""
    started = [
        subprocess.Popen([sys.executable, "-m", *command], env=env, stdout=subprocess.DEVNULL)
        for command in commands
    ]
    try:
        yield
    finally:
        for proc in started:
            proc.terminate()
        for proc in started:
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def celery_worker(name: str) -> list[str]:
    return ["celery", "-A", "notify_svc.celery_app", "worker", "--loglevel", "WARNING",
            "--without-gossip", "--without-mingle", "--concurrency", "4",
            "--hostname", f"{name}@%h"]  # fmt: skip


async def arrivals(receiver: Receiver, events: list[CloudEvent[Any]]) -> list[float]:
    """Arrival times of the events' requests, once each event has arrived."""
    expected = {e.id for e in events}
    deadline = time.monotonic() + 120
    while not expected <= {r.webhook_id for r in receiver.requests()}:
        assert time.monotonic() < deadline, "not every delivery arrived"
        await asyncio.sleep(0.1)
    return sorted(r.at for r in receiver.requests() if r.webhook_id in expected)


async def publish(engine: AsyncEngine, events: list[CloudEvent[Any]]) -> None:
    async with AsyncSession(engine) as session, session.begin():
        for event in events:
            await fan_out(session, event)


def busiest_second(times: list[float]) -> int:
    """The most arrivals inside any sliding window of one second."""
    return max(sum(1 for t in times[i:] if t < start + 1.0) for i, start in enumerate(times))


async def test_two_worker_processes_share_one_endpoints_rate_limit(
    settings: Settings,
    committing_client: httpx.AsyncClient,
    jwt_keys: JwtKeys,
    engine: AsyncEngine,
    receiver: Receiver,
) -> None:
    await support.subscribe(
        committing_client, jwt_keys, ORG, receiver.url, rate_limit_per_second=LIMIT
    )
    env = service_env(settings)
    commands = [celery_worker("first"), celery_worker("second"), ["notify_svc.worker"]]
    with processes(env, *commands):
        # Warm-up, not measured: the workers' first sends open their pools and connections.
        warm = [support.task_event(ORG) for _ in range(2 * LIMIT)]
        await publish(engine, warm)
        await arrivals(receiver, warm)
        events = [support.task_event(ORG) for _ in range(BACKLOG)]
        await publish(engine, events)
        times = await arrivals(receiver, events)
    # Every delivery arrived, once (the receiver answers 200: nothing is retried).
    assert sorted(r.webhook_id for r in receiver.requests()) == sorted(
        e.id for e in [*warm, *events]
    )
    # No sliding second saw more than two windows' budget...
    assert busiest_second(times) <= 2 * LIMIT, [round(t - times[0], 3) for t in times]
    # ...and the backlog took at least BACKLOG / LIMIT windows: a limit counted per process
    # (or not at all) would let it through in half the windows or fewer.
    assert times[-1] - times[0] > BACKLOG / LIMIT - 3, [round(t - times[0], 3) for t in times]
