"""The hot route's unlocked write: an action touching only the task is read without a lock and
written in one self-committing statement that applies only if the row is still the one read.

A change between the read and the write, even one that leaves `row_version` alone (a
dependency counter), makes the write apply nothing at all (no task change, no event, no outbox
row); the route then goes the locked way. Actions that cascade go the locked way at once.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client import REGISTRY
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from task_svc.tasks import repository
from task_svc.tasks.fsm import Action
from task_svc.tasks.plan import Plan, plan_transition
from task_svc.tasks.transition_request import Caller

from ..support.taskgraph import OPERATOR, ORG, PLANNER, asgi_client, make_graph, task_row

PLANNER_CALLER = Caller(actor=str(PLANNER), roles=frozenset({"planner"}), user_id=PLANNER)


@pytest.fixture
async def client(committing_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with asgi_client(committing_app) as c:
        yield c


async def written(engine: AsyncEngine, task: uuid.UUID) -> tuple[int, int]:
    """(task events, outbox rows) of the task."""
    async with engine.connect() as conn:
        events = await conn.execute(
            text("SELECT count(*) FROM task.task_events WHERE task_id = :t"), {"t": task}
        )
        outbox = await conn.execute(
            text("SELECT count(*) FROM task.outbox WHERE aggregate_id = :t"), {"t": str(task)}
        )
        return int(events.scalar_one()), int(outbox.scalar_one())


async def plan_assign(conn: AsyncConnection, task: uuid.UUID) -> tuple[Plan, str]:
    loaded = await repository.read_task(conn, task_id=task, org_id=ORG, client_event_id=None)
    assert loaded is not None
    row, prior, xmin = loaded
    assert prior is None
    plan = plan_transition(
        row, Action.ASSIGN, PLANNER_CALLER, {"assign_to": str(OPERATOR)}, now=datetime.now(UTC)
    )
    assert isinstance(plan, Plan) and plan.touches_only_the_task
    return plan, xmin


async def test_a_row_changed_between_read_and_write_gets_nothing_written(
    engine: AsyncEngine,
) -> None:
    async with engine.begin() as conn:
        task = (await make_graph(conn, ["a"]))["tasks"]["a"]
    before = await written(engine, task)
    async with engine.connect() as raw:
        conn = await raw.execution_options(isolation_level="AUTOCOMMIT")
        plan, xmin = await plan_assign(conn, task)
        # Any update makes a new row version, even one changing no value and no row_version.
        async with engine.begin() as other:
            await other.execute(
                text("UPDATE task.tasks SET open_blockers = open_blockers + 0 WHERE id = :t"),
                {"t": task},
            )
        now = plan.new["updated_at"]
        assert not await repository.write_task_if_unchanged(
            conn, new=plan.new, history=plan.history, now=now, xmin=xmin
        )
        row = await task_row(conn, task)
        assert row["assigned_to"] is None and row["row_version"] == 1
        assert await written(engine, task) == before

        _, fresh = await plan_assign(conn, task)
        assert fresh != xmin
        assert await repository.write_task_if_unchanged(
            conn, new=plan.new, history=plan.history, now=now, xmin=fresh
        )
    async with engine.connect() as conn:
        row = await task_row(conn, task)
    assert row["assigned_to"] == OPERATOR and row["row_version"] == 2
    events, outbox = await written(engine, task)
    assert events == before[0] + 1 and outbox > before[1]


def writes(path: str) -> float:
    return REGISTRY.get_sample_value("transition_writes_total", {"path": path}) or 0.0


async def test_the_route_writes_task_only_actions_unlocked_and_cascading_ones_locked(
    client: httpx.AsyncClient, engine: AsyncEngine, jwt_keys: Any
) -> None:
    async with engine.begin() as conn:
        task = (await make_graph(conn, ["a"]))["tasks"]["a"]
    op = jwt_keys.headers(["operator"], org_id=ORG, user_id=OPERATOR)

    async def act(action: str, version: int) -> httpx.Response:
        return await client.post(
            f"/api/v1/tasks/{task}/transitions",
            headers=op,
            json={"action": action, "expected_row_version": version},
        )

    one, locked = writes("one_statement"), writes("locked")
    assert (await act("start", 1)).status_code == 200
    assert (writes("one_statement"), writes("locked")) == (one + 1, locked)
    stale = await act("start", 1)  # a stale version: refused the locked way
    assert stale.status_code == 409 and stale.json()["code"] == "VERSION_CONFLICT"
    assert (writes("one_statement"), writes("locked")) == (one + 1, locked + 1)
    assert (await act("complete", 2)).status_code == 200  # cascades: locked at once
    assert (writes("one_statement"), writes("locked")) == (one + 1, locked + 2)
    async with engine.connect() as conn:
        row = await task_row(conn, task)
    assert row["status"] == "done" and row["row_version"] == 3
