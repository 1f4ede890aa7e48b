"""A task resolved with no dependents: its deliverable is locked with the task, and the write's
own statement turns the deliverable ready_for_signoff when that was its last open task.

Against real PostgreSQL and concurrent transactions: the deliverable's lock is really held from
the task's lock on, and tasks of one deliverable completed all at once make it ready exactly
once (none of them misses the others, none marks it twice).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from task_svc.tasks import repository

from ..support.taskgraph import OPERATOR, ORG, asgi_client, make_graph


@pytest.fixture
async def client(committing_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with asgi_client(committing_app) as c:
        yield c


async def deliverable_lock_is_free(engine: AsyncEngine, deliverable: uuid.UUID) -> bool:
    async with engine.connect() as other:
        try:
            await other.execute(
                text("SELECT id FROM task.deliverables WHERE id = :d FOR UPDATE NOWAIT"),
                {"d": deliverable},
            )
        except DBAPIError as exc:
            assert "lock" in str(exc.orig).lower(), exc
            return False
        finally:
            await other.rollback()
        return True


@pytest.mark.parametrize(("node", "locked"), [("b", True), ("a", False)])
async def test_a_task_without_dependents_is_locked_with_its_deliverable(
    engine: AsyncEngine, node: str, locked: bool
) -> None:
    async with engine.begin() as conn:
        g = await make_graph(conn, ["a", "b"], [("a", "b")])
    deliverable = g["deliverables"][0]
    async with engine.connect() as conn, conn.begin():
        loaded = await repository.lock_task(
            conn,
            task_id=g["tasks"][node],
            org_id=ORG,
            client_event_id=None,
            with_deliverable=True,
        )
        assert loaded is not None
        row, _ = loaded
        # a has a dependent (b): its deliverable comes after b in the lock order, so not yet
        assert row["deliverable_locked"] is locked
        assert await deliverable_lock_is_free(engine, deliverable) is not locked
    assert await deliverable_lock_is_free(engine, deliverable)


async def post(client: httpx.AsyncClient, headers: Any, task: uuid.UUID, body: Any) -> Any:
    r = await client.post(f"/api/v1/tasks/{task}/transitions", headers=headers, json=body)
    assert r.status_code == 200, r.text
    return r.json()


async def test_tasks_of_a_deliverable_completed_at_once_make_it_ready_exactly_once(
    client: httpx.AsyncClient, engine: AsyncEngine, jwt_keys: Any
) -> None:
    nodes = [f"t{i}" for i in range(6)]
    async with engine.begin() as conn:
        g = await make_graph(conn, nodes, deliverables=3)
    op = jwt_keys.headers(["operator"], org_id=ORG, user_id=OPERATOR)
    tasks = [t for by_node in g["all_tasks"] for t in by_node.values()]
    for t in tasks:
        await post(client, op, t, {"action": "start", "expected_row_version": 1})

    done = await asyncio.gather(
        *(post(client, op, t, {"action": "complete", "expected_row_version": 2}) for t in tasks)
    )

    assert {d["task"]["status"] for d in done} == {"done"}
    async with engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT d.id, d.status, d.row_version, (SELECT count(*) FROM task.outbox o "
                "WHERE o.aggregate_id = d.id::text AND o.type = 'deliverable.ready_for_signoff') "
                "FROM task.deliverables d WHERE d.project_id = :p"
            ),
            {"p": g["project"]},
        )
        deliverables = {r[0]: tuple(r[1:]) for r in rows}
    assert set(deliverables) == set(g["deliverables"])
    for state in deliverables.values():
        assert state == ("ready_for_signoff", 2, 1)
