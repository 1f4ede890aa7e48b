"""Serial numbers under concurrent project creation: unique, gap-free, never reused."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from servicekit.testing.plugin import JwtKeys
from task_svc.deliverables.models import Deliverable
from task_svc.projects.models import Project

from ..support.templates import planner_headers, publish_template


def create_body(template_id: uuid.UUID, deliverables: int) -> dict[str, Any]:
    return {
        "name": "Concurrent",
        "template_id": str(template_id),
        "deliverables": deliverables,
        "start_at": "2026-12-01T08:00:00Z",
    }


async def test_concurrent_projects_get_distinct_consecutive_serials(
    committing_api: httpx.AsyncClient,
    templates_api: httpx.AsyncClient,
    jwt_keys: JwtKeys,
    engine: AsyncEngine,
) -> None:
    org = uuid.uuid4()
    headers = planner_headers(jwt_keys, org)
    template_id = await publish_template(templates_api, jwt_keys, org)

    responses = await asyncio.gather(
        *(
            committing_api.post(
                "/api/v1/projects", json=create_body(template_id, 3), headers=headers
            )
            for _ in range(8)
        )
    )
    assert all(r.status_code == 201 for r in responses), [r.text for r in responses]
    serials = [d["serial"] for r in responses for d in r.json()["deliverables"]]
    assert len(set(serials)) == 24
    assert sorted(serials) == [f"DLV-{n:06d}" for n in range(1, 25)]
    # Within one project the serials are consecutive.
    for r in responses:
        numbers = [int(d["serial"].split("-")[1]) for d in r.json()["deliverables"]]
        assert numbers == list(range(numbers[0], numbers[0] + 3))

    # A refused creation (rolled back) does not burn numbers nor leave them for reuse.
    bad = await committing_api.post(
        "/api/v1/projects",
        json={**create_body(template_id, 2), "template_version": 99},
        headers=headers,
    )
    assert bad.status_code == 422
    after = await committing_api.post(
        "/api/v1/projects", json=create_body(template_id, 1), headers=headers
    )
    assert [d["serial"] for d in after.json()["deliverables"]] == ["DLV-000025"]

    async with engine.connect() as conn:
        stored = await conn.scalar(
            select(func.count(func.distinct(Deliverable.serial))).where(Deliverable.org_id == org)
        )
    assert stored == 25


async def test_concurrent_requests_with_one_idempotency_key_create_one_project(
    committing_api: httpx.AsyncClient,
    templates_api: httpx.AsyncClient,
    jwt_keys: JwtKeys,
    engine: AsyncEngine,
) -> None:
    org = uuid.uuid4()
    headers = {**planner_headers(jwt_keys, org), "Idempotency-Key": "same-click"}
    template_id = await publish_template(templates_api, jwt_keys, org)
    responses = await asyncio.gather(
        *(
            committing_api.post(
                "/api/v1/projects", json=create_body(template_id, 2), headers=headers
            )
            for _ in range(5)
        )
    )
    assert all(r.status_code == 201 for r in responses), [r.text for r in responses]
    assert len({r.json()["id"] for r in responses}) == 1
    assert sum(1 for r in responses if r.headers.get("idempotent-replayed") == "true") == 4
    async with engine.connect() as conn:
        projects = await conn.scalar(
            select(func.count()).select_from(Project).where(Project.org_id == org)
        )
    assert projects == 1
