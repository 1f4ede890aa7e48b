"""The events process's dispatcher: new deliveries reach Celery right after their commit.

The consumer's transaction sends `NOTIFY notify_webhook_deliveries`, which PostgreSQL delivers
only when it commits; the dispatcher LISTENs, reads the due rows (`dispatch.due_batches`) and
enqueues them, one message per endpoint and batch. It also polls every
`webhook_dispatch_poll_seconds` (retries that came due, a lost NOTIFY). Beat's re-drive does
the same more slowly, so neither is needed for correctness.

Every recorded attempt wakes it (a slot freed), so under load wake-ups come faster than a round
is worth: rounds start at most every `webhook_dispatch_min_interval_seconds`, and the wake-ups
that arrive meanwhile are served by the next round (the busy endpoints' own workers follow on
with their next deliveries without it).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

import asyncpg

from notify_svc.delivery import dispatch
from notify_svc.delivery.context import DeliveryContext
from notify_svc.events.handlers import WAKE_CHANNEL
from notify_svc.settings import Settings

log = logging.getLogger("notify_svc.dispatcher")


class Dispatcher:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._wake = asyncio.Event()
        self._stopping = False

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()

    async def run(self) -> None:
        from notify_svc.celery_app import enqueue_batches, enqueue_notifications
        from notify_svc.notifications import sending

        ctx = DeliveryContext.create(self.settings, pool_size=2)
        listener: asyncpg.Connection | None = None
        min_interval = self.settings.webhook_dispatch_min_interval_seconds
        last_round = 0.0
        try:
            while not self._stopping:
                await asyncio.sleep(max(0.0, last_round + min_interval - time.monotonic()))
                last_round = time.monotonic()
                if listener is None or listener.is_closed():
                    listener = await self._listen()
                try:
                    await dispatch.advance_recover_jobs(ctx)
                    while not self._stopping:
                        batches, count = await dispatch.due_batches(ctx)
                        if batches:
                            await asyncio.to_thread(enqueue_batches, batches)
                        if count < 500:
                            break
                    while not self._stopping:
                        notifications = await sending.due_ids(ctx)
                        if notifications:
                            await asyncio.to_thread(enqueue_notifications, notifications)
                        if len(notifications) < 500:
                            break
                except Exception:
                    log.warning("dispatching due deliveries failed; retrying", exc_info=True)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(
                        self._wake.wait(), self.settings.webhook_dispatch_poll_seconds
                    )
                self._wake.clear()
        finally:
            if listener is not None and not listener.is_closed():
                await listener.close()
            await ctx.close()

    async def _listen(self) -> asyncpg.Connection | None:
        dsn = self.settings.database_url.replace("postgresql+asyncpg://", "postgresql://", 1)
        try:
            conn: asyncpg.Connection = await asyncpg.connect(dsn, timeout=10)
            await conn.add_listener(WAKE_CHANNEL, lambda *_: self._wake.set())
            return conn
        except (OSError, asyncpg.PostgresError):
            log.warning("cannot LISTEN for new deliveries; polling only", exc_info=True)
            return None
