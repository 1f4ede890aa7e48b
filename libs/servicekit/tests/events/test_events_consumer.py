"""The event consumer against real PostgreSQL and Redis: exactly once in effect, retries, dead
letters, crashes, trace continuation and per-aggregate order."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis
from prometheus_client import REGISTRY

from servicekit.context import current_trace_ids, traceparent_var
from servicekit.events import (
    Consumer,
    EventHandlers,
    Relay,
    dead_letter_stream,
    list_dead_letters,
    redrive,
    stream_for,
)

TRACE_ID = "0af7651916cd43dd8448eb211c80319c"


def make_consumer(
    kit: Any, rds: aioredis.Redis, prefix: str, handlers: EventHandlers, **kw: Any
) -> Consumer:
    return Consumer(
        sessionmaker=kit.database.sessionmaker,
        schema="events_test",
        redis=rds,
        group=kit.proc.SERVICE,
        handlers=handlers,
        prefix=prefix,
        block_ms=50,
        **kw,
    )


def make_relay(kit: Any, rds: aioredis.Redis, prefix: str) -> Relay:
    return Relay(
        engine=kit.engine,
        schema="events_test",
        redis=rds,
        stream=stream_for(kit.proc.SERVICE, prefix),
        service=kit.proc.SERVICE,
        poll_interval=0.05,
    )


def consumed(outcome: str) -> float:
    value = REGISTRY.get_sample_value(
        "events_consumed_total",
        {"service": "events-test", "type": "ledger.entry_added", "outcome": outcome},
    )
    return value or 0.0


async def test_an_event_delivered_twice_is_applied_once_and_counted_as_duplicate(
    kit: Any, rds: aioredis.Redis, prefix: str
) -> None:
    event_id, _ = await kit.write("agg-1")
    await make_relay(kit, rds, prefix).drain()
    stream = stream_for(kit.proc.SERVICE, prefix)
    [(_, fields)] = await rds.xrange(stream)
    await rds.xadd(stream, fields)  # the same event again, as after a relay crash
    consumer = make_consumer(kit, rds, prefix, kit.proc.make_handlers())
    await consumer.ensure_groups()
    duplicates_before = consumed("duplicate")

    assert await consumer.poll_once() == 2

    ledger_sql = "SELECT count(*) FROM events_test.ledger WHERE event_id = :id"
    assert await kit.scalar(ledger_sql, id=event_id) == 1
    assert await kit.scalar("SELECT count(*) FROM events_test.inbox") == 1
    assert consumed("duplicate") == duplicates_before + 1
    groups = await rds.xinfo_groups(stream)
    assert groups[0]["pending"] == 0


async def test_the_handler_continues_the_producers_trace(
    kit: Any, rds: aioredis.Redis, prefix: str
) -> None:
    token = traceparent_var.set(f"00-{TRACE_ID}-b7ad6b7169203331-01")
    try:
        await kit.write("agg-1")
    finally:
        traceparent_var.reset(token)
    await make_relay(kit, rds, prefix).drain()
    seen: list[str | None] = []

    def capture(event: Any) -> None:
        seen.append(current_trace_ids()[0])

    consumer = make_consumer(kit, rds, prefix, kit.proc.make_handlers(capture))
    await consumer.ensure_groups()
    await consumer.poll_once()

    assert seen == [TRACE_ID]


async def test_a_consumer_killed_mid_handling_gets_the_event_applied_exactly_once(
    kit: Any, rds: aioredis.Redis, redis_url: str, prefix: str, procs: Any, tmp_path: Path
) -> None:
    ids = [(await kit.write("agg-1"))[0] for _ in range(3)]
    await make_relay(kit, rds, prefix).drain()
    marker = tmp_path / "handling"
    first = procs.start("consumer", redis_url, prefix, "--hang-in-handler", str(marker))

    async def in_handler() -> bool:
        return marker.exists()

    await kit.eventually(in_handler, what="the consumer to be inside its handler")
    os.kill(first.pid, signal.SIGKILL)
    first.wait(10)
    assert await kit.scalar("SELECT count(*) FROM events_test.ledger") == 0

    procs.start("consumer", redis_url, prefix, "--claim-idle-ms", "200")

    async def all_applied() -> bool:
        return await kit.scalar("SELECT count(*) FROM events_test.inbox") == 3

    await kit.eventually(all_applied, what="the re-delivery")
    rows = await kit.scalar("SELECT array_agg(event_id ORDER BY id) FROM events_test.ledger")
    assert rows == ids  # each once, in order


async def test_a_poison_event_is_dead_lettered_without_blocking_others_and_can_be_redriven(
    kit: Any, rds: aioredis.Redis, redis_url: str, prefix: str
) -> None:
    fixed = False

    def fail_on_poison(event: Any) -> None:
        if event.data.poison and not fixed:
            raise RuntimeError("cannot apply this entry")

    poison_id, _ = await kit.write("agg-p", poison=True)
    good = [(await kit.write(f"agg-{i}"))[0] for i in range(5)]
    await make_relay(kit, rds, prefix).drain()
    consumer = make_consumer(
        kit, rds, prefix, kit.proc.make_handlers(fail_on_poison), claim_idle_ms=50, max_attempts=3
    )
    dead_before = consumed("dead_lettered")
    task = asyncio.create_task(consumer.run())
    try:

        async def dead_lettered() -> bool:
            return await rds.xlen(dead_letter_stream(kit.proc.SERVICE, prefix)) == 1

        await kit.eventually(dead_lettered, what="the poison event to be dead-lettered")
        assert await kit.scalar("SELECT count(*) FROM events_test.ledger") == len(good)
        assert consumed("dead_lettered") == dead_before + 1

        [letter] = await list_dead_letters(rds, kit.proc.SERVICE, prefix=prefix)
        assert letter.type == "ledger.entry_added"
        assert letter.attempts == 3
        assert "RuntimeError: cannot apply this entry" in letter.error
        assert str(poison_id) in letter.event

        listed = subprocess.run(
            [
                sys.executable,
                "-m",
                "servicekit.events",
                "dead-letters",
                "list",
                "--service",
                kit.proc.SERVICE,
                "--prefix",
                prefix,
                "--redis-url",
                redis_url,
            ],
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        )
        assert str(poison_id) in listed.stdout and "cannot apply this entry" in listed.stdout

        fixed = True
        assert await redrive(rds, kit.proc.SERVICE, prefix=prefix) == 1

        async def applied() -> bool:
            return (
                await kit.scalar(
                    "SELECT count(*) FROM events_test.ledger WHERE event_id = :id", id=poison_id
                )
                == 1
            )

        await kit.eventually(applied, what="the re-driven event to be applied")
        assert await rds.xlen(dead_letter_stream(kit.proc.SERVICE, prefix)) == 0
    finally:
        consumer.stop()
        await asyncio.wait_for(task, 10)


async def test_one_aggregates_events_are_handled_in_commit_order(
    kit: Any, rds: aioredis.Redis, prefix: str
) -> None:
    relay = make_relay(kit, rds, prefix)
    consumer = make_consumer(kit, rds, prefix, kit.proc.make_handlers())
    tasks = [asyncio.create_task(relay.run()), asyncio.create_task(consumer.run())]
    aggregates = [f"task-{i}" for i in range(4)]

    async def writer(agg: str) -> None:
        for _ in range(25):
            await kit.write(agg)

    try:
        await asyncio.gather(*(writer(a) for a in aggregates))

        async def all_handled() -> bool:
            return await kit.scalar("SELECT count(*) FROM events_test.ledger") == 100

        await kit.eventually(all_handled, what="every event to be handled")
    finally:
        relay.stop()
        consumer.stop()
        for t in tasks:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(t, 10)

    for agg in aggregates:
        ns = await kit.scalar(
            "SELECT array_agg(n ORDER BY id) FROM events_test.ledger WHERE aggregate_id = :a", a=agg
        )
        assert ns == list(range(1, 26))


async def test_events_of_types_without_a_handler_are_acknowledged_and_skipped(
    kit: Any, rds: aioredis.Redis, prefix: str
) -> None:
    stream = stream_for(kit.proc.SERVICE, prefix)
    consumer = make_consumer(kit, rds, prefix, kit.proc.make_handlers())
    await consumer.ensure_groups()
    await rds.xadd(stream, {"event": '{"id": "x", "type": "something.else", "data": {}}'})

    assert await consumer.poll_once() == 1

    assert (await rds.xinfo_groups(stream))[0]["pending"] == 0
    assert await kit.scalar("SELECT count(*) FROM events_test.inbox") == 0
