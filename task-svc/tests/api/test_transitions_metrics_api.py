"""Transition metrics on /metrics, and transitions refused while the project is not active."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from servicekit.db import Database

from ..support.taskgraph import asgi_client, insert_task, project_with_deliverable

ORG = uuid.UUID("00000000-0000-4000-8000-00000000c001")
PLANNER = uuid.UUID("00000000-0000-4000-8000-0000000000c1")
OPERATOR = uuid.UUID("00000000-0000-4000-8000-0000000000c2")


async def make_tasks(
    conn: AsyncConnection, n: int, *, qc: bool = False, status: str = "ready"
) -> tuple[uuid.UUID, list[uuid.UUID]]:
    """A project (status `active`) with one deliverable and `n` independent tasks."""
    project, dl = await project_with_deliverable(conn, org_id=ORG, serial_prefix="M")
    ids = [
        await insert_task(
            conn,
            org_id=ORG,
            project_id=project,
            deliverable_id=dl,
            node_key=f"n{i}",
            status=status,
            qc=qc,
            assigned_to=OPERATOR if status != "ready" else None,
        )
        for i in range(n)
    ]
    return project, ids


async def set_project_status(conn: AsyncConnection, project: uuid.UUID, status: str) -> None:
    await conn.execute(
        text("UPDATE task.projects SET status = :s WHERE id = :id"), {"s": status, "id": project}
    )


@pytest.fixture
async def metrics_client(
    settings: Any, engine: Any, db_conn: AsyncConnection
) -> AsyncIterator[httpx.AsyncClient]:
    from task_svc.main import create_app

    app = create_app(settings, database=Database(engine, bind=db_conn))
    async with app.router.lifespan_context(app), asgi_client(app) as c:
        yield c


async def scrape(client: httpx.AsyncClient) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    r = await client.get("/metrics")
    assert r.status_code == 200
    out: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for family in text_string_to_metric_families(r.text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(samples: dict[Any, float], name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def post(
    client: httpx.AsyncClient, headers: dict[str, str], task: uuid.UUID, body: dict[str, Any]
) -> Any:
    return client.post(f"/api/v1/tasks/{task}/transitions", headers=headers, json=body)


async def test_transitions_metrics_count_ok_conflict_replay_and_refusals(
    metrics_client: httpx.AsyncClient, db_conn: AsyncConnection, jwt_keys: Any
) -> None:
    _, (a,) = await make_tasks(db_conn, 1)
    planner = jwt_keys.headers(["planner"], org_id=ORG, user_id=PLANNER)
    before = await scrape(metrics_client)

    assign = {"action": "assign", "payload": {"assign_to": str(OPERATOR)}}
    r = await post(
        metrics_client, planner, a, {**assign, "expected_row_version": 1, "client_event_id": "m-1"}
    )
    assert r.status_code == 200, r.text
    r = await post(
        metrics_client, planner, a, {**assign, "expected_row_version": 1, "client_event_id": "m-1"}
    )
    assert r.status_code == 200 and r.headers["Idempotent-Replayed"] == "true"
    r = await post(metrics_client, planner, a, {**assign, "expected_row_version": 1})
    assert r.status_code == 409 and r.json()["code"] == "VERSION_CONFLICT"
    r = await post(
        metrics_client, planner, a, {"action": "assign", "payload": {}, "expected_row_version": 2}
    )
    assert r.status_code == 422 and r.json()["code"] == "PAYLOAD_INVALID"
    r = await post(
        metrics_client,
        planner,
        a,
        {"action": "pause", "payload": {"reason": "x"}, "expected_row_version": 2},
    )
    assert r.status_code == 409 and r.json()["code"] == "ACTION_NOT_ALLOWED"
    r = await post(metrics_client, planner, uuid.uuid4(), {**assign, "expected_row_version": 1})
    assert r.status_code == 404

    after = await scrape(metrics_client)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("transitions_total", action="assign", outcome="ok") == 1
    assert delta("transitions_total", action="assign", outcome="replayed") == 1
    assert delta("transitions_total", action="assign", outcome="conflict") == 1
    assert delta("transitions_total", action="assign", outcome="payload_invalid") == 1
    assert delta("transitions_total", action="assign", outcome="not_found") == 1
    assert delta("transitions_total", action="pause", outcome="not_allowed") == 1
    assert delta("optimistic_lock_conflicts_total") == 1
    assert delta("idempotent_replays_total") == 1
    # Requests refused before the service (request validation) are not timed.
    assert delta("transition_duration_seconds_count", action="assign") == 4
    assert delta("transition_duration_seconds_count", action="pause") == 1


async def test_transitions_refused_while_project_on_hold_or_cancelled(
    metrics_client: httpx.AsyncClient, db_conn: AsyncConnection, jwt_keys: Any
) -> None:
    project, (a,) = await make_tasks(db_conn, 1)
    planner = jwt_keys.headers(["planner"], org_id=ORG, user_id=PLANNER)
    assign = {"action": "assign", "payload": {"assign_to": str(OPERATOR)}}
    r = await post(
        metrics_client, planner, a, {**assign, "expected_row_version": 1, "client_event_id": "h-1"}
    )
    assert r.status_code == 200

    for status in ("on_hold", "cancelled", "completed"):
        await set_project_status(db_conn, project, status)
        r = await post(metrics_client, planner, a, {**assign, "expected_row_version": 2})
        assert r.status_code == 409, r.text
        body = r.json()
        assert (body["code"], body["project_status"], body["project_id"]) == (
            "PROJECT_NOT_ACTIVE",
            status,
            str(project),
        )
        assert status in body["detail"]
        # A repeated request is still answered with its original result.
        r = await post(
            metrics_client,
            planner,
            a,
            {**assign, "expected_row_version": 1, "client_event_id": "h-1"},
        )
        assert r.status_code == 200 and r.headers["Idempotent-Replayed"] == "true"

    row = (
        await db_conn.execute(text("SELECT row_version FROM task.tasks WHERE id = :t"), {"t": a})
    ).one()
    assert row[0] == 2

    await set_project_status(db_conn, project, "active")
    r = await post(metrics_client, planner, a, {**assign, "expected_row_version": 2})
    assert r.status_code == 200, r.text


async def test_transitions_qc_decisions_land_in_a_project_on_hold_only(
    metrics_client: httpx.AsyncClient, db_conn: AsyncConnection, jwt_keys: Any
) -> None:
    project, (a, b) = await make_tasks(db_conn, 2, qc=True, status="in_qc")
    svc = {"Authorization": f"Bearer {jwt_keys.service_token('qc-svc')}"}

    def qc(task: uuid.UUID, action: str, cid: str) -> Any:
        body = {
            "action": action,
            "payload": {"inspection_id": str(uuid.uuid4())},
            "client_event_id": cid,
        }
        return metrics_client.post(
            f"/internal/tasks/{task}/system-transitions?org_id={ORG}", headers=svc, json=body
        )

    await set_project_status(db_conn, project, "on_hold")
    r = await qc(a, "qc_accept", "q-1")
    assert r.status_code == 200, r.text
    assert r.json()["to_status"] == "done"

    await set_project_status(db_conn, project, "cancelled")
    r = await qc(b, "qc_reject", "q-2")
    assert r.status_code == 409 and r.json()["code"] == "PROJECT_NOT_ACTIVE"
    st = (
        await db_conn.execute(text("SELECT status FROM task.tasks WHERE id = :t"), {"t": b})
    ).one()
    assert st[0] == "in_qc"
