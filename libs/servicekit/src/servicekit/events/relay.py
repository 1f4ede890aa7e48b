"""The outbox relay: publishes committed outbox rows to the service's Redis Stream.

One batch is one transaction: take the relay's transaction-level advisory lock, claim the
oldest unpublished rows (`ORDER BY seq ... FOR UPDATE SKIP LOCKED`), XADD them in one pipeline,
mark them published, commit. The advisory lock makes batches of several replicas run one after
another, so the stream receives rows in outbox order and per-aggregate order holds; standby
replicas take over as soon as the active one stops. Rows are never picked by a "last seq seen"
cursor: each batch asks for *every* unpublished row, so a row whose sequence number was taken
before a higher one but committed after it is still published (the gap problem).

A crash between XADD and COMMIT leaves the rows unpublished: they are published again by the
next batch, a duplicate on the wire that consumers absorb with their inbox.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any

import redis.asyncio as aioredis
from opentelemetry.trace import SpanKind
from sqlalchemy import text
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncEngine

from servicekit.events import metrics as m
from servicekit.events.names import quoted
from servicekit.events.tracing import continued_span
from servicekit.jsonutil import dumps, loads
from servicekit.outbox import notify_channel

log = logging.getLogger("servicekit.events.relay")

AfterPublish = Callable[[Sequence[Row[Any]]], Awaitable[None]]


def envelope_json(row: Row[Any], traceparent: str | None = None) -> bytes:
    """The CloudEvents JSON of one outbox row; the payload text is spliced in as it is stored."""
    headers = loads(row.headers) if row.headers else {}
    if traceparent:
        headers["traceparent"] = traceparent
    created_at: datetime = row.created_at
    attributes: dict[str, Any] = {
        "specversion": "1.0",
        "id": str(row.id),
        "source": row.source,
        "type": row.type,
        "time": created_at.isoformat(),
        "subject": row.aggregate_id,
        "datacontenttype": "application/json",
        "aggregatetype": row.aggregate_type,
        "sequence": str(row.seq),
    }
    for key in ("traceparent", "dataschema"):
        if headers.get(key):
            attributes[key] = headers[key]
    head = dumps(attributes)
    return head[:-1] + b',"data":' + row.payload.encode() + b"}"


class Relay:
    def __init__(
        self,
        *,
        engine: AsyncEngine,
        schema: str,
        redis: aioredis.Redis,
        stream: str,
        service: str,
        batch_size: int = 500,
        poll_interval: float = 1.0,
        stream_retention_seconds: float = 7 * 24 * 3600,
        outbox_retention_seconds: float = 72 * 3600,
        prune_interval: float = 60.0,
        stats_interval: float = 5.0,
        after_publish: AfterPublish | None = None,
    ) -> None:
        self.engine = engine
        self.schema = schema
        self.redis = redis
        self.stream = stream
        self.service = service
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        self.stream_retention_seconds = stream_retention_seconds
        self.outbox_retention_seconds = outbox_retention_seconds
        self.prune_interval = prune_interval
        self.stats_interval = stats_interval
        self.after_publish = after_publish  # a test seam: runs between XADD and the mark
        self._wake = asyncio.Event()
        self._stopping = False
        table = f"{quoted(schema)}.outbox"
        self._lock_sql = text("SELECT pg_advisory_xact_lock(hashtext(:key))")
        self._lock_key = f"outbox-relay:{schema}"
        # `table` is a checked identifier (see `quoted`); every value is a bound parameter.
        columns = (
            "id, seq, type, source, aggregate_type, aggregate_id, payload::text AS payload,"
            " headers::text AS headers, created_at"
        )
        pending = f"{table} WHERE published_at IS NULL"
        self._claim_sql = text(
            f"SELECT {columns} FROM {pending} ORDER BY seq LIMIT :n FOR UPDATE SKIP LOCKED"  # noqa: S608
        )
        self._mark_sql = text(f"UPDATE {table} SET published_at = now() WHERE id = ANY(:ids)")  # noqa: S608
        old = f"{table} WHERE published_at < now() - make_interval(secs => :secs) LIMIT 5000"
        self._prune_sql = text(f"DELETE FROM {table} WHERE id IN (SELECT id FROM {old})")  # noqa: S608
        age = "coalesce(extract(epoch FROM clock_timestamp() - min(created_at)), 0)"
        self._stats_sql = text(f"SELECT count(*), {age} FROM {pending}")  # noqa: S608

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()

    def _minid(self) -> str:
        return f"{int((time.time() - self.stream_retention_seconds) * 1000)}-0"

    async def publish_batch(self) -> int:
        """Publish one batch; returns how many rows it published."""
        async with self.engine.begin() as conn:
            await conn.execute(self._lock_sql, {"key": self._lock_key})
            rows = (await conn.execute(self._claim_sql, {"n": self.batch_size})).all()
            if not rows:
                return 0
            minid = self._minid()
            pipe = self.redis.pipeline(transaction=False)
            for row in rows:
                with continued_span(
                    f"publish {row.type}",
                    self._traceparent(row),
                    kind=SpanKind.PRODUCER,
                    attributes={"messaging.destination.name": self.stream, "event.id": str(row.id)},
                ) as traceparent:
                    body = envelope_json(row, traceparent)
                    # Inside the span: the line carries the event's trace id, a hop of its trace.
                    log.info("publishing %s", row.type, extra={"event_id": str(row.id)})
                pipe.xadd(self.stream, {"event": body}, minid=minid, approximate=True)
            await pipe.execute()
            if self.after_publish is not None:
                await self.after_publish(rows)
            await conn.execute(self._mark_sql, {"ids": [r.id for r in rows]})
        now = time.time()
        lag = m.OUTBOX_PUBLISH_LAG.labels(self.service)
        for row in rows:
            lag.observe(max(0.0, now - row.created_at.timestamp()))
        m.OUTBOX_PUBLISHED.labels(self.service).inc(len(rows))
        return len(rows)

    @staticmethod
    def _traceparent(row: Row[Any]) -> str | None:
        if not row.headers or "traceparent" not in row.headers:
            return None
        value = loads(row.headers).get("traceparent")
        return value if isinstance(value, str) else None

    async def drain(self) -> int:
        """Publish until nothing is pending; returns how many rows it published."""
        total = 0
        while n := await self.publish_batch():
            total += n
        return total

    async def prune(self) -> int:
        async with self.engine.begin() as conn:
            result = await conn.execute(self._prune_sql, {"secs": self.outbox_retention_seconds})
        pruned = int(getattr(result, "rowcount", 0) or 0)
        if pruned:
            m.OUTBOX_PRUNED.labels(self.service).inc(pruned)
        return pruned

    async def update_stats(self) -> tuple[int, float]:
        async with self.engine.connect() as conn:
            count, age = (await conn.execute(self._stats_sql)).one()
        m.OUTBOX_BACKLOG.labels(self.service).set(count)
        m.OUTBOX_OLDEST_PENDING_AGE.labels(self.service).set(float(age))
        await self._update_group_lag()
        return int(count), float(age)

    async def _update_group_lag(self) -> None:
        """How far behind each consumer group of this stream is, seen from the producer: it
        still answers when a consumer's own process is down (and its `consumer_lag` with it)."""
        try:
            groups = await self.redis.xinfo_groups(self.stream)
        except aioredis.ResponseError:
            return  # the stream does not exist yet: nothing was published, nobody lags
        for group in groups:
            lag = group.get("lag")
            if lag is not None:
                m.STREAM_GROUP_LAG.labels(self.service, group["name"]).set(int(lag))

    async def _listen(self) -> None:
        """Keep a LISTEN connection open; reconnect when it drops (polling covers the gap)."""
        channel = notify_channel(self.schema)

        def on_notify(*_: Any) -> None:
            self._wake.set()

        while not self._stopping:
            try:
                async with self.engine.connect() as conn:
                    raw = await conn.get_raw_connection()
                    pg: Any = raw.driver_connection
                    await pg.add_listener(channel, on_notify)
                    try:
                        self._wake.set()  # catch up on whatever was committed before LISTEN
                        while not self._stopping and not pg.is_closed():  # noqa: ASYNC110
                            await asyncio.sleep(1.0)  # asyncpg has no awaitable "closed" signal
                    finally:
                        if not pg.is_closed():
                            await pg.remove_listener(channel, on_notify)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("outbox LISTEN connection lost; polling meanwhile", exc_info=True)
                await asyncio.sleep(1.0)

    async def _housekeeping(self) -> None:
        next_prune = 0.0
        while not self._stopping:
            try:
                await self.update_stats()
                if time.monotonic() >= next_prune:
                    await self.prune()
                    next_prune = time.monotonic() + self.prune_interval
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("outbox housekeeping failed", exc_info=True)
            await asyncio.sleep(self.stats_interval)

    async def run(self) -> None:
        listener = asyncio.create_task(self._listen(), name=f"outbox-listen-{self.service}")
        housekeeping = asyncio.create_task(
            self._housekeeping(), name=f"outbox-stats-{self.service}"
        )
        backoff = 0.1
        try:
            while not self._stopping:
                self._wake.clear()
                try:
                    published = await self.publish_batch()
                    backoff = 0.1
                except asyncio.CancelledError:
                    raise
                except Exception:
                    m.RELAY_ERRORS.labels(self.service).inc()
                    log.warning("outbox relay batch failed; retry in %.1fs", backoff, exc_info=True)
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, 5.0)
                    continue
                if published >= self.batch_size:
                    continue  # more is waiting
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=self.poll_interval)
        finally:
            for task in (listener, housekeeping):
                task.cancel()
            for task in (listener, housekeeping):
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
