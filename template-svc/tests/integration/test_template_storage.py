"""The database guards published versions itself; migrations match the models; concurrency."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from template_svc.templates import service as template_service
from template_svc.versions import service as version_service
from template_svc.versions.models import TemplateVersion

ORG = uuid.UUID("00000000-0000-4000-8000-0000000000c3")
ACTOR = uuid.UUID("00000000-0000-4000-8000-000000000301")
GRAPH = {
    "nodes": [{"key": "a", "title": "A"}, {"key": "b", "title": "B"}],
    "edges": [{"blocker": "a", "dependent": "b"}],
}


async def _published(session: AsyncSession) -> TemplateVersion:
    template, _ = await template_service.create_template(
        session, org_id=ORG, actor_id=ACTOR, key=f"t-{uuid.uuid4().hex[:8]}", name="T", draft=GRAPH
    )
    return await version_service.publish(
        session, org_id=ORG, actor_id=ACTOR, template_id=template.id, version=1
    )


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE template_version SET graph = jsonb_set(graph, '{nodes,0,title}', '\"X\"') "
        "WHERE id = :id",
        "UPDATE template_version SET checksum = 'x' WHERE id = :id",
        "UPDATE template_version SET changelog = 'rewritten' WHERE id = :id",
        "UPDATE template_version SET version = 99 WHERE id = :id",
        "UPDATE template_version SET status = 'draft' WHERE id = :id",
        "DELETE FROM template_version WHERE id = :id",
    ],
)
async def test_published_version_cannot_be_changed_in_sql(
    session: AsyncSession, statement: str
) -> None:
    row = await _published(session)
    with pytest.raises(DBAPIError, match="cannot be"):
        async with session.begin_nested():
            await session.execute(text(statement), {"id": row.id})


async def test_the_database_allows_deprecation_and_draft_edits(session: AsyncSession) -> None:
    row = await _published(session)
    await session.execute(
        text(
            "UPDATE template_version SET status = 'deprecated', deprecated_at = now(), "
            "row_version = row_version + 1 WHERE id = :id"
        ),
        {"id": row.id},
    )
    back = text("UPDATE template_version SET status = 'published' WHERE id = :id")
    with pytest.raises(DBAPIError, match="cannot be"):
        async with session.begin_nested():
            await session.execute(back, {"id": row.id})
    draft = await version_service.create_draft(
        session, org_id=ORG, actor_id=ACTOR, template_id=row.template_id, clone_from=1
    )
    await session.execute(
        text("UPDATE template_version SET changelog = 'ok' WHERE id = :id"), {"id": draft.id}
    )
    await session.execute(text("DELETE FROM template_version WHERE id = :id"), {"id": draft.id})


async def test_a_published_row_must_be_complete(session: AsyncSession) -> None:
    _, draft = await template_service.create_template(
        session, org_id=ORG, actor_id=ACTOR, key="incomplete", name="I", draft=GRAPH
    )
    assert draft is not None
    with pytest.raises(DBAPIError, match="published_is_complete"):
        async with session.begin_nested():
            await session.execute(
                text("UPDATE template_version SET status = 'published' WHERE id = :id"),
                {"id": draft.id},
            )


async def test_concurrent_drafts_get_distinct_numbers(
    committing_client: httpx.AsyncClient, jwt_keys: Any, engine: AsyncEngine
) -> None:
    headers = jwt_keys.headers(["planner"], org_id=ORG, user_id=ACTOR)
    created = await committing_client.post(
        "/api/v1/templates", json={"key": "race", "name": "Race"}, headers=headers
    )
    tid = created.json()["id"]
    answers = await asyncio.gather(
        *[
            committing_client.post(f"/api/v1/templates/{tid}/versions", headers=headers)
            for _ in range(6)
        ]
    )
    assert [a.status_code for a in answers] == [201] * 6
    assert sorted(a.json()["version"] for a in answers) == [1, 2, 3, 4, 5, 6]


async def test_concurrent_same_idempotency_key_creates_once(
    committing_client: httpx.AsyncClient, jwt_keys: Any, engine: AsyncEngine
) -> None:
    headers = {
        **jwt_keys.headers(["planner"], org_id=ORG, user_id=ACTOR),
        "Idempotency-Key": "same-key",
    }
    body = {"key": "once", "name": "Once"}
    answers = await asyncio.gather(
        *[committing_client.post("/api/v1/templates", json=body, headers=headers) for _ in range(5)]
    )
    assert [a.status_code for a in answers] == [201] * 5
    assert len({a.json()["id"] for a in answers}) == 1
    assert sum(a.headers.get("idempotent-replayed") == "true" for a in answers) == 4
    async with engine.connect() as conn:
        count = await conn.scalar(
            text("SELECT count(*) FROM template WHERE org_id = :o AND key = 'once'"), {"o": ORG}
        )
    assert count == 1
