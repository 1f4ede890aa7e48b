"""Concurrent commands and deliveries against real commits: one winner, no duplicates."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from typing import Any

import httpx
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from qc_svc.db import outbox
from qc_svc.inspections import intake
from qc_svc.inspections.models import Inspection
from servicekit.testing.plugin import JwtKeys

BASE = "/api/v1/inspections"


async def test_two_inspectors_claiming_at_once_one_wins_the_other_gets_409(
    committing_client: httpx.AsyncClient,
    engine: AsyncEngine,
    jwt_keys: JwtKeys,
    make_submission: Callable[..., dict[str, Any]],
) -> None:
    async with AsyncSession(engine, expire_on_commit=False) as s:
        inspection, _ = await intake.create_inspection_from_submission(s, **make_submission())
        await s.commit()

    async def claim(user: uuid.UUID) -> httpx.Response:
        return await committing_client.post(
            f"{BASE}/{inspection.id}/claim",
            json={"expected_row_version": 1, "client_event_id": str(uuid.uuid4())},
            headers=jwt_keys.headers(["inspector"], user_id=user),
        )

    responses = await asyncio.gather(*(claim(uuid.uuid4()) for _ in range(4)))
    assert sorted(r.status_code for r in responses) == [200, 409, 409, 409]
    winner = next(r for r in responses if r.status_code == 200).json()
    current = (
        await committing_client.get(f"{BASE}/{inspection.id}", headers=jwt_keys.headers(["viewer"]))
    ).json()
    assert (current["inspector_id"], current["row_version"]) == (winner["inspector_id"], 2)


async def test_the_same_command_sent_concurrently_applies_once_and_replays(
    committing_client: httpx.AsyncClient,
    engine: AsyncEngine,
    jwt_keys: JwtKeys,
    make_submission: Callable[..., dict[str, Any]],
) -> None:
    async with AsyncSession(engine, expire_on_commit=False) as s:
        inspection, _ = await intake.create_inspection_from_submission(s, **make_submission())
        await s.commit()
    body = {"expected_row_version": 1, "client_event_id": str(uuid.uuid4())}
    headers = jwt_keys.headers(["inspector"])
    responses = await asyncio.gather(
        *(
            committing_client.post(f"{BASE}/{inspection.id}/claim", json=body, headers=headers)
            for _ in range(3)
        )
    )
    assert [r.status_code for r in responses] == [200, 200, 200]
    assert len({r.text for r in responses}) == 1
    replayed = [r.headers.get("Idempotent-Replayed") for r in responses]
    assert sorted(replayed, key=str) == [None, "true", "true"]


async def test_a_submission_delivered_twice_at_once_creates_one_inspection(
    committing_client: httpx.AsyncClient,
    engine: AsyncEngine,
    make_submission: Callable[..., dict[str, Any]],
) -> None:
    fields = make_submission()

    async def deliver() -> tuple[uuid.UUID, bool]:
        async with AsyncSession(engine, expire_on_commit=False) as s:
            inspection, created = await intake.create_inspection_from_submission(s, **fields)
            await s.commit()
            return inspection.id, created

    results = await asyncio.gather(*(deliver() for _ in range(3)))
    assert len({i for i, _ in results}) == 1
    assert sorted(c for _, c in results) == [False, False, True]
    async with AsyncSession(engine) as s:
        count = await s.scalar(
            select(func.count())
            .select_from(Inspection)
            .where(Inspection.task_id == fields["task_id"])
        )
        events = await s.scalar(
            select(func.count())
            .select_from(outbox)
            .where(outbox.c.aggregate_id == str(results[0][0]))
        )
    assert (count, events) == (1, 1)
