"""The internal system-transition route takes `rework_from_task_id` like the QC event handler
does, and a refused rework is counted on /metrics as `rework_refused`."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

ORG = uuid.UUID("00000000-0000-4000-8000-00000000f001")


async def seed_chain(conn: AsyncConnection) -> dict[str, uuid.UUID]:
    """cut -> drill -> paint (in QC); `other` is done but upstream of nothing."""
    project, dl = uuid.uuid4(), uuid.uuid4()
    await conn.execute(
        text(
            "INSERT INTO task.projects (id, org_id, name, template_id, template_key, "
            "template_version, template_checksum, snapshot, status, start_at, created_by) "
            "VALUES (:id, :org, 'P', :tid, 'tpl', 1, 'x', '{}'::jsonb, 'active', now(), 't')"
        ),
        {"id": project, "org": ORG, "tid": uuid.uuid4()},
    )
    await conn.execute(
        text(
            "INSERT INTO task.deliverables (id, org_id, project_id, name, position, serial) "
            "VALUES (:id, :org, :p, 'D1', 1, :serial)"
        ),
        {"id": dl, "org": ORG, "p": project, "serial": f"F-{uuid.uuid4().hex[:10]}"},
    )
    ids = {key: uuid.uuid4() for key in ("cut", "drill", "paint", "other")}
    for key, tid in ids.items():
        await conn.execute(
            text(
                "INSERT INTO task.tasks (id, org_id, project_id, deliverable_id, node_key, "
                "title, kind, work_kind, status, qc_required) "
                "VALUES (:id, :org, :p, :d, :k, :k, 'step', 'work', :st, :qc)"
            ),
            {
                "id": tid,
                "org": ORG,
                "p": project,
                "d": dl,
                "k": key,
                "st": "in_qc" if key == "paint" else "done",
                "qc": key == "paint",
            },
        )
    for blocker, task in (("cut", "drill"), ("drill", "paint")):
        await conn.execute(
            text("INSERT INTO task.task_dependencies (task_id, blocker_id) VALUES (:t, :b)"),
            {"t": ids[task], "b": ids[blocker]},
        )
    return ids


async def statuses(conn: AsyncConnection, ids: dict[str, uuid.UUID]) -> dict[str, tuple[str, int]]:
    res = await conn.execute(
        text("SELECT id, status, open_blockers FROM task.tasks WHERE id = ANY(:ids)"),
        {"ids": list(ids.values())},
    )
    by_id = {r.id: (r.status, r.open_blockers) for r in res}
    return {key: by_id[tid] for key, tid in ids.items()}


async def rework_refusals(client: httpx.AsyncClient) -> float:
    resp = await client.get("/metrics")
    assert resp.status_code == 200
    for family in text_string_to_metric_families(resp.text):
        for s in family.samples:
            if s.name == "transitions_total" and s.labels == {
                "action": "qc_reject",
                "outcome": "rework_refused",
            }:
                return float(s.value)
    return 0.0


def qc_reject(
    client: httpx.AsyncClient, headers: dict[str, str], task: uuid.UUID, **payload: Any
) -> Any:
    body = {
        "action": "qc_reject",
        "payload": {"inspection_id": str(uuid.uuid4()), "reason": "paint runs", **payload},
        "client_event_id": f"qcfix-{uuid.uuid4()}",
    }
    return client.post(
        f"/internal/tasks/{task}/system-transitions",
        params={"org_id": str(ORG)},
        json=body,
        headers=headers,
    )


async def test_system_transition_reject_reworks_the_named_upstream_task(
    client: httpx.AsyncClient, db_conn: AsyncConnection, jwt_keys: Any
) -> None:
    ids = await seed_chain(db_conn)
    svc = {"Authorization": f"Bearer {jwt_keys.service_token('qc-svc')}"}
    before = await rework_refusals(client)

    resp = await qc_reject(client, svc, ids["paint"], rework_from_task_id=str(ids["other"]))
    assert resp.status_code == 422, resp.text
    problem = resp.json()
    assert problem["code"] == "REWORK_TASK_NOT_UPSTREAM"
    assert problem["field"] == "payload.rework_from_task_id"
    assert await rework_refusals(client) == before + 1
    assert (await statuses(db_conn, ids))["paint"] == ("in_qc", 0)

    resp = await qc_reject(client, svc, ids["paint"], rework_from_task_id=str(ids["cut"]))
    assert resp.status_code == 200, resp.text
    assert resp.json()["to_status"] == "rework"
    assert await statuses(db_conn, ids) == {
        "cut": ("rework", 0),
        "drill": ("blocked", 1),
        "paint": ("rework", 1),
        "other": ("done", 0),
    }
    assert await rework_refusals(client) == before + 1


async def test_system_transition_payload_refuses_unknown_fields_and_bad_ids_precisely(
    client: httpx.AsyncClient, db_conn: AsyncConnection, jwt_keys: Any
) -> None:
    ids = await seed_chain(db_conn)
    svc = {"Authorization": f"Bearer {jwt_keys.service_token('qc-svc')}"}
    resp = await qc_reject(client, svc, ids["paint"], rework_from="cut")
    assert resp.status_code == 422, resp.text
    assert (resp.json()["code"], resp.json()["field"]) == ("PAYLOAD_INVALID", "payload.rework_from")
    resp = await qc_reject(client, svc, ids["paint"], rework_from_task_id="not-a-uuid")
    assert resp.status_code == 422, resp.text
    problem = resp.json()
    assert (problem["code"], problem["field"]) == ("PAYLOAD_INVALID", "payload.rework_from_task_id")
    assert "not-a-uuid" in problem["detail"]
    assert (await statuses(db_conn, ids))["paint"] == ("in_qc", 0)
