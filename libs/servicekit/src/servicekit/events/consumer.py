"""The event consumer of one service: one consumer group, idempotent handling, dead letters.

The entries of one stream read by one XREADGROUP (or one XAUTOCLAIM page) are handled in ONE
database transaction: the inbox rows of their event ids (`INSERT ... ON CONFLICT DO NOTHING
RETURNING`; no row back means a duplicate, skipped) and the handlers, in stream order. On the
happy path that is one INSERT for the whole batch and no savepoints. If a handler raises, that
transaction is rolled back and the batch runs again with a SAVEPOINT per entry (inbox row and
handler), so the failing entry rolls back only its own savepoint and the others' effects
commit. Then one COMMIT and one Redis round trip: XACK of every processed, duplicate or ignored
entry, the error of each failed one, the dead letters.

A failed entry stays pending; it is reclaimed with XAUTOCLAIM once idle for `claim_idle_ms` (by
this or another replica, also after a crash) and retried, and after `max_attempts` deliveries it
moves to the group's dead-letter stream with its error.

Order: entries are handled in stream order. When an entry of an aggregate (stream, aggregate
type, subject) fails, the later entries of that aggregate that this consumer reads are not
handled: they are *deferred* (left pending, their delivery counter restored so waiting is not
counted as an attempt) behind it, in a per-aggregate queue held in memory. When the failed entry
is finally handled (or dead-lettered) the queue is released at once, in order. Deferred entries'
idle time is reset whenever the entry in front of them fails again, so they are never claimable
before it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import redis.asyncio as aioredis
from opentelemetry.trace import SpanKind
from redis.exceptions import ResponseError
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from contracts.envelope import CloudEvent
from servicekit.events import metrics as m
from servicekit.events.handlers import EventHandlers, Registered
from servicekit.events.names import dead_letter_stream, errors_hash, quoted, redrive_stream
from servicekit.events.tracing import continued_span
from servicekit.jsonutil import loads

log = logging.getLogger("servicekit.events.consumer")

PROCESSED = "processed"
DUPLICATE = "duplicate"
IGNORED = "ignored"
RETRIED = "retried"
DEAD_LETTERED = "dead_lettered"
DEFERRED = "deferred"
_FAILED = "failed"  # before the Redis step decides between retried and dead_lettered

AggregateKey = tuple[str, str, str]
# Per aggregate: the entry ids this consumer holds pending, in stream order. The first is the
# one allowed to run; the value is the delivery count to restore on a deferred entry.
Queues = dict[AggregateKey, dict[str, int]]


def default_consumer_name() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


@dataclass(slots=True)
class _Entry:
    stream: str
    id: str
    raw: Any
    deliveries: int
    event_type: str = "unknown"
    key: AggregateKey | None = None
    registered: Registered | None = None
    event: CloudEvent[Any] | None = None
    event_id: uuid.UUID | None = None
    source: str = ""
    parse_error: Exception | None = None
    outcome: str | None = None
    error: Exception | None = None


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
        self._inbox_many_sql = text(
            f"INSERT INTO {quoted(schema)}.inbox (event_id, event_type, source)"  # noqa: S608 - a checked identifier
            " SELECT * FROM unnest(CAST(:ids AS uuid[]), CAST(:types AS text[]),"
            " CAST(:sources AS text[])) ON CONFLICT (event_id) DO NOTHING RETURNING event_id"
        )
        self._queues: Queues = {}
        self._counters: dict[tuple[str, str], Any] = {}
        self._latencies: dict[str, Any] = {}
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
                await self.handle_batch(_s(stream), entries)  # first delivery of each
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
                next_start = _s(result[0])
                entries = [(eid, f) for eid, f in result[1] if f is not None]  # None: trimmed
                if entries:
                    deliveries = await self._deliveries(stream, [_s(e) for e, _ in entries])
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
            stream, [(entry_id, fields)], deliveries={_s(entry_id): deliveries}
        )
        return outcomes[_s(entry_id)]

    async def handle_batch(
        self,
        stream: str,
        entries: Iterable[tuple[Any, dict[Any, Any]]],
        *,
        deliveries: dict[str, int] | None = None,
    ) -> dict[str, str]:
        """Handle entries of one stream, in order, in one transaction; returns their outcomes.

        `deliveries` gives the delivery count of each entry (missing: 1, a first delivery).
        Entries released from an aggregate's queue by this batch are handled right after it,
        and their outcomes are included.
        """
        outcomes: dict[str, str] = {}
        batch = [self._parse(stream, entry_id, fields, deliveries) for entry_id, fields in entries]
        while batch:
            released = await self._handle(stream, batch)
            outcomes.update((e.id, e.outcome or _FAILED) for e in batch)
            batch = await self._claim_released(stream, released) if released else []
        return outcomes

    def _parse(
        self, stream: str, entry_id: Any, fields: dict[Any, Any], deliveries: dict[str, int] | None
    ) -> _Entry:
        eid = _s(entry_id)
        raw = fields.get("event", fields.get(b"event"))
        entry = _Entry(stream, eid, raw, deliveries.get(eid, 1) if deliveries else 1)
        try:
            if raw is None:
                raise ValueError("stream entry has no `event` field")
            document = loads(raw)
            entry.event_type = str(document.get("type", "unknown"))
            subject = document.get("subject")
            if subject is not None:
                entry.key = (stream, str(document.get("aggregatetype") or ""), str(subject))
            elif document.get("id") is not None:
                entry.key = (stream, "", f"id:{document['id']}")  # its own duplicates wait
            entry.registered = self.handlers.get(entry.event_type)
            if entry.registered is None:
                entry.outcome = IGNORED
                return entry
            entry.event = event = entry.registered.envelope_model.model_validate(document)
            entry.event_id = uuid.UUID(event.id)
            entry.source = event.source
        except Exception as exc:
            entry.parse_error = exc
        return entry

    async def _handle(self, stream: str, batch: list[_Entry]) -> list[AggregateKey]:
        """One batch: the transaction, then one Redis round trip; returns released queues."""
        keys = {e.key for e in batch if e.key is not None and e.outcome is None}
        await self._drop_stale(stream, keys, {e.id for e in batch})
        work = {k: dict(self._queues[k]) for k in keys if k in self._queues}
        runnable = [e for e in batch if e.outcome is None]
        if runnable:
            work = await self._transact(runnable, work)
        await self._finish(stream, batch, work)
        released: list[AggregateKey] = []
        for key in keys:
            queue = work.get(key)
            if queue:
                self._queues[key] = queue
                if queue[next(iter(queue))] >= 0:
                    released.append(key)  # the failed entry in front was settled
            else:
                self._queues.pop(key, None)
        return released

    async def _transact(self, entries: list[_Entry], work: Queues) -> Queues:
        """Run `entries` in one transaction, fast path first.

        1. No savepoints: one INSERT of every inbox row, the handlers, COMMIT. This is the
           whole cost on the happy path.
        2. If a handler raised (or the commit failed), that transaction is rolled back and the
           batch runs again with a SAVEPOINT per entry, so a failing entry rolls back only its
           own inbox row and effects (handlers only write rows in the transaction, so running
           them again is invisible).
        3. If that transaction fails as a whole (the COMMIT, the connection), the entries run
           one transaction each, to find the one to blame.
        """
        snapshot = _copy(work)
        try:
            if await self._fast_transaction(entries, work):
                return work
        except Exception:
            log.debug(
                "event batch failed on the fast path; retrying with savepoints", exc_info=True
            )
        work = _copy(snapshot)
        _reset(entries)
        try:
            await self._savepoint_transaction(entries, work)
            return work
        except Exception as exc:
            if len(entries) == 1:
                _reset(entries)
                self._fail(entries[0], exc, snapshot)
                return snapshot
            log.warning(
                "event batch transaction failed; handling its entries one by one", exc_info=exc
            )
        work = snapshot
        for entry in entries:
            _reset([entry])
            trial = _copy(work)
            try:
                await self._savepoint_transaction([entry], trial)
                work = trial
            except Exception as exc:
                _reset([entry])
                self._fail(entry, exc, work)
        return work

    def _must_wait(self, entry: _Entry, work: Queues) -> bool:
        """Defer `entry` if an earlier entry of its aggregate is pending."""
        queue = work.get(entry.key) if entry.key is not None else None
        if queue and next(iter(queue)) != entry.id:
            entry.outcome = DEFERRED
            queue.setdefault(entry.id, entry.deliveries - 1)
            return True
        return False

    def _settled(self, entry: _Entry, inserted: bool, work: Queues) -> None:
        entry.outcome = PROCESSED if inserted else DUPLICATE
        queue = work.get(entry.key) if entry.key is not None else None
        if queue:
            queue.pop(entry.id, None)  # it was at the front of its aggregate's queue

    async def _fast_transaction(self, entries: list[_Entry], work: Queues) -> bool:
        """The happy path; False (rolled back) when a handler raised."""
        run: list[_Entry] = []
        for entry in entries:
            if self._must_wait(entry, work):
                continue
            if entry.parse_error is not None:
                self._fail(entry, entry.parse_error, work)
                continue
            run.append(entry)
        if not run:
            return True
        try:
            async with self.sessionmaker() as session, session.begin():
                new = {
                    row[0]
                    for row in await session.execute(
                        self._inbox_many_sql,
                        {
                            "ids": [e.event_id for e in run],
                            "types": [e.event_type for e in run],
                            "sources": [e.source for e in run],
                        },
                    )
                }
                for entry in run:
                    first = entry.event_id in new
                    if first:
                        new.discard(entry.event_id)  # a second copy in this batch: a duplicate
                        await self._run_handler(session, entry)
                    self._settled(entry, first, work)
        except _HandlerFailed:
            return False
        return True

    async def _run_handler(self, session: AsyncSession, entry: _Entry) -> None:
        event, registered = entry.event, entry.registered
        assert event is not None and registered is not None
        try:
            with continued_span(
                f"process {entry.event_type}",
                event.traceparent,
                kind=SpanKind.CONSUMER,
                attributes={"messaging.consumer.group.name": self.group, "event.id": event.id},
            ):
                await registered.handler(session, event)
        except Exception as exc:
            raise _HandlerFailed from exc

    async def _savepoint_transaction(self, entries: list[_Entry], work: Queues) -> None:
        async with self.sessionmaker() as session, session.begin():
            for entry in entries:
                if self._must_wait(entry, work):
                    continue
                if entry.parse_error is not None:
                    self._fail(entry, entry.parse_error, work)
                    continue
                try:
                    async with session.begin_nested():
                        params = {
                            "id": entry.event_id,
                            "type": entry.event_type,
                            "source": entry.source,
                        }
                        inserted = (await session.execute(self._inbox_sql, params)).first()
                        if inserted is not None:
                            await self._run_handler(session, entry)
                except Exception as exc:
                    cause = exc.__cause__ if isinstance(exc, _HandlerFailed) else exc
                    self._fail(entry, cause if isinstance(cause, Exception) else exc, work)
                    continue
                self._settled(entry, inserted is not None, work)

    def _fail(self, entry: _Entry, exc: Exception, work: Queues) -> None:
        entry.outcome, entry.error = _FAILED, exc
        if entry.key is None:
            return
        queue = work.setdefault(entry.key, {})
        if entry.deliveries < self.max_attempts:
            # In front of its aggregate (else it would have been deferred); -1 marks the entry
            # that failed, whose delivery count is real.
            queue[entry.id] = -1
        else:
            queue.pop(entry.id, None)  # dead-lettered below: it no longer holds anyone back
            if not queue:
                work.pop(entry.key, None)

    async def _drop_stale(self, stream: str, keys: set[AggregateKey], in_batch: set[str]) -> None:
        """Forget queued entries no longer pending with this consumer (handled by another
        replica, or trimmed), for the aggregates of this batch whose front is not in it."""
        check = [
            eid
            for key in keys
            if (queue := self._queues.get(key)) and next(iter(queue)) not in in_batch
            for eid in queue
            if eid not in in_batch
        ]
        if not check:
            return
        pipe = self.redis.pipeline(transaction=False)
        for eid in check:
            pipe.xpending_range(stream, self.group, eid, eid, 1, consumername=self.name)
        gone = {eid for eid, info in zip(check, await pipe.execute(), strict=True) if not info}
        for key in keys:
            queue = self._queues.get(key)
            if queue and gone.intersection(queue):
                for eid in gone.intersection(queue):
                    del queue[eid]
                if not queue:
                    del self._queues[key]

    async def _finish(self, stream: str, batch: list[_Entry], work: Queues) -> None:
        """One Redis round trip for the whole batch: dead letters, errors, XACK, deferrals."""
        pipe = self.redis.pipeline(transaction=False)
        acks: list[str] = []
        in_batch = {e.id for e in batch}
        refailed: set[AggregateKey] = set()
        for e in batch:
            field = f"{stream}/{e.id}"
            if e.outcome in (PROCESSED, DUPLICATE, IGNORED):
                acks.append(e.id)
                if e.deliveries > 1:
                    pipe.hdel(self.errors_key, field)
            elif e.outcome == DEFERRED:
                restore = max(e.deliveries - 1, 0)
                pipe.xclaim(
                    stream, self.group, self.name, 0, [e.id], retrycount=restore, justid=True
                )
            else:
                error = f"{type(e.error).__name__}: {e.error}"[:2000]
                if e.deliveries < self.max_attempts:
                    e.outcome = RETRIED
                    pipe.hset(self.errors_key, field, error)
                    if e.key is not None:
                        refailed.add(e.key)
                else:
                    e.outcome = DEAD_LETTERED
                    pipe.xadd(self.dead_stream, self._dead_letter(e, error))
                    acks.append(e.id)
                    pipe.hdel(self.errors_key, field)
        for key in refailed:
            # Keep what waits behind a failed entry younger than it, so that no replica can
            # reclaim it first.
            for eid, restore in (work.get(key) or {}).items():
                if restore >= 0 and eid not in in_batch:
                    pipe.xclaim(
                        stream, self.group, self.name, 0, [eid], retrycount=restore, justid=True
                    )
        if acks:
            pipe.xack(stream, self.group, *acks)
        if len(pipe):
            await pipe.execute()
        now = time.time()
        for e in batch:
            self._count(e.event_type, e.outcome or _FAILED)
            if e.outcome == PROCESSED and e.event is not None:
                self._latency(e.event_type).observe(max(0.0, now - e.event.time.timestamp()))
            elif e.outcome in (RETRIED, DEAD_LETTERED):
                self._log_failure(e)

    def _dead_letter(self, e: _Entry, error: str) -> dict[str, Any]:
        return {
            "event": e.raw if e.raw is not None else "",
            "stream": e.stream,
            "entry_id": e.id,
            "group": self.group,
            "type": e.event_type,
            "error": error,
            "attempts": str(e.deliveries),
            "failed_at": datetime.now(UTC).isoformat(),
        }

    def _log_failure(self, e: _Entry) -> None:
        extra = {"stream": e.stream, "entry_id": e.id, "event_type": e.event_type}
        if e.outcome == RETRIED:
            log.warning(
                "event handling failed (attempt %d of %d); it will be retried",
                e.deliveries,
                self.max_attempts,
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

    async def _claim_released(self, stream: str, keys: list[AggregateKey]) -> list[_Entry]:
        """Take back the entries now at the front of released queues, to handle them now."""
        wanted: dict[str, int] = {}
        for key in keys:
            for eid, restore in self._queues.get(key, {}).items():
                if restore >= 0:
                    wanted[eid] = restore + 1  # this delivery
        if not wanted:
            return []
        pipe = self.redis.pipeline(transaction=False)
        for eid, count in wanted.items():
            pipe.xclaim(stream, self.group, self.name, 0, [eid], retrycount=count)
        claimed: list[tuple[Any, dict[Any, Any]]] = []
        for result in await pipe.execute():
            claimed.extend((eid, f) for eid, f in result if f is not None)
        got = {_s(eid) for eid, _ in claimed}
        for key in keys:  # not pending any more: handled elsewhere or trimmed
            queue = self._queues.get(key)
            if queue:
                for eid in [i for i in queue if i in wanted and i not in got]:
                    del queue[eid]
                if not queue:
                    del self._queues[key]
        claimed.sort(key=lambda item: _order(_s(item[0])))
        return [self._parse(stream, eid, f, wanted) for eid, f in claimed]

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


class _HandlerFailed(Exception):
    """A handler raised (the cause); the batch runs again with savepoints."""


def _reset(entries: list[_Entry]) -> None:
    for entry in entries:
        entry.outcome = entry.error = None


def _copy(work: Queues) -> Queues:
    return {k: dict(v) for k, v in work.items()}


def _order(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


def _s(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
