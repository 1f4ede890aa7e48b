"""The outbox relay against real PostgreSQL and Redis: envelope, order, gaps, crashes, outages."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import tempfile
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis

from servicekit.context import traceparent_var
from servicekit.devstack import RedisServer, free_port
from servicekit.events import Relay, stream_for
from servicekit.events import metrics as m
from servicekit.jsonutil import loads

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"
PENDING = "SELECT count(*) FROM events_test.outbox WHERE published_at IS NULL"


def make_relay(kit: Any, rds: aioredis.Redis, prefix: str, **kw: Any) -> Relay:
    return Relay(
        engine=kit.engine,
        schema="events_test",
        redis=rds,
        stream=stream_for(kit.proc.SERVICE, prefix),
        service=kit.proc.SERVICE,
        poll_interval=kw.pop("poll_interval", 0.05),
        **kw,
    )


async def stream_events(rds: aioredis.Redis, prefix: str, service: str) -> list[dict[str, Any]]:
    entries = await rds.xrange(stream_for(service, prefix))
    return [loads(fields["event"]) for _, fields in entries]


async def test_relay_publishes_a_cloudevents_envelope_and_marks_the_row(
    kit: Any, rds: aioredis.Redis, prefix: str
) -> None:
    token = traceparent_var.set(TRACEPARENT)
    try:
        event_id, _ = await kit.write("agg-1")
    finally:
        traceparent_var.reset(token)

    assert await make_relay(kit, rds, prefix).drain() == 1

    [event] = await stream_events(rds, prefix, kit.proc.SERVICE)
    assert event["id"] == str(event_id)
    assert event["specversion"] == "1.0"
    assert event["type"] == "ledger.entry_added"
    assert event["source"] == "events-test"
    assert event["subject"] == "agg-1"
    assert event["datacontenttype"] == "application/json"
    assert event["dataschema"] == "urn:blueprint:event:ledger.entry_added:v1"
    assert event["data"] == {"aggregate_id": "agg-1", "n": 1, "poison": False}
    assert event["traceparent"].split("-")[1] == TRACE_ID
    assert event["time"]
    assert await kit.scalar(PENDING) == 0


async def test_a_row_committed_after_a_higher_sequence_was_published_is_still_published(
    kit: Any, rds: aioredis.Redis, prefix: str
) -> None:
    relay = make_relay(kit, rds, prefix)
    async with kit.database.sessionmaker() as slow, slow.begin():
        # Takes the lower sequence number first, commits last.
        late_id = await _emit_raw(slow, kit, "slow-agg")
        early_id, _ = await kit.write("fast-agg")
        assert await relay.drain() == 1
    assert await relay.drain() == 1

    ids = [e["id"] for e in await stream_events(rds, prefix, kit.proc.SERVICE)]
    assert ids == [str(early_id), str(late_id)]


async def _emit_raw(session: Any, kit: Any, aggregate_id: str) -> Any:
    from servicekit.events import emit

    return await emit(
        session,
        kit.outbox,
        kit.proc.LedgerEntryV1(aggregate_id=aggregate_id, n=1),
        source=kit.proc.SERVICE,
        aggregate_type="aggregate",
        aggregate_id=aggregate_id,
    )


async def test_several_relays_publish_each_row_once_in_per_aggregate_order(
    kit: Any, rds: aioredis.Redis, prefix: str
) -> None:
    relays = [make_relay(kit, rds, prefix, batch_size=7) for _ in range(3)]
    tasks = [asyncio.create_task(r.run()) for r in relays]
    aggregates = [f"agg-{i}" for i in range(5)]
    per_aggregate = 30

    async def writer(agg: str) -> None:
        for _ in range(per_aggregate):
            await kit.write(agg)

    try:
        await asyncio.gather(*(writer(a) for a in aggregates))
        total = len(aggregates) * per_aggregate

        async def all_published() -> bool:
            return await rds.xlen(stream_for(kit.proc.SERVICE, prefix)) >= total and (
                await kit.scalar(
                    "SELECT count(*) FROM events_test.outbox WHERE published_at IS NULL"
                )
                == 0
            )

        await kit.eventually(all_published, what="every row published")
    finally:
        for r in relays:
            r.stop()
        await asyncio.gather(*tasks)

    events = await stream_events(rds, prefix, kit.proc.SERVICE)
    assert len(events) == total  # no duplicates in normal operation
    for agg in aggregates:
        ns = [e["data"]["n"] for e in events if e["subject"] == agg]
        assert ns == list(range(1, per_aggregate + 1))


async def test_published_rows_are_pruned_after_the_retention_period(
    kit: Any, rds: aioredis.Redis, prefix: str
) -> None:
    await kit.write("agg-1")
    relay = make_relay(kit, rds, prefix, outbox_retention_seconds=0)
    await relay.drain()
    await kit.write("agg-1")  # still pending: never pruned

    assert await relay.prune() == 1
    assert await kit.scalar("SELECT count(*) FROM events_test.outbox") == 1
    assert await kit.scalar(PENDING) == 1


async def test_backlog_metrics_report_pending_rows_and_their_age(
    kit: Any, rds: aioredis.Redis, prefix: str
) -> None:
    for _ in range(3):
        await kit.write("agg-1")
    relay = make_relay(kit, rds, prefix)

    count, age = await relay.update_stats()
    assert count == 3
    assert age > 0
    assert m.OUTBOX_BACKLOG.labels("events-test")._value.get() == 3

    await relay.drain()
    assert await relay.update_stats() == (0, 0.0)


async def test_the_relay_reports_how_far_each_consumer_group_of_its_stream_lags(
    kit: Any, rds: aioredis.Redis, prefix: str
) -> None:
    """Seen from the producer, so a consumer whose process is down still shows its lag."""
    stream = stream_for(kit.proc.SERVICE, prefix)
    relay = make_relay(kit, rds, prefix)
    await relay.update_stats()  # no stream yet: nothing to report, no error
    for _ in range(2):
        await kit.write("agg-1")
    await relay.drain()
    await rds.xgroup_create(stream, "lagging-svc", id="0")
    await rds.xgroup_create(stream, "current-svc", id="$")
    await relay.update_stats()
    lag = m.STREAM_GROUP_LAG
    assert lag.labels(kit.proc.SERVICE, "lagging-svc")._value.get() == 2
    assert lag.labels(kit.proc.SERVICE, "current-svc")._value.get() == 0


async def test_stream_is_trimmed_by_age(kit: Any, rds: aioredis.Redis, prefix: str) -> None:
    stream = stream_for(kit.proc.SERVICE, prefix)
    for i in range(200):  # entries from a day ago
        await rds.xadd(stream, {"event": "{}"}, id=f"{1_000_000 + i}-0")
    await kit.write("agg-1")

    await make_relay(kit, rds, prefix, stream_retention_seconds=3600).drain()

    entries = await rds.xrange(stream)
    assert loads(entries[-1][1]["event"])["subject"] == "agg-1"
    assert len(entries) < 201  # approximate trimming drops whole old nodes


async def test_relay_killed_mid_batch_loses_nothing_and_duplicates_are_absorbed(
    kit: Any, rds: aioredis.Redis, redis_url: str, prefix: str, procs: Any, tmp_path: Path
) -> None:
    ids = [(await kit.write(f"agg-{i % 4}"))[0] for i in range(120)]
    marker = tmp_path / "published"
    first = procs.start("relay", redis_url, prefix, "--hang-after-publish", str(marker))

    async def marker_written() -> bool:
        return marker.exists()

    await kit.eventually(marker_written, what="the relay to publish its first batch")
    os.kill(first.pid, signal.SIGKILL)
    first.wait(10)
    # XADDed but not marked: the batch is still pending in the outbox.
    assert await kit.scalar(PENDING) == 120

    procs.start("relay", redis_url, prefix)
    consumer = procs.start("consumer", redis_url, prefix)

    async def all_handled() -> bool:
        return await kit.scalar("SELECT count(*) FROM events_test.inbox") == len(ids)

    await kit.eventually(all_handled, what="every event to be handled")
    consumer.send_signal(signal.SIGKILL)

    events = await stream_events(rds, prefix, kit.proc.SERVICE)
    assert {e["id"] for e in events} == {str(i) for i in ids}
    assert len(events) == len(ids) + 50  # the killed batch went out twice
    assert await kit.scalar("SELECT count(*) FROM events_test.ledger") == len(ids)
    assert (
        await kit.scalar(
            "SELECT count(*) FROM (SELECT event_id FROM events_test.ledger"
            " GROUP BY event_id HAVING count(*) > 1) d"
        )
        == 0
    )


async def test_redis_outage_keeps_events_in_the_outbox_and_drains_in_order(
    kit: Any, prefix: str
) -> None:
    base = Path(tempfile.mkdtemp(prefix="bp-events-redis-"))
    server = RedisServer(base, free_port(), appendonly=True)
    server.start()
    client = aioredis.from_url(server.url, decode_responses=True, socket_timeout=2)
    relay = make_relay(kit, client, prefix, batch_size=10)
    task = asyncio.create_task(relay.run())
    try:
        await kit.write("agg-a")

        async def first_published() -> bool:
            return (
                await kit.scalar(
                    "SELECT count(*) FROM events_test.outbox WHERE published_at IS NULL"
                )
                == 0
            )

        await kit.eventually(first_published, what="the first event")
        server.stop()

        for i in range(40):  # writes keep succeeding while Redis is down
            await kit.write(f"agg-{'ab'[i % 2]}")
        assert (
            await kit.scalar("SELECT count(*) FROM events_test.outbox WHERE published_at IS NULL")
            > 0
        )

        server.start()

        async def drained() -> bool:
            return (
                await kit.scalar(
                    "SELECT count(*) FROM events_test.outbox WHERE published_at IS NULL"
                )
                == 0
            )

        await kit.eventually(drained, what="the backlog to drain")
        assert not task.done()

        events = await stream_events(client, prefix, kit.proc.SERVICE)
        seen: dict[str, list[int]] = {}
        first_seen: set[str] = set()
        for e in events:
            if e["id"] in first_seen:
                continue
            first_seen.add(e["id"])
            seen.setdefault(e["subject"], []).append(e["data"]["n"])
        assert seen["agg-a"] == list(range(1, 22))
        assert seen["agg-b"] == list(range(1, 21))
    finally:
        relay.stop()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(task, 10)
        await client.aclose()
        server.stop()
        shutil.rmtree(base, ignore_errors=True)


async def test_relay_wakes_on_notify(kit: Any, rds: aioredis.Redis, prefix: str) -> None:
    relay = make_relay(kit, rds, prefix, poll_interval=3600)  # polling would never come
    task = asyncio.create_task(relay.run())
    try:

        async def published_count() -> int:
            return int(await kit.scalar(PENDING.replace("IS NULL", "IS NOT NULL")))

        await asyncio.sleep(0)  # let it start listening

        async def listening() -> bool:
            return bool(
                await kit.scalar(
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'ClientRead'"
                    " AND query LIKE 'LISTEN%'"
                )
            )

        await kit.eventually(listening, what="the relay to LISTEN")
        await kit.write("agg-1")

        async def one() -> bool:
            return await published_count() == 1

        await kit.eventually(one, what="the NOTIFY to wake the relay")
    finally:
        relay.stop()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
