"""The planner's path: create, draft, publish, freeze, clone, change, publish again, diff."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection

from template_svc.db import outbox

from .template_fixtures import ORG_A, ORG_B, PLANNER, VIEWER, cabinet

BASE = "/api/v1/templates"


@pytest.fixture
def planner(jwt_keys: Any) -> dict[str, str]:
    return jwt_keys.headers(["planner"], org_id=ORG_A, user_id=PLANNER)


@pytest.fixture
def viewer(jwt_keys: Any) -> dict[str, str]:
    return jwt_keys.headers(["viewer"], org_id=ORG_A, user_id=VIEWER)


async def test_create_publish_freeze_clone_and_diff(
    client: httpx.AsyncClient,
    planner: dict[str, str],
    viewer: dict[str, str],
    jwt_keys: Any,
    db_conn: AsyncConnection,
) -> None:
    created = await client.post(
        BASE,
        json={"key": "cabinet", "name": "Cabinet", "draft": cabinet(), "changelog": "first"},
        headers=planner,
    )
    assert created.status_code == 201, created.text
    template = created.json()
    assert template["draft_version"] == 1
    assert template["created_by"] == str(PLANNER)
    assert created.headers["location"] == f"{BASE}/{template['id']}"
    tid = template["id"]
    v1_url = f"{BASE}/{tid}/versions/1"

    draft = await client.get(v1_url, headers=viewer)
    assert draft.status_code == 200
    assert draft.json()["status"] == "draft"
    assert draft.json()["problems"] == []
    assert len(draft.json()["nodes"]) == 12
    assert draft.headers["etag"] == '"1"'

    published = await client.post(f"{v1_url}/publish", headers={**planner, "If-Match": '"1"'})
    assert published.status_code == 200, published.text
    v1 = published.json()
    assert v1["status"] == "published"
    assert v1["published_by"] == str(PLANNER)
    assert len(v1["checksum"]) == 64
    assert published.headers["etag"] == '"2"'

    events = (
        await db_conn.execute(
            select(outbox.c.type, outbox.c.payload, outbox.c.headers).where(
                outbox.c.aggregate_id == v1["id"]
            )
        )
    ).all()
    assert [e.type for e in events] == ["template.version.published"]
    assert events[0].payload["checksum"] == v1["checksum"]
    assert events[0].payload["key"] == "cabinet"
    assert events[0].payload["version"] == 1
    assert events[0].headers["dataschema"] == "urn:blueprint:event:template.version.published:v1"

    # Editing the published version is refused through the API ...
    edit = await client.put(v1_url, json={**cabinet(), "expected_row_version": 2}, headers=planner)
    assert edit.status_code == 409
    assert edit.json()["code"] == "VERSION_NOT_DRAFT"
    again = await client.post(f"{v1_url}/publish", headers=planner)
    assert again.json()["code"] == "VERSION_NOT_DRAFT"

    # ... and through SQL, by the database itself.
    for statement in (
        'UPDATE template_version SET graph = \'{"nodes": [], "edges": []}\' WHERE id = :id',
        "UPDATE template_version SET status = 'draft' WHERE id = :id",
        "DELETE FROM template_version WHERE id = :id",
    ):
        with pytest.raises(DBAPIError, match="cannot be"):
            async with db_conn.begin_nested():
                await db_conn.execute(text(statement), {"id": v1["id"]})
    unchanged = await client.get(v1_url, headers=viewer)
    assert unchanged.json()["checksum"] == v1["checksum"]
    assert unchanged.json()["nodes"] == v1["nodes"]

    # A new draft cloned from v1, changed, published as v2.
    cloned = await client.post(
        f"{BASE}/{tid}/versions", json={"clone_from": 1, "changelog": "labels"}, headers=planner
    )
    assert cloned.status_code == 201, cloned.text
    assert cloned.json()["version"] == 2
    assert cloned.json()["cloned_from"] == 1
    assert cloned.json()["nodes"] == v1["nodes"]

    graph = cabinet()
    graph["nodes"] = [n for n in graph["nodes"] if n["key"] != "bend"]
    graph["nodes"].append({"key": "label", "title": "Print the label"})
    for n in graph["nodes"]:
        if n["key"] == "paint":
            n["priority"] = 90
            n["title"] = "Powder coat"
    graph["edges"] = [e for e in graph["edges"] if "bend" not in e.values()] + [
        {"blocker": "cut", "dependent": "weld-left"},
        {"blocker": "cut", "dependent": "weld-right"},
        {"blocker": "label", "dependent": "pack"},
    ]
    stale = await client.put(
        f"{BASE}/{tid}/versions/2", json={**graph, "expected_row_version": 7}, headers=planner
    )
    assert stale.status_code == 409
    assert stale.json()["code"] == "VERSION_CONFLICT"
    assert stale.json()["current_row_version"] == 1
    assert stale.json()["current_status"] == "draft"

    put = await client.put(
        f"{BASE}/{tid}/versions/2", json=graph, headers={**planner, "If-Match": '"1"'}
    )
    assert put.status_code == 200, put.text
    assert put.json()["row_version"] == 2
    published2 = await client.post(
        f"{BASE}/{tid}/versions/2/publish", json={"expected_row_version": 2}, headers=planner
    )
    assert published2.status_code == 200, published2.text
    assert published2.json()["checksum"] != v1["checksum"]

    diff = await client.get(f"{BASE}/{tid}/versions/1/diff/2", headers=viewer)
    assert diff.status_code == 200, diff.text
    d = diff.json()
    assert [n["key"] for n in d["nodes"]["added"]] == ["label"]
    assert [n["key"] for n in d["nodes"]["removed"]] == ["bend"]
    assert d["nodes"]["changed"] == [
        {
            "key": "paint",
            "changes": [
                {"field": "priority", "from": 50, "to": 90},
                {"field": "title", "from": "Paint", "to": "Powder coat"},
            ],
        }
    ]
    pairs = lambda items: sorted((e["blocker"], e["dependent"]) for e in items)  # noqa: E731
    assert pairs(d["edges"]["added"]) == [
        ("cut", "weld-left"),
        ("cut", "weld-right"),
        ("label", "pack"),
    ]
    assert pairs(d["edges"]["removed"]) == [
        ("bend", "weld-left"),
        ("bend", "weld-right"),
        ("cut", "bend"),
    ]

    listed = await client.get(f"{BASE}/{tid}/versions", headers=viewer)
    assert [v["version"] for v in listed.json()["items"]] == [2, 1]

    # Other services read the frozen graph with a service token.
    service = {"Authorization": f"Bearer {jwt_keys.service_token('task-svc')}"}
    latest = await client.get(
        f"/internal/templates/{tid}/versions/latest", params={"org_id": str(ORG_A)}, headers=service
    )
    assert latest.status_code == 200, latest.text
    assert latest.json()["version"] == 2
    assert latest.json()["checksum"] == published2.json()["checksum"]
    assert latest.json()["key"] == "cabinet"
    first = await client.get(
        f"/internal/templates/{tid}/versions/1", params={"org_id": str(ORG_A)}, headers=service
    )
    assert first.json()["checksum"] == v1["checksum"]
    assert first.json()["edges"] == v1["edges"]
    wrong_org = await client.get(
        f"/internal/templates/{tid}/versions/1", params={"org_id": str(ORG_B)}, headers=service
    )
    assert wrong_org.status_code == 404
    as_user = await client.get(
        f"/internal/templates/{tid}/versions/1", params={"org_id": str(ORG_A)}, headers=viewer
    )
    assert as_user.status_code == 403


async def test_graph_with_two_cycles_and_a_dangling_edge_names_all_three(
    client: httpx.AsyncClient, planner: dict[str, str]
) -> None:
    graph = {
        "nodes": [{"key": k, "title": k} for k in "abcdef"],
        "edges": [
            {"blocker": "a", "dependent": "b"},
            {"blocker": "b", "dependent": "c"},
            {"blocker": "c", "dependent": "a"},
            {"blocker": "d", "dependent": "e"},
            {"blocker": "e", "dependent": "d"},
            {"blocker": "f", "dependent": "nowhere"},
        ],
    }
    dry = await client.post(f"{BASE}/validate", json=graph, headers=planner)
    assert dry.status_code == 200
    assert dry.json()["valid"] is False
    assert len(dry.json()["problems"]) == 3

    created = await client.post(
        BASE, json={"key": "loops", "name": "Loops", "draft": graph}, headers=planner
    )
    tid = created.json()["id"]
    refused = await client.post(f"{BASE}/{tid}/versions/1/publish", headers=planner)
    assert refused.status_code == 422
    body = refused.json()
    assert body["code"] == "GRAPH_INVALID"
    by_code: dict[str, list[dict[str, Any]]] = {}
    for p in body["problems"]:
        by_code.setdefault(p["code"], []).append(p)
    assert sorted(p["path"] for p in by_code["DEPENDENCY_CYCLE"]) == [
        ["a", "b", "c", "a"],
        ["d", "e", "d"],
    ]
    (dangling,) = by_code["UNKNOWN_EDGE_KEY"]
    assert dangling["where"] == "edges[5].dependent"
    assert len(body["problems"]) == 3
    assert "a -> b -> c -> a" in body["detail"]
    still_draft = await client.get(f"{BASE}/{tid}/versions/1", headers=planner)
    assert still_draft.json()["status"] == "draft"
    assert len(still_draft.json()["problems"]) == 3


async def test_deprecate_only_published_and_latest_skips_it(
    client: httpx.AsyncClient, planner: dict[str, str], jwt_keys: Any
) -> None:
    body = {"key": "dep", "name": "D", "draft": cabinet()}
    tid = (await client.post(BASE, json=body, headers=planner)).json()["id"]
    draft_deprecate = await client.post(f"{BASE}/{tid}/versions/1/deprecate", headers=planner)
    assert draft_deprecate.status_code == 409
    assert draft_deprecate.json()["code"] == "VERSION_NOT_PUBLISHED"
    await client.post(f"{BASE}/{tid}/versions/1/publish", headers=planner)
    await client.post(f"{BASE}/{tid}/versions", json={"clone_from": 1}, headers=planner)
    await client.post(f"{BASE}/{tid}/versions/2/publish", headers=planner)
    dep = await client.post(f"{BASE}/{tid}/versions/2/deprecate", headers=planner)
    assert dep.status_code == 200, dep.text
    assert dep.json()["status"] == "deprecated"
    assert dep.json()["deprecated_by"] == str(PLANNER)
    service = {"Authorization": f"Bearer {jwt_keys.service_token()}"}
    latest = await client.get(
        f"/internal/templates/{tid}/versions/latest", params={"org_id": str(ORG_A)}, headers=service
    )
    assert latest.json()["version"] == 1
    listed = await client.get(
        f"{BASE}/{tid}/versions", params={"status": "deprecated"}, headers=planner
    )
    assert [v["version"] for v in listed.json()["items"]] == [2]


async def test_unknown_template_or_version_is_404(
    client: httpx.AsyncClient, planner: dict[str, str], jwt_keys: Any
) -> None:
    missing = await client.get(f"{BASE}/{uuid.uuid4()}/versions/1", headers=planner)
    assert missing.json()["code"] == "TEMPLATE_NOT_FOUND"
    tid = (await client.post(BASE, json={"key": "x", "name": "X"}, headers=planner)).json()["id"]
    no_version = await client.get(f"{BASE}/{tid}/versions/3", headers=planner)
    assert no_version.status_code == 404
    assert no_version.json()["code"] == "VERSION_NOT_FOUND"
    service = {"Authorization": f"Bearer {jwt_keys.service_token()}"}
    none_published = await client.get(
        f"/internal/templates/{tid}/versions/latest", params={"org_id": str(ORG_A)}, headers=service
    )
    assert none_published.status_code == 404
