"""Fifty requests at once against real PostgreSQL (real commits): the concurrency contract.

- the same expected_row_version: exactly one wins, every other gets 409, one event;
- the same client_event_id: one effect, every caller gets the same status and body;
- many blockers of one task, and blockers with many (shared) dependents, completed at once:
  no deadlock, every counter exact, one `unblock` per freed task.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from ..support.taskgraph import OPERATOR, ORG, PLANNER, asgi_client, make_graph
from ..support.transitions import event_counts, post_action, row_version, task_states

N = 50


@pytest.fixture
async def racing(committing_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with asgi_client(committing_app) as c:
        yield c


async def start_all(
    client: httpx.AsyncClient, headers: dict[str, str], task_ids: list[uuid.UUID]
) -> None:
    for tid in task_ids:
        r = await post_action(client, headers, tid, "start", 1)
        assert r.status_code == 200, r.text


async def test_simultaneous_same_row_version_one_winner_one_event(
    racing: httpx.AsyncClient, engine: AsyncEngine, jwt_keys: Any
) -> None:
    async with engine.begin() as conn:
        g = await make_graph(conn, ["a"])
    a = g["tasks"]["a"]
    planner = jwt_keys.headers(["planner"], org_id=ORG, user_id=PLANNER)
    users = [uuid.uuid4() for _ in range(N)]

    responses = await asyncio.gather(
        *(post_action(racing, planner, a, "assign", 1, {"assign_to": str(u)}) for u in users)
    )

    codes = [r.status_code for r in responses]
    assert codes.count(200) == 1, codes
    assert codes.count(409) == N - 1, codes
    losers = [r.json() for r in responses if r.status_code == 409]
    assert {p["code"] for p in losers} == {"VERSION_CONFLICT"}
    winner = next(r for r in responses if r.status_code == 200)
    assert row_version(winner) == 2
    assert (await task_states(engine, [a]))[a] == ("ready", 0, 2)
    assert (await event_counts(engine, [a], "assign"))[a] == 1


async def test_simultaneous_same_client_event_id_one_effect_identical_answers(
    racing: httpx.AsyncClient, engine: AsyncEngine, jwt_keys: Any
) -> None:
    async with engine.begin() as conn:
        g = await make_graph(conn, ["a", "b"], [("a", "b")])
    a, b = g["tasks"]["a"], g["tasks"]["b"]
    op = jwt_keys.headers(["operator"], org_id=ORG, user_id=OPERATOR)
    assert (await post_action(racing, op, a, "start", 1)).status_code == 200

    # `complete` changes state and cascades: applied twice it would unblock b twice.
    responses = await asyncio.gather(
        *(post_action(racing, op, a, "complete", 2, cid="c50-complete-a") for _ in range(N))
    )

    assert {r.status_code for r in responses} == {200}, [r.text for r in responses]
    bodies = [r.json() for r in responses]
    assert all(body == bodies[0] for body in bodies)
    assert {r.headers["ETag"] for r in responses} == {'"3"'}
    replayed = [r.headers.get("Idempotent-Replayed") == "true" for r in responses]
    assert replayed.count(False) == 1
    states = await task_states(engine, [a, b])
    assert states[a] == ("done", 0, 3)
    assert states[b] == ("ready", 0, 2)
    assert (await event_counts(engine, [a], "complete"))[a] == 1
    assert (await event_counts(engine, [b], "unblock"))[b] == 1


async def test_simultaneous_many_blockers_of_one_task_complete_at_once(
    racing: httpx.AsyncClient, engine: AsyncEngine, jwt_keys: Any
) -> None:
    blockers = [f"b{i:02d}" for i in range(N)]
    async with engine.begin() as conn:
        g = await make_graph(conn, [*blockers, "d"], [(b, "d") for b in blockers])
    ids = [g["tasks"][b] for b in blockers]
    d = g["tasks"]["d"]
    op = jwt_keys.headers(["operator"], org_id=ORG, user_id=OPERATOR)
    await start_all(racing, op, ids)

    responses = await asyncio.gather(*(post_action(racing, op, t, "complete", 2) for t in ids))

    assert [r.status_code for r in responses] == [200] * N, [r.text for r in responses]
    assert (await task_states(engine, [d]))[d] == ("ready", 0, 2)
    assert (await event_counts(engine, [d], "unblock"))[d] == 1


async def test_simultaneous_blockers_with_many_shared_dependents_complete_at_once(
    racing: httpx.AsyncClient, engine: AsyncEngine, jwt_keys: Any
) -> None:
    # Blocker i blocks dependents 10*i .. 10*i+49: each has 50 dependents, most shared by
    # several blockers. Blocker `late` (one of the shared ones') stays open: its dependents
    # must keep exactly one open blocker.
    blockers = [f"b{i}" for i in range(5)]
    dependents = [f"d{j:02d}" for j in range(90)]
    edges = [(f"b{i}", f"d{j:02d}") for i in range(5) for j in range(10 * i, 10 * i + 50)]
    late = "b4"
    async with engine.begin() as conn:
        g = await make_graph(conn, [*blockers, *dependents], edges)
    t = g["tasks"]
    op = jwt_keys.headers(["operator"], org_id=ORG, user_id=OPERATOR)
    racing_blockers = [b for b in blockers if b != late]
    await start_all(racing, op, [t[b] for b in blockers])

    responses = await asyncio.gather(
        *(post_action(racing, op, t[b], "complete", 2) for b in racing_blockers)
    )
    assert [r.status_code for r in responses] == [200] * len(racing_blockers)

    dep_ids = [t[d] for d in dependents]
    states = await task_states(engine, dep_ids)
    unblocks = await event_counts(engine, dep_ids, "unblock")
    for d in dependents:
        open_left = sum(1 for b, dd in edges if dd == d and b == late)
        expected = ("blocked", 1, 1) if open_left else ("ready", 0, 2)
        assert states[t[d]] == expected, (d, states[t[d]])
        assert unblocks[t[d]] == (0 if open_left else 1), d

    # The last blocker, completed while its fifty dependents are being assigned: each assign
    # runs before the cascade (200) or after it (409, the unblock moved the row_version on);
    # either way nothing deadlocks and the counters end exact.
    planner = jwt_keys.headers(["planner"], org_id=ORG, user_id=PLANNER)
    still_blocked = [d for d in dependents if states[t[d]][0] == "blocked"]
    assert len(still_blocked) == N
    done, *assigns = await asyncio.gather(
        post_action(racing, op, t[late], "complete", 2),
        *(
            post_action(racing, planner, t[d], "assign", 1, {"assign_to": str(uuid.uuid4())})
            for d in still_blocked
        ),
    )
    assert done.status_code == 200, done.text
    assert {r.status_code for r in assigns} <= {200, 409}, [r.text for r in assigns]
    states = await task_states(engine, dep_ids)
    assert {s[:2] for s in states.values()} == {("ready", 0)}
    unblocks = await event_counts(engine, dep_ids, "unblock")
    assert set(unblocks.values()) == {1}
