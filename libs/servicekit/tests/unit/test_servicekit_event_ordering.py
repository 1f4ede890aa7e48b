"""servicekit.events.ordering: one aggregate's events are handled in stream order, also across
failures, and no entry is lost; without Redis or a database."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from servicekit.events.ordering import AggregateKey, BatchOrder, OrderingPolicy

STREAM = "events:task-svc"


def key(aggregate: str) -> AggregateKey:
    return (STREAM, "task", aggregate)


@dataclass(frozen=True)
class Delivery:
    """One entry as a batch receives it: its aggregate (None: it has none), its delivery count,
    and whether handling it fails this time."""

    id: str
    aggregate: str | None
    deliveries: int = 1
    fails: bool = False


def ok(entry_id: str, aggregate: str | None, deliveries: int = 1) -> Delivery:
    return Delivery(entry_id, aggregate, deliveries)


def bad(entry_id: str, aggregate: str | None, deliveries: int = 1) -> Delivery:
    return Delivery(entry_id, aggregate, deliveries, fails=True)


def decide(order: BatchOrder, entry: Delivery) -> str:
    """What the consumer does with one entry of a batch, as far as order is concerned."""
    k = key(entry.aggregate) if entry.aggregate is not None else None
    if order.defer_if_behind(k, entry.id, entry.deliveries):
        return "deferred"
    if entry.fails:
        return "retried" if order.fail(k, entry.id, entry.deliveries) else "dead_lettered"
    order.settle(k, entry.id)
    return "handled"


def run_batch(policy: OrderingPolicy, batch: list[Delivery]) -> tuple[list[str], dict[str, int]]:
    """The outcomes of a batch, and the entries it releases with their next delivery count."""
    order = policy.begin({key(e.aggregate) for e in batch if e.aggregate is not None})
    outcomes = [decide(order, e) for e in batch]
    released = policy.conclude(order)
    return outcomes, policy.released_entries(released)


CASES = [
    pytest.param(
        [[bad("1", "a"), ok("2", "b"), ok("3", "b")]],
        [(["retried", "handled", "handled"], {})],
        id="another aggregate is never held up",
    ),
    pytest.param(
        [[bad("1", "a"), ok("2", "a"), ok("3", "a")]],
        [(["retried", "deferred", "deferred"], {})],
        id="entries behind a failed one wait in the same batch",
    ),
    pytest.param(
        [[bad("1", "a")], [ok("2", "a")]],
        [(["retried"], {}), (["deferred"], {})],
        id="and in later batches",
    ),
    pytest.param(
        [[bad("1", "a"), ok("2", "a"), ok("3", "a")], [ok("1", "a", deliveries=2)]],
        [(["retried", "deferred", "deferred"], {}), (["handled"], {"2": 1, "3": 1})],
        id="handled on a retry, the failed entry releases those behind it on a first delivery",
    ),
    pytest.param(
        [[bad("1", "a"), ok("2", "a")], [bad("1", "a", deliveries=2)]],
        [(["retried", "deferred"], {}), (["retried"], {})],
        id="failing again it keeps holding its aggregate",
    ),
    pytest.param(
        [[bad("1", "a"), ok("2", "a")], [bad("1", "a", deliveries=3)]],
        [(["retried", "deferred"], {}), (["dead_lettered"], {"2": 1})],
        id="given up after the last attempt, it releases its aggregate",
    ),
    pytest.param(
        [[bad("1", "a"), ok("2", "a")], [ok("2", "a", deliveries=2)], [ok("1", "a", 2)]],
        [(["retried", "deferred"], {}), (["deferred"], {}), (["handled"], {"2": 1})],
        id="waiting is not an attempt: a redelivered waiting entry keeps its count",
    ),
    pytest.param(
        [[bad("1", None), ok("2", None)]],
        [(["retried", "handled"], {})],
        id="entries without an aggregate never wait",
    ),
    pytest.param(
        [[bad("1", "a", deliveries=3), ok("2", "a")]],
        [(["dead_lettered", "handled"], {})],
        id="an entry failing its last attempt holds nothing, even in its own batch",
    ),
    pytest.param(
        [[bad("1", "a"), ok("2", "a")], [ok("1", "a", 2), ok("2", "a", 1)]],
        [(["retried", "deferred"], {}), (["handled", "handled"], {})],
        id="failed entry and its waiting entry back in one batch are handled in order",
    ),
]


@pytest.mark.parametrize(("batches", "expected"), CASES)
def test_order_of_one_aggregate_across_batches(
    batches: list[list[Delivery]], expected: list[tuple[list[str], dict[str, int]]]
) -> None:
    policy = OrderingPolicy(max_attempts=3)

    assert [run_batch(policy, batch) for batch in batches] == expected


def test_a_batch_rolled_back_leaves_no_decision_behind() -> None:
    policy = OrderingPolicy(max_attempts=3)
    run_batch(policy, [bad("1", "a"), ok("2", "a")])
    order = policy.begin({key("a"), key("b")})
    attempt = order.copy()
    decide(attempt, bad("3", "b"))
    decide(attempt, ok("1", "a", deliveries=2))

    # The attempt rolled back; the batch runs again from the copy taken before it.
    assert [decide(order, e) for e in [ok("3", "b"), bad("1", "a", deliveries=2)]] == [
        "handled",
        "retried",
    ]
    assert policy.conclude(order) == []
    assert run_batch(policy, [ok("4", "b")]) == (["handled"], {})


def test_entries_waiting_behind_a_failed_one_keep_their_count_to_restore() -> None:
    policy = OrderingPolicy(max_attempts=5)
    order = policy.begin({key("a")})
    for entry in [bad("1", "a", deliveries=2), ok("2", "a", deliveries=1), ok("3", "a", 4)]:
        decide(order, entry)

    assert order.waiting_behind(key("a")) == [("2", 0), ("3", 3)]
    assert order.waiting_behind(key("b")) == []


def test_waiting_entries_no_longer_pending_are_forgotten() -> None:
    policy = OrderingPolicy(max_attempts=5)
    run_batch(policy, [bad("1", "a"), ok("2", "a"), ok("3", "a"), bad("4", "b"), ok("5", "b")])

    # Only lines whose front is not in the new batch need checking, and not the batch's own.
    assert policy.unconfirmed({key("a"), key("b")}, {"1", "4"}) == []
    assert sorted(policy.unconfirmed({key("a")}, {"3"})) == ["1", "2"]

    policy.forget({key("a"), key("b")}, {"1", "4", "5"})  # handled elsewhere, or trimmed

    assert run_batch(policy, [ok("6", "b")]) == (["handled"], {})
    assert policy.released_entries([key("a")]) == {"2": 1, "3": 1}


# Property: random entries over a few aggregates, read in random batches, reclaimed in random
# pages, handled with random failures (and random rolled-back attempts), against a model of the
# group's pending entries.

MAX_ATTEMPTS = 3


class Group:
    """A consumer group on one stream, as far as order and loss are concerned."""

    def __init__(self, aggregates: list[str]) -> None:
        self.stream = [(f"{i + 1}-0", agg) for i, agg in enumerate(aggregates)]
        self.aggregate = dict(self.stream)
        self.read = 0
        self.pending: dict[str, int] = {}  # entry id -> times delivered
        self.handled: list[str] = []
        self.dead: set[str] = set()
        self.attempts: Counter[str] = Counter()

    def earlier(self, entry_id: str) -> list[str]:
        position = int(entry_id.split("-")[0]) - 1
        agg = self.aggregate[entry_id]
        return [eid for eid, a in self.stream[:position] if a == agg]

    def check_nothing_lost(self) -> None:
        read = {eid for eid, _ in self.stream[: self.read]}
        settled = set(self.handled) | self.dead
        assert len(self.handled) == len(set(self.handled)), "an entry was handled twice"
        assert not self.dead & set(self.handled)
        assert not settled & set(self.pending)
        assert read == settled | set(self.pending), "an entry was lost"


def consume(
    group: Group, policy: OrderingPolicy, data: st.DataObject, batch: list[tuple[str, int]]
) -> None:
    """Handle a batch as the consumer does, then the entries it releases, and so on."""
    while batch:
        keys = {key(group.aggregate[eid]) for eid, _ in batch}
        in_batch = {eid for eid, _ in batch}
        gone = {e for e in policy.unconfirmed(keys, in_batch) if e not in group.pending}
        policy.forget(keys, gone)
        order = policy.begin(keys)
        if data.draw(st.booleans(), label="an attempt rolls back first"):
            attempt = order.copy()
            for eid, deliveries in batch:
                fails = data.draw(st.booleans(), label=f"{eid} fails in the attempt")
                decide(attempt, Delivery(eid, group.aggregate[eid], deliveries, fails))
        for eid, deliveries in batch:
            fails = data.draw(st.integers(0, 2), label=f"{eid} fails") == 0
            outcome = decide(order, Delivery(eid, group.aggregate[eid], deliveries, fails))
            if outcome == "deferred":
                group.pending[eid] = deliveries - 1  # its delivery counter is put back
                continue
            group.attempts[eid] += 1
            assert deliveries == group.attempts[eid], "waiting was counted as an attempt"
            if outcome == "handled":
                waiting = [e for e in group.earlier(eid) if e not in group.dead]
                assert all(e in group.handled for e in waiting), f"{eid} overtook {waiting}"
                group.handled.append(eid)
                del group.pending[eid]
            elif outcome == "dead_lettered":
                assert deliveries == MAX_ATTEMPTS
                group.dead.add(eid)
                del group.pending[eid]
        wanted = policy.released_entries(policy.conclude(order))
        claimed = {eid: count for eid, count in wanted.items() if eid in group.pending}
        policy.forget(keys, set(wanted) - set(claimed))
        group.pending.update(claimed)
        batch = sorted(claimed.items(), key=lambda item: int(item[0].split("-")[0]))
        group.check_nothing_lost()


def reclaim(group: Group, policy: OrderingPolicy, data: st.DataObject, everything: bool) -> None:
    """Entries idle long enough come back in stream order, page by page, counted once more."""
    ids = sorted(group.pending, key=lambda eid: int(eid.split("-")[0]))
    if not everything:
        ids = [eid for eid in ids if data.draw(st.booleans(), label=f"{eid} idle")]
    page_size = len(ids) if everything else data.draw(st.integers(1, 5), label="page")
    for start in range(0, len(ids), max(page_size, 1)):
        page = [eid for eid in ids[start : start + page_size] if eid in group.pending]
        for eid in page:
            group.pending[eid] += 1
        consume(group, policy, data, [(eid, group.pending[eid]) for eid in page])


@settings(max_examples=300, deadline=None)
@given(aggregates=st.lists(st.sampled_from("abc"), min_size=1, max_size=24), data=st.data())
def test_no_entry_overtakes_an_earlier_one_of_its_aggregate_and_none_is_lost(
    aggregates: list[str], data: st.DataObject
) -> None:
    group = Group(aggregates)
    policy = OrderingPolicy(max_attempts=MAX_ATTEMPTS)
    while group.read < len(group.stream):
        if group.pending and data.draw(st.booleans(), label="reclaim"):
            reclaim(group, policy, data, everything=False)
            continue
        size = data.draw(st.integers(1, 6), label="read")
        batch = [(eid, 1) for eid, _ in group.stream[group.read : group.read + size]]
        group.read += len(batch)
        group.pending.update(batch)
        consume(group, policy, data, batch)

    for _ in range(len(aggregates) * MAX_ATTEMPTS + 1):
        if not group.pending:
            break
        reclaim(group, policy, data, everything=True)

    assert not group.pending, "entries left pending for good"
    assert not policy, "lines left behind"
    assert set(group.handled) | group.dead == set(group.aggregate)
