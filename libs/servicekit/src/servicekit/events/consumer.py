"""The event consumer of one service: one consumer group, idempotent handling, dead letters.

The entries of one stream read by one XREADGROUP (or one XAUTOCLAIM page) are handled in ONE
database transaction (`transaction.py`): the inbox rows of their event ids and the handlers, in
stream order, with a savepoint per entry only when a handler raised. Then one COMMIT and one
Redis round trip (`outcomes.py`): XACK of every processed, duplicate or ignored entry, the error
of each failed one, the dead letters.

A failed entry stays pending; it is reclaimed with XAUTOCLAIM once idle for `claim_idle_ms` (by
this or another replica, also after a crash) and retried, and after `max_attempts` deliveries it
moves to the group's dead-letter stream with its error.

Order: entries are handled in stream order. When an entry of an aggregate (stream, aggregate
type, subject) fails, the later entries of that aggregate that this consumer reads are not
handled: they are *deferred* (left pending, their delivery counter restored so waiting is not
counted as an attempt) behind it, in a per-aggregate line held in memory (`ordering.py`, the
policy without I/O). When the failed entry is finally handled (or dead-lettered) the line is
released at once, in order. Deferred entries' idle time is reset whenever the entry in front of
them fails again, so they are never claimable before it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
import uuid
from collections.abc import Iterable, Sequence
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import ResponseError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from servicekit.events import metrics as m
from servicekit.events.entries import FAILED, Entry, parse_entry, stream_order, text_of
from servicekit.events.handlers import EventHandlers
from servicekit.events.names import dead_letter_stream, errors_hash, redrive_stream
from servicekit.events.ordering import AggregateKey, OrderingPolicy
from servicekit.events.outcomes import OutcomeRecorder
from servicekit.events.transaction import BatchTransaction

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
        self.stats_interval = stats_interval
        self.dead_stream = dead_letter_stream(group, prefix)
        self.errors_key = errors_hash(group, prefix)
        self.streams = [*handlers.streams(prefix), redrive_stream(group, prefix)]
        self.ordering = OrderingPolicy(max_attempts)
        self._transaction = BatchTransaction(sessionmaker, schema=schema, group=group)
        self._outcomes = OutcomeRecorder(
            redis,
            group=group,
            consumer_name=self.name,
            dead_stream=self.dead_stream,
            errors_key=self.errors_key,
        )
        self._stopping = False

    @property
    def max_attempts(self) -> int:
        """Deliveries of an entry before it is dead-lettered."""
        return self.ordering.max_attempts

    @max_attempts.setter
    def max_attempts(self, value: int) -> None:
        self.ordering.max_attempts = value

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
        """Read and handle one batch of new entries; returns how many entries it took."""
        response = await self.redis.xreadgroup(
            self.group,
            self.name,
            dict.fromkeys(self.streams, ">"),
            count=self.batch_size,
            block=self.block_ms if block_ms is None else block_ms,
        )
        taken = 0
        for stream, entries in response or []:
            if entries:
                await self.handle_batch(text_of(stream), entries)  # first delivery of each
                taken += len(entries)
        return taken

    async def reclaim(self) -> int:
        """Take over entries left pending longer than the idle timeout and retry them."""
        taken = 0
        for stream in self.streams:
            start = "0-0"
            while True:
                result = await self.redis.xautoclaim(
                    stream, self.group, self.name, self.claim_idle_ms, start_id=start, count=100
                )
                next_start = text_of(result[0])
                entries = [(eid, f) for eid, f in result[1] if f is not None]  # None: trimmed
                if entries:
                    ids = [text_of(e) for e, _ in entries]
                    deliveries = await self._deliveries(stream, ids)
                    await self.handle_batch(stream, entries, deliveries=deliveries)
                    taken += len(entries)
                if next_start == "0-0":
                    break
                start = next_start
        return taken

    async def _deliveries(self, stream: str, ids: Sequence[str]) -> dict[str, int]:
        """Delivery counts of pending entries (one round trip); only for reclaimed entries."""
        pipe = self.redis.pipeline(transaction=False)
        for eid in ids:
            pipe.xpending_range(stream, self.group, eid, eid, 1)
        counts: dict[str, int] = {}
        for eid, info in zip(ids, await pipe.execute(), strict=True):
            counts[eid] = int(info[0]["times_delivered"]) if info else 1
        return counts

    async def handle(
        self, stream: str, entry_id: str, fields: dict[Any, Any], *, deliveries: int
    ) -> str:
        """Handle one stream entry (a batch of one); returns its outcome."""
        outcomes = await self.handle_batch(
            stream, [(entry_id, fields)], deliveries={text_of(entry_id): deliveries}
        )
        return outcomes[text_of(entry_id)]

    async def handle_batch(
        self,
        stream: str,
        entries: Iterable[tuple[Any, dict[Any, Any]]],
        *,
        deliveries: dict[str, int] | None = None,
    ) -> dict[str, str]:
        """Handle entries of one stream, in order, in one transaction; returns their outcomes.

        `deliveries` gives the delivery count of each entry (missing: 1, a first delivery).
        Entries released from an aggregate's line by this batch are handled right after it,
        and their outcomes are included.
        """
        outcomes: dict[str, str] = {}
        batch = [self._parse(stream, entry_id, fields, deliveries) for entry_id, fields in entries]
        while batch:
            released = await self._handle(stream, batch)
            outcomes.update((e.id, e.outcome or FAILED) for e in batch)
            batch = await self._claim_released(stream, released) if released else []
        return outcomes

    def _parse(
        self, stream: str, entry_id: Any, fields: dict[Any, Any], deliveries: dict[str, int] | None
    ) -> Entry:
        return parse_entry(stream, entry_id, fields, deliveries, self.handlers)

    async def _handle(self, stream: str, batch: list[Entry]) -> list[AggregateKey]:
        """One batch: the transaction, then one Redis round trip; returns released aggregates."""
        keys = {e.key for e in batch if e.key is not None and e.outcome is None}
        if self.ordering:
            await self._drop_stale(stream, keys, {e.id for e in batch})
        order = self.ordering.begin(keys)
        runnable = [e for e in batch if e.outcome is None]
        if runnable:
            order = await self._transaction.run(runnable, order)
        await self._outcomes.record(stream, batch, order)
        return self.ordering.conclude(order)

    async def _drop_stale(self, stream: str, keys: set[AggregateKey], in_batch: set[str]) -> None:
        """Forget waiting entries no longer pending with this consumer (handled by another
        replica, or trimmed), for the aggregates of this batch whose front is not in it."""
        check = self.ordering.unconfirmed(keys, in_batch)
        if not check:
            return
        pipe = self.redis.pipeline(transaction=False)
        for eid in check:
            pipe.xpending_range(stream, self.group, eid, eid, 1, consumername=self.name)
        gone = {eid for eid, info in zip(check, await pipe.execute(), strict=True) if not info}
        self.ordering.forget(keys, gone)

    async def _claim_released(self, stream: str, keys: list[AggregateKey]) -> list[Entry]:
        """Take back the entries waiting in released lines, to handle them now."""
        wanted = self.ordering.released_entries(keys)
        if not wanted:
            return []
        pipe = self.redis.pipeline(transaction=False)
        for eid, count in wanted.items():
            pipe.xclaim(stream, self.group, self.name, 0, [eid], retrycount=count)
        claimed: list[tuple[Any, dict[Any, Any]]] = []
        for result in await pipe.execute():
            claimed.extend((eid, f) for eid, f in result if f is not None)
        got = {text_of(eid) for eid, _ in claimed}
        # Not pending any more: handled elsewhere or trimmed.
        self.ordering.forget(keys, {eid for eid in wanted if eid not in got})
        claimed.sort(key=lambda item: stream_order(text_of(item[0])))
        return [self._parse(stream, eid, f, wanted) for eid, f in claimed]

    async def update_stats(self) -> None:
        for stream in self.streams:
            try:
                groups = await self.redis.xinfo_groups(stream)
            except ResponseError:
                continue
            for g in groups:
                if text_of(g.get("name")) == self.group:
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
