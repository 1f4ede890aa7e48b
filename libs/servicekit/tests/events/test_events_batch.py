"""The consumer's batch transaction against real PostgreSQL and Redis: a failing entry rolls back
only itself, later entries of its aggregate wait behind it (and are released in order),
duplicates inside one batch, dead-lettering releases the aggregate."""

from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis
from prometheus_client import REGISTRY

from servicekit.events import Consumer, EventHandlers, Relay, stream_for
from servicekit.events.names import errors_hash


def consumed(outcome: str) -> float:
    value = REGISTRY.get_sample_value(
        "events_consumed_total",
        {"service": "events-test", "type": "ledger.entry_added", "outcome": outcome},
    )
    return value or 0.0


class Poison:
    """Fails the handling of poison events (after the handler wrote its ledger row) until cured."""

    def __init__(self) -> None:
        self.cured = False
        self.failures = 0

    def __call__(self, event: Any) -> None:
        if event.data.poison and not self.cured:
            self.failures += 1
            raise RuntimeError("cannot apply this entry")


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


async def publish(kit: Any, rds: aioredis.Redis, prefix: str) -> None:
    await Relay(
        engine=kit.engine,
        schema="events_test",
        redis=rds,
        stream=stream_for(kit.proc.SERVICE, prefix),
        service=kit.proc.SERVICE,
    ).drain()


async def ledger(kit: Any, aggregate_id: str) -> list[int]:
    ns = await kit.scalar(
        "SELECT array_agg(n ORDER BY id) FROM events_test.ledger WHERE aggregate_id = :a",
        a=aggregate_id,
    )
    return ns or []


async def pending(rds: aioredis.Redis, stream: str, group: str) -> dict[str, int]:
    """Pending entry id -> times delivered."""
    rows = await rds.xpending_range(stream, group, "-", "+", 1000)
    return {r["message_id"]: int(r["times_delivered"]) for r in rows}


async def test_a_failing_entry_in_the_middle_of_a_batch_rolls_back_only_itself(
    kit: Any, rds: aioredis.Redis, prefix: str
) -> None:
    first, _ = await kit.write("agg-a")
    await kit.write("agg-b", poison=True)
    last, _ = await kit.write("agg-c")
    await publish(kit, rds, prefix)
    stream = stream_for(kit.proc.SERVICE, prefix)
    poison = Poison()
    consumer = make_consumer(kit, rds, prefix, kit.proc.make_handlers(poison))
    await consumer.ensure_groups()
    retried_before = consumed("retried")

    assert await consumer.poll_once() == 3  # one XREADGROUP, one transaction

    assert poison.failures >= 1
    handled = await kit.scalar("SELECT array_agg(event_id ORDER BY id) FROM events_test.ledger")
    assert handled == [first, last]  # the poison handler's own ledger row was rolled back
    inbox = await kit.scalar("SELECT array_agg(event_id) FROM events_test.inbox")
    assert set(inbox) == {first, last}
    assert consumed("retried") == retried_before + 1
    [entry_id] = await pending(rds, stream, kit.proc.SERVICE)
    error = await rds.hget(errors_hash(kit.proc.SERVICE, prefix), f"{stream}/{entry_id}")
    assert error is not None and "cannot apply this entry" in error


async def test_later_entries_of_a_failed_aggregate_wait_and_are_released_in_order(
    kit: Any, rds: aioredis.Redis, prefix: str
) -> None:
    await kit.write("agg-x", poison=True)  # n = 1, fails
    await kit.write("agg-y")
    await kit.write("agg-x")  # n = 2
    await kit.write("agg-x")  # n = 3
    await publish(kit, rds, prefix)
    stream = stream_for(kit.proc.SERVICE, prefix)
    ids = [entry_id for entry_id, _ in await rds.xrange(stream)]
    poison = Poison()
    consumer = make_consumer(
        kit, rds, prefix, kit.proc.make_handlers(poison), claim_idle_ms=3_600_000
    )
    await consumer.ensure_groups()
    deferred_before = consumed("deferred")

    assert await consumer.poll_once() == 4

    assert await ledger(kit, "agg-y") == [1]  # another aggregate is not held up
    assert await ledger(kit, "agg-x") == []  # n = 2 and 3 wait behind the failed n = 1
    assert consumed("deferred") == deferred_before + 2
    waiting = await pending(rds, stream, kit.proc.SERVICE)
    # Waiting is not an attempt: the deferred entries' delivery counters are restored.
    assert waiting == {ids[0]: 1, ids[2]: 0, ids[3]: 0}

    # A new event of the same aggregate read later waits too.
    await kit.write("agg-x")  # n = 4
    await publish(kit, rds, prefix)
    assert await consumer.poll_once() == 1
    assert await ledger(kit, "agg-x") == []
    ids = [entry_id for entry_id, _ in await rds.xrange(stream)]
    assert set(await pending(rds, stream, kit.proc.SERVICE)) == {ids[0], ids[2], ids[3], ids[4]}

    # The failed entry is retried alone (as a reclaim would) and now succeeds: the entries
    # behind it are released at once, in stream order, each on its first attempt.
    poison.cured = True
    [(_, fields)] = await rds.xrange(stream, min=ids[0], max=ids[0])
    outcomes = await consumer.handle_batch(stream, [(ids[0], fields)], deliveries={ids[0]: 2})

    assert outcomes == {
        ids[0]: "processed",
        ids[2]: "processed",
        ids[3]: "processed",
        ids[4]: "processed",
    }
    assert await ledger(kit, "agg-x") == [1, 2, 3, 4]
    assert await pending(rds, stream, kit.proc.SERVICE) == {}


async def test_reclaiming_a_failed_aggregate_keeps_its_order(
    kit: Any, rds: aioredis.Redis, prefix: str
) -> None:
    await kit.write("agg-x", poison=True)
    await kit.write("agg-x")
    await kit.write("agg-x")
    await publish(kit, rds, prefix)
    poison = Poison()
    consumer = make_consumer(kit, rds, prefix, kit.proc.make_handlers(poison), claim_idle_ms=0)
    await consumer.ensure_groups()
    await consumer.poll_once()
    assert await ledger(kit, "agg-x") == []

    await consumer.reclaim()  # everything pending comes back; the first fails again
    assert await ledger(kit, "agg-x") == []
    assert poison.failures >= 2

    poison.cured = True
    await consumer.reclaim()
    assert await ledger(kit, "agg-x") == [1, 2, 3]


async def test_duplicates_inside_one_batch_are_applied_once(
    kit: Any, rds: aioredis.Redis, prefix: str
) -> None:
    good_id, _ = await kit.write("agg-a")
    poison_id, _ = await kit.write("agg-p", poison=True)
    await publish(kit, rds, prefix)
    stream = stream_for(kit.proc.SERVICE, prefix)
    for _, fields in await rds.xrange(stream):
        await rds.xadd(stream, fields)  # both again, as after a relay crash
    poison = Poison()
    consumer = make_consumer(kit, rds, prefix, kit.proc.make_handlers(poison))
    await consumer.ensure_groups()
    duplicates_before = consumed("duplicate")

    assert await consumer.poll_once() == 4

    count_sql = "SELECT count(*) FROM events_test.ledger WHERE event_id = :id"
    assert await kit.scalar(count_sql, id=good_id) == 1
    assert await kit.scalar(count_sql, id=poison_id) == 0
    assert consumed("duplicate") == duplicates_before + 1
    # The failed event and its copy (same aggregate, behind it) stay pending; the rest is acked.
    assert len(await pending(rds, stream, kit.proc.SERVICE)) == 2

    poison.cured = True
    consumer.claim_idle_ms = 0
    await consumer.reclaim()
    assert await kit.scalar(count_sql, id=poison_id) == 1
    assert await pending(rds, stream, kit.proc.SERVICE) == {}


async def test_a_dead_lettered_entry_no_longer_holds_its_aggregate(
    kit: Any, rds: aioredis.Redis, prefix: str
) -> None:
    await kit.write("agg-x", poison=True)
    await kit.write("agg-x")
    await publish(kit, rds, prefix)
    stream = stream_for(kit.proc.SERVICE, prefix)
    ids = [entry_id for entry_id, _ in await rds.xrange(stream)]
    consumer = make_consumer(
        kit, rds, prefix, kit.proc.make_handlers(Poison()), max_attempts=2, claim_idle_ms=0
    )
    await consumer.ensure_groups()
    await consumer.poll_once()
    assert await ledger(kit, "agg-x") == []

    outcomes = await consumer.handle_batch(
        stream, await rds.xrange(stream), deliveries={ids[0]: 2, ids[1]: 1}
    )

    assert outcomes == {ids[0]: "dead_lettered", ids[1]: "processed"}
    assert await ledger(kit, "agg-x") == [2]
    assert await pending(rds, stream, kit.proc.SERVICE) == {}
