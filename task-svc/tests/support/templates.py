"""Publishing templates through template-svc's public API, for task-svc's tests."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from servicekit.testing.plugin import JwtKeys

from .graphs import CABINET_EDGES, CABINET_NODES


def planner_headers(
    jwt_keys: JwtKeys, org_id: uuid.UUID, user_id: uuid.UUID | None = None
) -> dict[str, str]:
    return jwt_keys.headers(["planner"], org_id=org_id, user_id=user_id or uuid.uuid4())


async def publish_template(
    templates_api: httpx.AsyncClient,
    jwt_keys: JwtKeys,
    org_id: uuid.UUID,
    *,
    nodes: list[dict[str, Any]] | None = None,
    edges: list[dict[str, str]] | None = None,
    publish: bool = True,
) -> uuid.UUID:
    """Create a template whose version 1 holds the graph (published unless told otherwise)."""
    headers = planner_headers(jwt_keys, org_id)
    created = await templates_api.post(
        "/api/v1/templates",
        json={
            "key": f"cabinet-{uuid.uuid4().hex[:8]}",
            "name": "Cabinet",
            "draft": {
                "nodes": CABINET_NODES if nodes is None else nodes,
                "edges": CABINET_EDGES if edges is None else edges,
            },
        },
        headers=headers,
    )
    assert created.status_code == 201, created.text
    template_id = uuid.UUID(created.json()["id"])
    if publish:
        published = await templates_api.post(
            f"/api/v1/templates/{template_id}/versions/1/publish", headers=headers
        )
        assert published.status_code == 200, published.text
    return template_id


async def add_version(
    templates_api: httpx.AsyncClient,
    jwt_keys: JwtKeys,
    org_id: uuid.UUID,
    template_id: uuid.UUID,
    *,
    publish: bool,
) -> int:
    """A new version cloned from version 1."""
    headers = planner_headers(jwt_keys, org_id)
    resp = await templates_api.post(
        f"/api/v1/templates/{template_id}/versions", json={"clone_from": 1}, headers=headers
    )
    assert resp.status_code == 201, resp.text
    number = int(resp.json()["version"])
    if publish:
        published = await templates_api.post(
            f"/api/v1/templates/{template_id}/versions/{number}/publish", headers=headers
        )
        assert published.status_code == 200, published.text
    return number


async def deprecate(
    templates_api: httpx.AsyncClient,
    jwt_keys: JwtKeys,
    org_id: uuid.UUID,
    template_id: uuid.UUID,
    version: int,
) -> None:
    resp = await templates_api.post(
        f"/api/v1/templates/{template_id}/versions/{version}/deprecate",
        headers=planner_headers(jwt_keys, org_id),
    )
    assert resp.status_code == 200, resp.text
