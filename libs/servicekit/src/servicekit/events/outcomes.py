"""Recording the outcomes of a batch: one Redis round trip, then metrics and logs.

The round trip acknowledges every processed, duplicate or ignored entry, keeps the error of each
retried one (so whoever dead-letters it later can say why), moves the given-up ones to the
group's dead-letter stream, and puts back the delivery counter of each deferred entry.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import redis.asyncio as aioredis

from servicekit.events import metrics as m
from servicekit.events.deadletters import dead_letter_fields
from servicekit.events.entries import (
    DEAD_LETTERED,
    DEFERRED,
    DUPLICATE,
    FAILED,
    IGNORED,
    PROCESSED,
    RETRIED,
    Entry,
)
from servicekit.events.ordering import AggregateKey, BatchOrder

log = logging.getLogger("servicekit.events.consumer")

_ACKED = (PROCESSED, DUPLICATE, IGNORED)


class OutcomeRecorder:
    def __init__(
        self,
        redis: aioredis.Redis,
        *,
        group: str,
        consumer_name: str,
        dead_stream: str,
        errors_key: str,
    ) -> None:
        self.redis = redis
        self.group = group
        self.consumer_name = consumer_name
        self.dead_stream = dead_stream
        self.errors_key = errors_key
        self._counters: dict[tuple[str, str], Any] = {}
        self._latencies: dict[str, Any] = {}

    async def record(self, stream: str, batch: list[Entry], order: BatchOrder) -> None:
        await self._write(stream, batch, order)
        self._observe(batch, order.max_attempts)

    async def _write(self, stream: str, batch: list[Entry], order: BatchOrder) -> None:
        """One Redis round trip for the whole batch: dead letters, errors, XACK, deferrals."""
        pipe = self.redis.pipeline(transaction=False)
        acks: list[str] = []
        refailed: set[AggregateKey] = set()
        for e in batch:
            field = f"{stream}/{e.id}"
            if e.outcome in _ACKED:
                acks.append(e.id)
                if e.deliveries > 1:
                    pipe.hdel(self.errors_key, field)
            elif e.outcome == DEFERRED:
                self._restore_deliveries(pipe, stream, e.id, max(e.deliveries - 1, 0))
            else:
                error = f"{type(e.error).__name__}: {e.error}"[:2000]
                if e.outcome == RETRIED:
                    pipe.hset(self.errors_key, field, error)
                    if e.key is not None:
                        refailed.add(e.key)
                else:
                    pipe.xadd(self.dead_stream, self._dead_letter(e, error))
                    acks.append(e.id)
                    pipe.hdel(self.errors_key, field)
        if refailed:
            in_batch = {e.id for e in batch}
            for key in refailed:
                # Keep what waits behind a failed entry younger than it, so that no replica can
                # reclaim it first.
                for eid, restore in order.waiting_behind(key):
                    if eid not in in_batch:
                        self._restore_deliveries(pipe, stream, eid, restore)
        if acks:
            pipe.xack(stream, self.group, *acks)
        if len(pipe):
            await pipe.execute()

    def _restore_deliveries(self, pipe: Any, stream: str, entry_id: str, count: int) -> None:
        """Re-claim a waiting entry (resetting its idle time) with its delivery counter set to
        what it was before it waited."""
        pipe.xclaim(
            stream, self.group, self.consumer_name, 0, [entry_id], retrycount=count, justid=True
        )

    def _dead_letter(self, e: Entry, error: str) -> dict[str, Any]:
        return dead_letter_fields(
            event=e.raw,
            stream=e.stream,
            entry_id=e.id,
            group=self.group,
            event_type=e.event_type,
            error=error,
            attempts=e.deliveries,
        )

    def _observe(self, batch: list[Entry], max_attempts: int) -> None:
        now = time.time()
        for e in batch:
            self._count(e.event_type, e.outcome or FAILED)
            if e.outcome == PROCESSED and e.event is not None:
                self._latency(e.event_type).observe(max(0.0, now - e.event.time.timestamp()))
            elif e.outcome in (RETRIED, DEAD_LETTERED):
                _log_failure(e, max_attempts)

    def _count(self, event_type: str, outcome: str) -> None:
        child = self._counters.get((event_type, outcome))
        if child is None:
            child = m.EVENTS_CONSUMED.labels(self.group, event_type, outcome)
            self._counters[(event_type, outcome)] = child
        child.inc()

    def _latency(self, event_type: str) -> Any:
        child = self._latencies.get(event_type)
        if child is None:
            child = self._latencies[event_type] = m.EVENT_HANDLE_LATENCY.labels(
                self.group, event_type
            )
        return child


def _log_failure(e: Entry, max_attempts: int) -> None:
    extra = {"stream": e.stream, "entry_id": e.id, "event_type": e.event_type}
    if e.outcome == RETRIED:
        log.warning(
            "event handling failed (attempt %d of %d); it will be retried",
            e.deliveries,
            max_attempts,
            extra=extra,
            exc_info=e.error,
        )
    else:
        log.error(
            "event handling failed %d times; moved to the dead-letter stream",
            e.deliveries,
            extra=extra,
            exc_info=e.error,
        )
