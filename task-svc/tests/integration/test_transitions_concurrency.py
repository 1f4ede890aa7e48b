"""Concurrency against real PostgreSQL: one winner per row_version, converging cascades."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from ..support.taskgraph import (
    OPERATOR,
    ORG,
    PLANNER,
    asgi_client,
    make_graph,
    task_row,
)


@pytest.fixture
async def racing_client(committing_app: FastAPI) -> Any:
    async with asgi_client(committing_app) as c:
        yield c


async def test_transitions_concurrent_same_version_one_winner(
    racing_client: httpx.AsyncClient, engine: AsyncEngine, jwt_keys: Any
) -> None:
    async with engine.begin() as conn:
        g = await make_graph(conn, ["a"])
    a = g["tasks"]["a"]
    planner = jwt_keys.headers(["planner"], org_id=ORG, user_id=PLANNER)
    users = [uuid.uuid4() for _ in range(12)]

    async def assign(u: uuid.UUID) -> httpx.Response:
        return await racing_client.post(
            f"/api/v1/tasks/{a}/transitions",
            headers=planner,
            json={"action": "assign", "payload": {"assign_to": str(u)}, "expected_row_version": 1},
        )

    responses = await asyncio.gather(*(assign(u) for u in users))
    codes = sorted(r.status_code for r in responses)
    assert codes == [200] + [409] * 11
    winner = next(r for r in responses if r.status_code == 200).json()
    async with engine.connect() as conn:
        row = await task_row(conn, a)
        n = await conn.execute(
            text("SELECT count(*) FROM task.task_events WHERE task_id = :t AND action = 'assign'"),
            {"t": a},
        )
    assert row["row_version"] == 2
    assert str(row["assigned_to"]) == winner["task"]["assigned_to"]
    assert n.scalar_one() == 1


async def test_transitions_concurrent_cascades_converge_without_deadlock(
    racing_client: httpx.AsyncClient, engine: AsyncEngine, jwt_keys: Any
) -> None:
    blockers = [f"b{i}" for i in range(8)]
    async with engine.begin() as conn:
        g = await make_graph(conn, [*blockers, "d"], [(b, "d") for b in blockers])
    op = jwt_keys.headers(["operator"], org_id=ORG, user_id=OPERATOR)
    for b in blockers:
        r = await racing_client.post(
            f"/api/v1/tasks/{g['tasks'][b]}/transitions",
            headers=op,
            json={"action": "start", "expected_row_version": 1},
        )
        assert r.status_code == 200, r.text

    async def complete(b: str) -> httpx.Response:
        return await racing_client.post(
            f"/api/v1/tasks/{g['tasks'][b]}/transitions",
            headers=op,
            json={"action": "complete", "expected_row_version": 2},
        )

    responses = await asyncio.gather(*(complete(b) for b in blockers))
    assert [r.status_code for r in responses] == [200] * len(blockers)
    d = g["tasks"]["d"]
    async with engine.connect() as conn:
        row = await task_row(conn, d)
        ev = await conn.execute(
            text("SELECT action FROM task.task_events WHERE task_id = :t ORDER BY id"), {"t": d}
        )
        actions = [e[0] for e in ev]
    assert (row["status"], row["open_blockers"], row["row_version"]) == ("ready", 0, 2)
    assert actions == ["create", "unblock"]
