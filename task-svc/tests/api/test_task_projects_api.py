"""Projects through the API, with the real template-svc answering the version reads."""

from __future__ import annotations

import tracemalloc
import uuid
from typing import Any

import httpx
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from servicekit.testing.plugin import JwtKeys
from task_svc.db import outbox
from task_svc.projects.models import Project
from task_svc.templates_client import TemplatesClient

from ..support.graphs import CABINET_CRITICAL_HOURS, CABINET_CRITICAL_PATH
from ..support.templates import add_version, deprecate, planner_headers, publish_template

START = "2026-12-01T08:00:00Z"


def body(template_id: uuid.UUID, **kw: Any) -> dict[str, Any]:
    return {
        "name": "Cabinets for ACME",
        "template_id": str(template_id),
        "deliverables": 3,
        "start_at": START,
        **kw,
    }


async def project_count(session: AsyncSession, org_id: uuid.UUID) -> int:
    return int(
        await session.scalar(
            select(func.count()).select_from(Project).where(Project.org_id == org_id)
        )
        or 0
    )


async def test_project_from_the_12_node_template_with_3_deliverables(
    api: httpx.AsyncClient,
    app: Any,
    templates_api: httpx.AsyncClient,
    jwt_keys: JwtKeys,
    session: AsyncSession,
) -> None:
    org = uuid.uuid4()
    headers = planner_headers(jwt_keys, org)
    template_id = await publish_template(templates_api, jwt_keys, org)

    created = await api.post("/api/v1/projects", json=body(template_id), headers=headers)
    assert created.status_code == 201, created.text
    project = created.json()
    assert created.headers["location"] == f"/api/v1/projects/{project['id']}"
    assert project["template"]["version"] == 1 and project["template"]["id"] == str(template_id)
    assert project["task_count"] == 36
    assert project["task_counts"]["ready"] == 3 and project["task_counts"]["blocked"] == 33
    assert [d["serial"] for d in project["deliverables"]] == [
        "DLV-000001",
        "DLV-000002",
        "DLV-000003",
    ]
    assert [d["name"] for d in project["deliverables"]] == ["#1", "#2", "#3"]

    # One outbox event for the whole project, with counts (task creation is in task_events).
    events = (
        await session.execute(
            select(outbox.c.type, outbox.c.payload, outbox.c.headers).where(
                outbox.c.aggregate_id == project["id"]
            )
        )
    ).all()
    assert [e.type for e in events] == ["project.created"]
    payload = events[0].payload
    assert (payload["task_count"], payload["ready_count"], payload["blocked_count"]) == (36, 3, 33)
    assert [d["serial"] for d in payload["deliverables"]] == [
        d["serial"] for d in project["deliverables"]
    ]
    assert events[0].headers["dataschema"] == "urn:blueprint:event:project.created:v1"

    # template-svc is gone from now on: the project lives on its snapshot.
    app.state.templates_client = TemplatesClient(
        "http://127.0.0.1:9", token=lambda: "unused", attempts=1, backoff_seconds=0
    )
    pid = project["id"]
    read = await api.get(f"/api/v1/projects/{pid}?include_snapshot=true", headers=headers)
    assert read.status_code == 200, read.text
    assert read.json()["task_counts"] == project["task_counts"]
    assert len(read.json()["snapshot"]["nodes"]) == 12

    tasks = await api.get(
        "/api/v1/tasks", params={"project_id": pid, "limit": 200}, headers=headers
    )
    assert tasks.status_code == 200, tasks.text
    items = tasks.json()["items"]
    assert len(items) == 36
    assert {t["node_key"] for t in items if t["status"] == "ready"} == {"design"}

    dashboard = await api.get(f"/api/v1/projects/{pid}/dashboard", headers=headers)
    assert dashboard.status_code == 200, dashboard.text
    dash = dashboard.json()
    assert dash["counts"]["ready"] == 3 and dash["progress"]["by_count"] == 0
    assert dash["progress"]["total_hours"] == 3 * 31
    keys = {t["id"]: t["node_key"] for t in items}
    path = [keys[s["id"]] for s in dash["critical_path"]["steps"]]
    assert path == CABINET_CRITICAL_PATH
    assert dash["critical_path"]["remaining_hours"] == CABINET_CRITICAL_HOURS
    assert len({s["deliverable_id"] for s in dash["critical_path"]["steps"]}) == 1
    assert len(dash["deliverables"]) == 3
    assert {b["title"] for b in dash["blocked"][0]["blocked_by"]} <= {t["title"] for t in items}
    assert dash["workload"] == [
        {"assigned_to": None, "open_tasks": 36, "in_progress": 0, "remaining_hours": 93.0}
    ]

    graph = await api.get(f"/api/v1/projects/{pid}/graph", headers=headers)
    assert graph.status_code == 200
    assert len(graph.json()["nodes"]) == 36 and len(graph.json()["edges"]) == 39
    mermaid = await api.get(f"/api/v1/projects/{pid}/graph?format=mermaid", headers=headers)
    assert mermaid.status_code == 200
    assert mermaid.headers["content-type"].startswith("text/plain")
    assert mermaid.text.startswith("flowchart TD\n") and mermaid.text.count(" --> ") == 39

    # A new project needs template-svc, and says clearly that it cannot answer.
    refused = await api.post("/api/v1/projects", json=body(template_id), headers=headers)
    assert refused.status_code == 503
    assert refused.json()["code"] == "TEMPLATE_SVC_UNAVAILABLE"


async def test_latest_published_version_is_the_default_and_versions_can_be_pinned(
    api: httpx.AsyncClient, templates_api: httpx.AsyncClient, jwt_keys: JwtKeys
) -> None:
    org = uuid.uuid4()
    headers = planner_headers(jwt_keys, org)
    template_id = await publish_template(templates_api, jwt_keys, org)
    await add_version(templates_api, jwt_keys, org, template_id, publish=True)
    await add_version(templates_api, jwt_keys, org, template_id, publish=False)  # a draft v3

    latest = await api.post("/api/v1/projects", json=body(template_id), headers=headers)
    assert latest.status_code == 201, latest.text
    assert latest.json()["template"]["version"] == 2
    pinned = await api.post(
        "/api/v1/projects", json=body(template_id, template_version=1), headers=headers
    )
    assert pinned.status_code == 201, pinned.text
    assert pinned.json()["template"]["version"] == 1


async def test_bad_input_is_a_precise_problem_and_creates_nothing(
    api: httpx.AsyncClient,
    templates_api: httpx.AsyncClient,
    jwt_keys: JwtKeys,
    session: AsyncSession,
) -> None:
    org = uuid.uuid4()
    headers = planner_headers(jwt_keys, org)
    template_id = await publish_template(templates_api, jwt_keys, org)
    await add_version(templates_api, jwt_keys, org, template_id, publish=False)  # draft v2
    other_template = await publish_template(templates_api, jwt_keys, uuid.uuid4())

    cases: list[tuple[dict[str, Any], int, str, str]] = [
        (body(uuid.uuid4()), 422, "TEMPLATE_NOT_FOUND", "template_id"),
        (body(other_template), 422, "TEMPLATE_NOT_FOUND", "template_id"),
        (
            body(template_id, template_version=9),
            422,
            "TEMPLATE_VERSION_NOT_FOUND",
            "template_version",
        ),
        (
            body(template_id, template_version=2),
            422,
            "TEMPLATE_VERSION_NOT_PUBLISHED",
            "template_version",
        ),
        (body(template_id, deliverables=0), 422, "VALIDATION_FAILED", "deliverables"),
        (body(template_id, deliverables=[]), 422, "VALIDATION_FAILED", "deliverables"),
        (body(template_id, deliverables=201), 422, "TOO_MANY_DELIVERABLES", "deliverables"),
        (body(template_id, deliverables=9_999), 422, "TOO_MANY_DELIVERABLES", "deliverables"),
        (body(template_id, deliverables=38443777673), 422, "VALIDATION_FAILED", "deliverables"),
        (body(template_id, deliverables=2**70), 422, "VALIDATION_FAILED", "deliverables"),
        (body(template_id, due_at="2026-11-30T08:00:00Z"), 422, "DUE_BEFORE_START", "due_at"),
        (body(template_id, start_at="2026-12-01T08:00:00"), 422, "VALIDATION_FAILED", "start_at"),
        (body(template_id, colour="red"), 422, "VALIDATION_FAILED", "colour"),
    ]
    for payload, status, code, field in cases:
        resp = await api.post("/api/v1/projects", json=payload, headers=headers)
        assert resp.status_code == status, (payload, resp.text)
        problem = resp.json()
        assert resp.headers["content-type"] == "application/problem+json"
        assert problem["code"] == code, (payload, problem)
        assert any(e["field"] == field for e in problem["errors"]), (payload, problem)
    assert await project_count(session, org) == 0


async def test_a_huge_deliverable_count_is_refused_before_anything_is_allocated(
    api: httpx.AsyncClient, templates_api: httpx.AsyncClient, jwt_keys: JwtKeys
) -> None:
    """A count from a client is checked before a list of that size is built: the refusal of a
    count a hundred times the ceiling allocates almost nothing."""
    org = uuid.uuid4()
    headers = planner_headers(jwt_keys, org)
    template_id = await publish_template(templates_api, jwt_keys, org)
    for count in (9_000, 1_000_000):
        tracemalloc.start()
        try:
            resp = await api.post(
                "/api/v1/projects", json=body(template_id, deliverables=count), headers=headers
            )
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert resp.status_code == 422, resp.text
        assert peak < 5_000_000, f"refusing {count} deliverables allocated {peak} bytes"


async def test_deprecated_versions_need_allow_deprecated(
    api: httpx.AsyncClient, templates_api: httpx.AsyncClient, jwt_keys: JwtKeys
) -> None:
    org = uuid.uuid4()
    headers = planner_headers(jwt_keys, org)
    template_id = await publish_template(templates_api, jwt_keys, org)
    await add_version(templates_api, jwt_keys, org, template_id, publish=True)
    await deprecate(templates_api, jwt_keys, org, template_id, 1)

    refused = await api.post(
        "/api/v1/projects", json=body(template_id, template_version=1), headers=headers
    )
    assert refused.status_code == 422
    assert refused.json()["code"] == "TEMPLATE_VERSION_DEPRECATED"
    allowed = await api.post(
        "/api/v1/projects",
        json=body(template_id, template_version=1, allow_deprecated=True),
        headers=headers,
    )
    assert allowed.status_code == 201, allowed.text


async def test_idempotency_key_replays_and_refuses_a_different_body(
    api: httpx.AsyncClient,
    templates_api: httpx.AsyncClient,
    jwt_keys: JwtKeys,
    session: AsyncSession,
) -> None:
    org = uuid.uuid4()
    headers = {**planner_headers(jwt_keys, org), "Idempotency-Key": "order-4711"}
    template_id = await publish_template(templates_api, jwt_keys, org)

    first = await api.post("/api/v1/projects", json=body(template_id), headers=headers)
    assert first.status_code == 201, first.text
    again = await api.post("/api/v1/projects", json=body(template_id), headers=headers)
    assert again.status_code == 201
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json()
    different = await api.post(
        "/api/v1/projects", json=body(template_id, deliverables=2), headers=headers
    )
    assert different.status_code == 409
    assert different.json()["code"] == "IDEMPOTENCY_KEY_REUSED"
    assert await project_count(session, org) == 1
    # The same key in another org is another request.
    other_org = uuid.uuid4()
    other_template = await publish_template(templates_api, jwt_keys, other_org)
    elsewhere = await api.post(
        "/api/v1/projects",
        json=body(other_template),
        headers={**planner_headers(jwt_keys, other_org), "Idempotency-Key": "order-4711"},
    )
    assert elsewhere.status_code == 201 and elsewhere.json()["id"] != first.json()["id"]


async def test_only_planners_start_projects(
    api: httpx.AsyncClient, templates_api: httpx.AsyncClient, jwt_keys: JwtKeys
) -> None:
    org = uuid.uuid4()
    template_id = await publish_template(templates_api, jwt_keys, org)
    resp = await api.post(
        "/api/v1/projects",
        json=body(template_id),
        headers=jwt_keys.headers(["operator"], org_id=org),
    )
    assert resp.status_code == 403 and resp.json()["code"] == "ROLE_REQUIRED"
