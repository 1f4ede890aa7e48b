"""Task, deliverable and project reads: filters, pagination, neighbours, org scoping."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from servicekit.testing.plugin import JwtKeys
from task_svc.tasks.models import Task

from ..support.templates import planner_headers, publish_template


async def start_project(
    api: httpx.AsyncClient,
    templates_api: httpx.AsyncClient,
    jwt_keys: JwtKeys,
    org: uuid.UUID,
    *,
    deliverables: int | list[str] = 2,
    start_at: str = "2026-12-01T08:00:00Z",
) -> dict[str, Any]:
    template_id = await publish_template(templates_api, jwt_keys, org)
    resp = await api.post(
        "/api/v1/projects",
        json={
            "name": "Reads",
            "template_id": str(template_id),
            "deliverables": deliverables,
            "start_at": start_at,
        },
        headers=planner_headers(jwt_keys, org),
    )
    assert resp.status_code == 201, resp.text
    project: dict[str, Any] = resp.json()
    return project


async def all_pages(
    api: httpx.AsyncClient, url: str, params: dict[str, Any], headers: dict[str, str]
) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = None
    for _ in range(100):
        query = {**params, **({"cursor": cursor} if cursor else {})}
        resp = await api.get(url, params=query, headers=headers)
        assert resp.status_code == 200, resp.text
        items += resp.json()["items"]
        cursor = resp.json()["next_cursor"]
        if cursor is None:
            return items
    raise AssertionError("pagination did not end")


async def test_task_list_filters_and_cursor_pages(
    api: httpx.AsyncClient,
    templates_api: httpx.AsyncClient,
    jwt_keys: JwtKeys,
    session: AsyncSession,
) -> None:
    org = uuid.uuid4()
    me = uuid.uuid4()
    headers = planner_headers(jwt_keys, org, me)
    project = await start_project(
        api,
        templates_api,
        jwt_keys,
        org,
        deliverables=["Left", "Right"],
        start_at="2020-01-01T08:00:00Z",
    )
    pid = project["id"]
    left = project["deliverables"][0]["id"]
    # Someone assigns two tasks to me (the state machine's business; set directly here).
    await session.execute(
        update(Task)
        .where(
            Task.project_id == uuid.UUID(pid),
            Task.node_key.in_(["design", "paint"]),
            Task.deliverable_id == uuid.UUID(left),
        )
        .values(assigned_to=me)
    )

    base = {"project_id": pid}
    for sort in ("created_at", "-created_at", "due_at", "-priority", "priority", "title"):
        paged = await all_pages(api, "/api/v1/tasks", {**base, "limit": 5, "sort": sort}, headers)
        assert len(paged) == 24 and len({t["id"] for t in paged}) == 24, sort
    by_due = await all_pages(api, "/api/v1/tasks", {**base, "limit": 7, "sort": "due_at"}, headers)
    dues = [t["due_at"] for t in by_due]
    dated = [d for d in dues if d is not None]
    assert dated == sorted(dated) and dues[: len(dated)] == dated  # undated last

    async def keys(**params: Any) -> list[str]:
        items = await all_pages(api, "/api/v1/tasks", {**base, "limit": 200, **params}, headers)
        return sorted(t["node_key"] for t in items)

    assert await keys(deliverable_id=left) == sorted(
        t["node_key"] for t in by_due if t["deliverable_id"] == left
    )
    assert await keys(status="ready") == ["design", "design"]
    assert len(await keys(status="ready,blocked")) == 24
    assert len(await keys(status=["ready", "blocked"])) == 24
    assert await keys(assignee="me") == ["design", "paint"]
    assert len(await keys(assignee="none")) == 22
    assert await keys(milestone="true") == ["ship", "ship"]
    assert await keys(kind="task") == await keys()
    assert await keys(overdue="true") == ["cut", "cut", "design", "design"]
    assert len(await keys(blocked="true")) == 22
    assert await keys(text="inspection") == ["qc", "qc"]
    assert await keys(deliverable_id=left, status="ready", assignee="me") == ["design"]

    for bad, code in (
        ({"status": "sleeping"}, "STATUS_INVALID"),
        ({"assignee": "bob"}, "ASSIGNEE_INVALID"),
        ({"sort": "colour"}, "SORT_INVALID"),
        ({"cursor": "not-a-cursor"}, "CURSOR_INVALID"),
        ({"limit": "0"}, "VALIDATION_FAILED"),
    ):
        resp = await api.get("/api/v1/tasks", params=bad, headers=headers)
        assert resp.status_code in (400, 422), resp.text
        assert resp.json()["code"] == code


async def test_task_read_has_neighbours_and_allowed_actions(
    api: httpx.AsyncClient, templates_api: httpx.AsyncClient, jwt_keys: JwtKeys
) -> None:
    org = uuid.uuid4()
    project = await start_project(api, templates_api, jwt_keys, org, deliverables=1)
    headers = planner_headers(jwt_keys, org)
    items = (
        await api.get("/api/v1/tasks", params={"project_id": project["id"]}, headers=headers)
    ).json()["items"]
    by_key = {t["node_key"]: t for t in items}

    assemble = await api.get(f"/api/v1/tasks/{by_key['assemble']['id']}", headers=headers)
    assert assemble.status_code == 200, assemble.text
    body = assemble.json()
    assert assemble.headers["etag"] == '"1"'
    assert sorted(b["title"] for b in body["blockers"]) == [
        "Check the hardware",
        "Drill the panels",
    ]
    assert all(b["status"] == "blocked" for b in body["blockers"])
    assert [d["title"] for d in body["dependents"]] == ["Sand"]
    assert body["open_blockers"] == 2
    # From the state machine's table: a planner may assign or cancel a blocked task.
    assert "assign" in body["allowed_actions"] and "start" not in body["allowed_actions"]

    design = (await api.get(f"/api/v1/tasks/{by_key['design']['id']}", headers=headers)).json()
    assert design["blockers"] == [] and len(design["dependents"]) == 2
    assert "start" in design["allowed_actions"]
    viewer = jwt_keys.headers(["viewer"], org_id=org)
    as_viewer = (await api.get(f"/api/v1/tasks/{by_key['design']['id']}", headers=viewer)).json()
    assert as_viewer["allowed_actions"] == []

    paint = (await api.get(f"/api/v1/tasks/{by_key['paint']['id']}", headers=headers)).json()
    assert paint["qc_required"] and paint["qc_checklist"][0]["code"] == "PAINT-1"
    sand = (await api.get(f"/api/v1/tasks/{by_key['sand']['id']}", headers=headers)).json()
    assert sand["parent_id"] == by_key["assemble"]["id"]

    deliverable = await api.get(
        f"/api/v1/deliverables/{project['deliverables'][0]['id']}", headers=headers
    )
    assert deliverable.status_code == 200, deliverable.text
    d = deliverable.json()
    assert d["serial"] == "DLV-000001" and d["task_counts"]["ready"] == 1
    assert d["progress"]["total"] == 12 and d["progress"]["total_hours"] == 31
    assert d["signoffs"] == []


async def test_another_orgs_ids_answer_404(
    api: httpx.AsyncClient, templates_api: httpx.AsyncClient, jwt_keys: JwtKeys
) -> None:
    org = uuid.uuid4()
    project = await start_project(api, templates_api, jwt_keys, org, deliverables=1)
    mine = planner_headers(jwt_keys, org)
    task_id = (
        await api.get("/api/v1/tasks", params={"project_id": project["id"]}, headers=mine)
    ).json()["items"][0]["id"]
    stranger = planner_headers(jwt_keys, uuid.uuid4())
    pid = project["id"]
    for url in (
        f"/api/v1/projects/{pid}",
        f"/api/v1/projects/{pid}/dashboard",
        f"/api/v1/projects/{pid}/graph",
        f"/api/v1/projects/{pid}/graph?format=mermaid",
        f"/api/v1/deliverables/{project['deliverables'][0]['id']}",
        f"/api/v1/tasks/{task_id}",
    ):
        resp = await api.get(url, headers=stranger)
        assert resp.status_code == 404, url
        assert resp.json()["code"].endswith("NOT_FOUND")
        assert (await api.get(url, headers=mine)).status_code == 200, url
    hold = await api.post(
        f"/api/v1/projects/{pid}/hold", json={"expected_row_version": 1}, headers=stranger
    )
    assert hold.status_code == 404
    for url in ("/api/v1/projects", f"/api/v1/tasks?project_id={pid}"):
        assert (await api.get(url, headers=stranger)).json()["items"] == []


async def test_project_list_pages_and_filters(
    api: httpx.AsyncClient, templates_api: httpx.AsyncClient, jwt_keys: JwtKeys
) -> None:
    org = uuid.uuid4()
    headers = planner_headers(jwt_keys, org)
    ids = [
        (await start_project(api, templates_api, jwt_keys, org, deliverables=1))["id"]
        for _ in range(3)
    ]
    listed = await all_pages(api, "/api/v1/projects", {"limit": 2}, headers)
    # Newest first; projects of one transaction share created_at, then the id decides.
    assert sorted(p["id"] for p in listed) == sorted(ids)
    order = [(p["created_at"], p["id"]) for p in listed]
    assert order == sorted(order, reverse=True)
    await api.post(
        f"/api/v1/projects/{ids[0]}/hold", json={"expected_row_version": 1}, headers=headers
    )
    held = await all_pages(api, "/api/v1/projects", {"status": "on_hold"}, headers)
    assert [p["id"] for p in held] == [ids[0]]
    bad = await api.get("/api/v1/projects", params={"status": "paused"}, headers=headers)
    assert bad.status_code == 400 and bad.json()["code"] == "STATUS_INVALID"


async def test_hold_resume_cancel_with_row_versions(
    api: httpx.AsyncClient, templates_api: httpx.AsyncClient, jwt_keys: JwtKeys
) -> None:
    org = uuid.uuid4()
    headers = planner_headers(jwt_keys, org)
    pid = (await start_project(api, templates_api, jwt_keys, org, deliverables=1))["id"]

    missing = await api.post(f"/api/v1/projects/{pid}/hold", json={}, headers=headers)
    assert missing.status_code == 428 and missing.json()["code"] == "ROW_VERSION_REQUIRED"
    stale = await api.post(
        f"/api/v1/projects/{pid}/hold", json={"expected_row_version": 7}, headers=headers
    )
    assert stale.status_code == 409 and stale.json()["code"] == "VERSION_CONFLICT"
    assert stale.json()["current_row_version"] == 1
    stale_header = await api.post(
        f"/api/v1/projects/{pid}/hold", headers={**headers, "If-Match": '"7"'}
    )
    assert (stale_header.status_code, stale_header.json()["code"]) == (412, "VERSION_CONFLICT")
    assert stale_header.json()["current_row_version"] == 1
    assert stale_header.json()["current_status"] == "active"

    held = await api.post(
        f"/api/v1/projects/{pid}/hold",
        json={"expected_row_version": 1, "reason": "customer paused"},
        headers=headers,
    )
    assert held.status_code == 200, held.text
    assert held.json()["status"] == "on_hold" and held.headers["etag"] == '"2"'
    again = await api.post(
        f"/api/v1/projects/{pid}/hold", json={"expected_row_version": 2}, headers=headers
    )
    assert again.status_code == 409 and again.json()["code"] == "PROJECT_STATUS_CONFLICT"
    resumed = await api.post(
        f"/api/v1/projects/{pid}/resume", headers={**headers, "If-Match": '"2"'}
    )
    assert resumed.status_code == 200, resumed.text
    assert resumed.json()["status"] == "active"
    cancelled = await api.post(
        f"/api/v1/projects/{pid}/cancel", json={"expected_row_version": 3}, headers=headers
    )
    assert cancelled.json()["status"] == "cancelled"
    unknown = await api.post(
        f"/api/v1/projects/{pid}/explode", json={"expected_row_version": 4}, headers=headers
    )
    assert unknown.status_code in (404, 405)
    viewer = await api.post(
        f"/api/v1/projects/{pid}/resume",
        json={"expected_row_version": 4},
        headers=jwt_keys.headers(["viewer"], org_id=org),
    )
    assert viewer.status_code == 403
