"""Driving tasks through the transition API, and reading back what it left, for tests."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine


async def post_action(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    task_id: uuid.UUID | str,
    action: str,
    version: int | None = None,
    payload: dict[str, Any] | None = None,
    cid: str | None = None,
) -> httpx.Response:
    """POST one transition; only the given fields are sent."""
    body: dict[str, Any] = {"action": action}
    if payload is not None:
        body["payload"] = payload
    if version is not None:
        body["expected_row_version"] = version
    if cid is not None:
        body["client_event_id"] = cid
    return await client.post(f"/api/v1/tasks/{task_id}/transitions", json=body, headers=headers)


async def post_system_action(
    client: httpx.AsyncClient,
    service_headers: dict[str, str],
    *,
    org_id: uuid.UUID,
    task_id: uuid.UUID | str,
    action: str,
    payload: dict[str, Any],
    cid: str | None = None,
) -> httpx.Response:
    """A system action (qc_accept, qc_reject) through the internal route, as qc-svc sends it."""
    body: dict[str, Any] = {"action": action, "payload": payload}
    if cid is not None:
        body["client_event_id"] = cid
    return await client.post(
        f"/internal/tasks/{task_id}/system-transitions",
        params={"org_id": str(org_id)},
        json=body,
        headers=service_headers,
    )


def row_version(response: httpx.Response) -> int:
    """The task's row_version after a transition (its ETag)."""
    return int(response.headers["ETag"].strip('"'))


async def event_counts(
    engine: AsyncEngine, task_ids: list[uuid.UUID], action: str
) -> dict[uuid.UUID, int]:
    """How many `action` events each task has (0 included)."""
    async with engine.connect() as conn:
        res = await conn.execute(
            text(
                "SELECT t.id, count(e.id) FROM task.tasks t LEFT JOIN task.task_events e "
                "ON e.task_id = t.id AND e.action = :a WHERE t.id = ANY(:ids) GROUP BY t.id"
            ),
            {"a": action, "ids": task_ids},
        )
        return {r[0]: int(r[1]) for r in res}


async def task_states(
    engine: AsyncEngine, task_ids: list[uuid.UUID]
) -> dict[uuid.UUID, tuple[str, int, int]]:
    """(status, open_blockers, row_version) of each task."""
    async with engine.connect() as conn:
        res = await conn.execute(
            text(
                "SELECT id, status, open_blockers, row_version FROM task.tasks WHERE id = ANY(:ids)"
            ),
            {"ids": task_ids},
        )
        return {r.id: (r.status, r.open_blockers, r.row_version) for r in res}
