"""The event consumer of one service: one consumer group, idempotent handling, dead letters.

Each entry is handled in ONE database transaction together with the inbox row of its event id,
then acknowledged (XACK). An event id already in the inbox is a duplicate: skipped, counted,
acknowledged. A handler that raises leaves the entry pending; it is reclaimed with XAUTOCLAIM
once idle for `claim_idle_ms` (by this or another replica, also after a crash) and retried, and
after `max_attempts` deliveries it moves to the group's dead-letter stream with its error.

Entries are handled one at a time in stream order, so one consumer applies one aggregate's
events in the order they were committed.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import redis.asyncio as aioredis
from opentelemetry.trace import SpanKind
from redis.exceptions import ResponseError
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from servicekit.events import metrics as m
from servicekit.events.handlers import EventHandlers
from servicekit.events.names import dead_letter_stream, errors_hash, quoted, redrive_stream
from servicekit.events.tracing import continued_span
from servicekit.jsonutil import loads

log = logging.getLogger("servicekit.events.consumer")


def default_consumer_name() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


class Consumer:
    def __init__(
        self,
        *,
        sessionmaker: async_sessionmaker[AsyncSession],
        schema: str,
        redis: aioredis.Redis,
        group: str,
        handlers: EventHandlers,
        prefix: str = "events",
        consumer_name: str | None = None,
        batch_size: int = 100,
        block_ms: int = 1000,
        claim_idle_ms: int = 30_000,
        max_attempts: int = 5,
        stats_interval: float = 5.0,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.redis = redis
        self.group = group
        self.handlers = handlers
        self.prefix = prefix
        self.name = consumer_name or default_consumer_name()
        self.batch_size = batch_size
        self.block_ms = block_ms
        self.claim_idle_ms = claim_idle_ms
        self.max_attempts = max_attempts
        self.stats_interval = stats_interval
        self.dead_stream = dead_letter_stream(group, prefix)
        self.errors_key = errors_hash(group, prefix)
        self.streams = [*handlers.streams(prefix), redrive_stream(group, prefix)]
        self._inbox_sql = text(
            f"INSERT INTO {quoted(schema)}.inbox (event_id, event_type, source)"  # noqa: S608 - a checked identifier
            " VALUES (:id, :type, :source) ON CONFLICT (event_id) DO NOTHING RETURNING event_id"
        )
        self._stopping = False

    def stop(self) -> None:
        self._stopping = True

    async def ensure_groups(self) -> None:
        """Create the group on every stream it reads, from the start of the retained history."""
        for stream in self.streams:
            try:
                await self.redis.xgroup_create(stream, self.group, id="0", mkstream=True)
            except ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise

    async def poll_once(self, block_ms: int | None = None) -> int:
        """Read and handle one batch of new entries; returns how many it handled."""
        response = await self.redis.xreadgroup(
            self.group,
            self.name,
            dict.fromkeys(self.streams, ">"),
            count=self.batch_size,
            block=self.block_ms if block_ms is None else block_ms,
        )
        handled = 0
        for stream, entries in response or []:
            for entry_id, fields in entries:
                await self.handle(_s(stream), _s(entry_id), fields, deliveries=1)
                handled += 1
        return handled

    async def reclaim(self) -> int:
        """Take over entries left pending longer than the idle timeout and retry them."""
        handled = 0
        for stream in self.streams:
            start = "0-0"
            while True:
                result = await self.redis.xautoclaim(
                    stream, self.group, self.name, self.claim_idle_ms, start_id=start, count=100
                )
                next_start, entries = _s(result[0]), result[1]
                for entry_id, fields in entries:
                    if fields is None:
                        continue  # trimmed away while pending
                    eid = _s(entry_id)
                    deliveries = await self._deliveries(stream, eid)
                    await self.handle(stream, eid, fields, deliveries=deliveries)
                    handled += 1
                if next_start == "0-0":
                    break
                start = next_start
        return handled

    async def _deliveries(self, stream: str, entry_id: str) -> int:
        info = await self.redis.xpending_range(stream, self.group, entry_id, entry_id, 1)
        return int(info[0]["times_delivered"]) if info else 1

    async def handle(
        self, stream: str, entry_id: str, fields: dict[Any, Any], *, deliveries: int
    ) -> str:
        """Handle one stream entry; returns the outcome."""
        raw = fields.get("event", fields.get(b"event"))
        event_type = "unknown"
        try:
            if raw is None:
                raise ValueError("stream entry has no `event` field")
            document = loads(raw)
            event_type = str(document.get("type", "unknown"))
            registered = self.handlers.get(event_type)
            if registered is None:
                await self._ack(stream, entry_id)
                return self._count(event_type, "ignored")
            event = registered.envelope_model.model_validate(document)
            with continued_span(
                f"process {event_type}",
                event.traceparent,
                kind=SpanKind.CONSUMER,
                attributes={"messaging.consumer.group.name": self.group, "event.id": event.id},
            ):
                async with self.sessionmaker() as session, session.begin():
                    inserted = (
                        await session.execute(
                            self._inbox_sql,
                            {"id": uuid.UUID(event.id), "type": event_type, "source": event.source},
                        )
                    ).first()
                    if inserted is not None:
                        await registered.handler(session, event)
        except Exception as exc:
            return await self._failed(stream, entry_id, raw, event_type, exc, deliveries)
        await self._ack(stream, entry_id)
        if deliveries > 1:
            await self.redis.hdel(self.errors_key, f"{stream}/{entry_id}")
        if inserted is None:
            return self._count(event_type, "duplicate")
        m.EVENT_HANDLE_LATENCY.labels(self.group, event_type).observe(
            max(0.0, time.time() - event.time.timestamp())
        )
        return self._count(event_type, "processed")

    async def _ack(self, stream: str, entry_id: str) -> None:
        await self.redis.xack(stream, self.group, entry_id)

    def _count(self, event_type: str, outcome: str) -> str:
        m.EVENTS_CONSUMED.labels(self.group, event_type, outcome).inc()
        return outcome

    async def _failed(
        self,
        stream: str,
        entry_id: str,
        raw: Any,
        event_type: str,
        exc: Exception,
        deliveries: int,
    ) -> str:
        error = f"{type(exc).__name__}: {exc}"[:2000]
        key = f"{stream}/{entry_id}"
        if deliveries < self.max_attempts:
            log.warning(
                "event handling failed (attempt %d of %d); it will be retried",
                deliveries,
                self.max_attempts,
                extra={"stream": stream, "entry_id": entry_id, "event_type": event_type},
                exc_info=exc,
            )
            await self.redis.hset(self.errors_key, key, error)
            return self._count(event_type, "retried")
        log.error(
            "event handling failed %d times; moved to the dead-letter stream",
            deliveries,
            extra={"stream": stream, "entry_id": entry_id, "event_type": event_type},
            exc_info=exc,
        )
        await self.redis.xadd(
            self.dead_stream,
            {
                "event": raw if raw is not None else "",
                "stream": stream,
                "entry_id": entry_id,
                "group": self.group,
                "type": event_type,
                "error": error,
                "attempts": str(deliveries),
                "failed_at": datetime.now(UTC).isoformat(),
            },
        )
        await self._ack(stream, entry_id)
        await self.redis.hdel(self.errors_key, key)
        return self._count(event_type, "dead_lettered")

    async def update_stats(self) -> None:
        for stream in self.streams:
            try:
                groups = await self.redis.xinfo_groups(stream)
            except ResponseError:
                continue
            for g in groups:
                if _s(g.get("name")) == self.group:
                    m.CONSUMER_LAG.labels(self.group, stream).set(int(g.get("lag") or 0))
                    m.CONSUMER_PENDING.labels(self.group, stream).set(int(g.get("pending") or 0))
        m.DEAD_LETTER_DEPTH.labels(self.group).set(await self.redis.xlen(self.dead_stream))

    async def run(self) -> None:
        backoff = 0.1
        next_reclaim = 0.0
        next_stats = 0.0
        ready = False
        while not self._stopping:
            try:
                if not ready:
                    await self.ensure_groups()
                    ready = True
                now = time.monotonic()
                if now >= next_reclaim:
                    await self.reclaim()
                    next_reclaim = now + max(self.claim_idle_ms / 2000, 0.05)
                if now >= next_stats:
                    await self.update_stats()
                    next_stats = now + self.stats_interval
                block = min(self.block_ms, max(int((next_reclaim - time.monotonic()) * 1000), 1))
                await self.poll_once(block_ms=block)
                backoff = 0.1
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("event consumer loop failed; retrying in %.1fs", backoff, exc_info=True)
                ready = False
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)


def _s(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
