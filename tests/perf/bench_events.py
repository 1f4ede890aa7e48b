"""Event backbone benchmark: relay throughput, and commit-to-handled latency at a fixed load.

    uv run python tests/perf/bench_events.py [--events 30000] [--rate 300] [--seconds 20]

Starts its own PostgreSQL cluster and Redis (servicekit.devstack). Prints:
- relay throughput: events/s of a relay draining a backlog, next to the raw rate of the same
  XADD pipelines without the database (both sides of the ratio from the same run);
- latency: from each event's producing transaction to its XADD by the relay, and to the end of
  the consumer's batch that handled it (after its COMMIT and XACK), p50/p99, with producers
  committing `--rate` events per second.
Goals: relay >= 3,000 events/s; p50 < 20 ms, p99 < 150 ms at 300 events/s.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any, ClassVar

import redis.asyncio as aioredis
from benchkit import Platform, percentile, platform
from pydantic import BaseModel
from sqlalchemy import MetaData, text
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

from contracts.envelope import CloudEvent
from servicekit.db import NAMING_CONVENTION, Database, make_engine
from servicekit.events import Consumer, EventHandlers, Relay, emit, stream_for
from servicekit.jsonutil import dumps, loads
from servicekit.outbox import create_outbox_sql, inbox_table, outbox_table

SCHEMA = "bench"
SERVICE = "bench-svc"
metadata = MetaData(schema=SCHEMA, naming_convention=NAMING_CONVENTION)
outbox = outbox_table(metadata)
inbox_table(metadata)


class BenchTickV1(BaseModel):
    event_type: ClassVar[str] = "bench.tick"
    schema_version: ClassVar[int] = 1

    aggregate_id: str
    n: int


async def setup(url: str) -> None:
    """The outbox and inbox tables in the (empty) schema."""
    engine = create_async_engine(url)
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
        for stmt in create_outbox_sql(SCHEMA):
            await conn.execute(text(stmt))
    await engine.dispose()


async def relay_throughput(url: str, redis_url: str, events: int) -> None:
    engine = make_engine(url, schema=SCHEMA, application_name="bench-relay")
    rds = aioredis.from_url(redis_url, decode_responses=True)
    payload = '{"aggregate_id": "a", "n": 1}'
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO bench.outbox (id, type, source, aggregate_type, aggregate_id, payload)"
                " SELECT gen_random_uuid(), 'bench.tick', :src, 'agg', (g % 100)::text,"
                " CAST(:p AS jsonb) FROM generate_series(1, :n) g"
            ),
            {"src": SERVICE, "p": payload, "n": events},
        )
    relay = Relay(
        engine=engine,
        schema=SCHEMA,
        redis=rds,
        stream=stream_for(SERVICE, "thr"),
        service=SERVICE,
        batch_size=500,
    )
    started = time.perf_counter()
    published = await relay.drain()
    relay_s = time.perf_counter() - started

    body = dumps({"specversion": "1.0", "id": str(uuid.uuid4()), "data": {"a": "a", "n": 1}})
    started = time.perf_counter()
    for _ in range(events // 500):
        pipe = rds.pipeline(transaction=False)
        for _ in range(500):
            pipe.xadd("raw", {"event": body})
        await pipe.execute()
    raw_s = time.perf_counter() - started
    print(f"relay throughput: {published / relay_s:,.0f} events/s ({published} events, batch 500)")
    print(f"raw XADD pipelines (no database): {(events // 500) * 500 / raw_s:,.0f} events/s")
    await rds.aclose()  # type: ignore[attr-defined]
    await engine.dispose()


async def latency(url: str, redis_url: str, rate: int, seconds: float, workdir: Path) -> None:
    engine = make_engine(url, schema=SCHEMA, application_name="bench-latency", pool_size=20)
    database = Database(engine)
    relay_redis = aioredis.from_url(redis_url, decode_responses=True)
    consumer_redis = aioredis.from_url(redis_url, decode_responses=True)
    handled: dict[str, float] = {}
    handlers = EventHandlers()

    async def handle(session: AsyncSession, event: CloudEvent[BenchTickV1]) -> None:
        return None

    handlers.add(BenchTickV1, handle, producer=SERVICE)
    published: dict[str, float] = {}

    async def after_publish(rows: Any) -> None:
        now = time.time()  # after the XADD pipeline, before the relay's commit
        for row in rows:
            published[str(row.id)] = now

    relay = Relay(
        engine=engine,
        schema=SCHEMA,
        redis=relay_redis,
        stream=stream_for(SERVICE, "lat"),
        service=SERVICE,
        poll_interval=1.0,
        after_publish=after_publish,
    )
    consumer = Consumer(
        sessionmaker=database.sessionmaker,
        schema=SCHEMA,
        redis=consumer_redis,
        group="bench-consumer",
        handlers=handlers,
        prefix="lat",
        block_ms=1000,
    )
    original = consumer.handle_batch

    async def timed(
        stream: str, entries: list[tuple[Any, dict[Any, Any]]], **kw: Any
    ) -> dict[str, str]:
        outcomes = await original(stream, entries, **kw)
        now = time.time()  # after the batch's commit and XACK
        for entry_id, fields in entries:
            if outcomes.get(entry_id) in ("processed", "duplicate"):
                handled[loads(fields["event"])["id"]] = now
        return outcomes

    consumer.handle_batch = timed  # type: ignore[method-assign]
    await consumer.ensure_groups()
    tasks = [asyncio.create_task(relay.run()), asyncio.create_task(consumer.run())]

    out = workdir / "commits.json"
    producer = await asyncio.create_subprocess_exec(
        sys.executable,
        __file__,
        "--produce",
        url,
        "--rate",
        str(rate),
        "--seconds",
        str(seconds),
        "--out",
        str(out),
    )
    await producer.wait()
    commits: dict[str, float] = loads(out.read_bytes())
    total = len(commits)
    deadline = time.monotonic() + 30
    while len(handled) < total and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    relay.stop()
    consumer.stop()
    await asyncio.gather(*tasks, return_exceptions=True)
    ms = [max(0.0, handled[i] - commits[i]) * 1000 for i in handled if i in commits]
    pub = [max(0.0, published[i] - commits[i]) * 1000 for i in published if i in commits]
    print(
        f"commit-to-published (XADD done): p50 {statistics.median(pub):.1f} ms, "
        f"p99 {percentile(pub, 0.99):.1f} ms"
    )
    print(
        f"commit-to-handled at {rate} events/s offered for {seconds:.0f}s: "
        f"p50 {statistics.median(ms):.1f} ms, p99 {percentile(ms, 0.99):.1f} ms "
        f"({len(handled)}/{total} handled)"
    )
    await relay_redis.aclose()  # type: ignore[attr-defined]
    await consumer_redis.aclose()  # type: ignore[attr-defined]
    await engine.dispose()


async def produce(url: str, rate: int, seconds: float, out: Path) -> None:
    """The producers, in a process of their own: `rate` committed events per second."""
    engine = make_engine(url, schema=SCHEMA, application_name="bench-producer", pool_size=20)
    database = Database(engine)
    commits: dict[str, float] = {}

    async def one(i: int) -> None:
        async with database.sessionmaker() as session, session.begin():
            event_id = await emit(
                session,
                outbox,
                BenchTickV1(aggregate_id=str(i % 50), n=i),
                source=SERVICE,
                aggregate_type="agg",
                aggregate_id=i % 50,
            )
        commits[str(event_id)] = time.time()

    interval = 1.0 / rate
    start = time.perf_counter()
    inflight: set[asyncio.Task[None]] = set()
    for i in range(int(rate * seconds)):
        delay = start + i * interval - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        t = asyncio.create_task(one(i))
        inflight.add(t)
        t.add_done_callback(inflight.discard)
    await asyncio.gather(*inflight)
    out.write_bytes(dumps(commits))
    await engine.dispose()


async def run(p: Platform, args: argparse.Namespace) -> None:
    await setup(p.url)
    await relay_throughput(p.url, p.redis_url, args.events)
    await latency(p.url, p.redis_url, args.rate, args.seconds, p.workdir)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=30_000)
    parser.add_argument("--rate", type=int, default=300)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--produce", metavar="DATABASE_URL", help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.produce:
        asyncio.run(produce(args.produce, args.rate, args.seconds, args.out))
    else:
        with platform(None, name="events", schema=SCHEMA, redis_appendonly=True) as p:
            asyncio.run(run(p, args))


if __name__ == "__main__":
    main()
