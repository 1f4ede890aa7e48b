"""Duplicates racing their original: every copy of a request gets the original's answer.

A duplicate that waits for the original's row lock reads the task's events in a snapshot taken
before the original committed; it must still be answered as a replay (200 with
`Idempotent-Replayed: true`), never as a conflict, and nothing is applied twice.
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
from sqlalchemy.ext.asyncio import AsyncEngine

from ..support.taskgraph import asgi_client, insert_task, project_with_deliverable

ORG = uuid.UUID("00000000-0000-4000-8000-00000000e001")
PLANNER = uuid.UUID("00000000-0000-4000-8000-0000000000e1")
OPERATOR = uuid.UUID("00000000-0000-4000-8000-0000000000e2")
COPIES = 8


@pytest.fixture
async def race_client(committing_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with asgi_client(committing_app) as c:
        yield c


async def one_task(engine: AsyncEngine, *, status: str, qc: bool = False) -> uuid.UUID:
    async with engine.begin() as conn:
        project, dl = await project_with_deliverable(conn, org_id=ORG, serial_prefix="R")
        return await insert_task(
            conn,
            org_id=ORG,
            project_id=project,
            deliverable_id=dl,
            node_key="a",
            title="A",
            status=status,
            qc=qc,
            assigned_to=OPERATOR,
        )


async def events_of(engine: AsyncEngine, task: uuid.UUID, action: str) -> int:
    async with engine.connect() as conn:
        res = await conn.execute(
            text("SELECT count(*) FROM task.task_events WHERE task_id = :t AND action = :a"),
            {"t": task, "a": action},
        )
        return int(res.scalar_one())


def assert_one_original(responses: list[httpx.Response]) -> None:
    assert [r.status_code for r in responses] == [200] * COPIES, [r.text for r in responses]
    replayed = [r.headers.get("Idempotent-Replayed") == "true" for r in responses]
    assert replayed.count(False) == 1
    first = responses[0].json()
    assert all(r.json() == first for r in responses)  # the same answer


async def test_transitions_replay_race_user_duplicates_all_get_the_original(
    race_client: httpx.AsyncClient, engine: AsyncEngine, jwt_keys: Any
) -> None:
    task = await one_task(engine, status="ready")
    planner = jwt_keys.headers(["planner"], org_id=ORG, user_id=PLANNER)
    body = {
        "action": "assign",
        "payload": {"assign_to": str(uuid.uuid4())},
        "expected_row_version": 1,
        "client_event_id": "race-assign-1",
    }
    url = f"/api/v1/tasks/{task}/transitions"
    responses = await asyncio.gather(
        *(race_client.post(url, json=body, headers=planner) for _ in range(COPIES))
    )
    assert_one_original(list(responses))
    assert await events_of(engine, task, "assign") == 1


async def test_transitions_replay_race_system_duplicates_all_get_the_original(
    race_client: httpx.AsyncClient, engine: AsyncEngine, jwt_keys: Any
) -> None:
    task = await one_task(engine, status="in_qc", qc=True)
    svc = {"Authorization": f"Bearer {jwt_keys.service_token('qc-svc')}"}
    body = {
        "action": "qc_accept",
        "payload": {"inspection_id": str(uuid.uuid4())},
        "client_event_id": "race-qc-1",
    }
    url = f"/internal/tasks/{task}/system-transitions?org_id={ORG}"
    responses = await asyncio.gather(
        *(race_client.post(url, json=body, headers=svc) for _ in range(COPIES))
    )
    assert_one_original(list(responses))
    assert await events_of(engine, task, "qc_accept") == 1
