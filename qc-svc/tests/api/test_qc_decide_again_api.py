"""After task-svc refuses a decision, the inspector sees why and decides again through the API."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.envelope import CloudEvent
from contracts.tasks import TASK_QC_DECISION_REFUSED, TaskQcDecisionRefusedV1
from qc_svc.db import outbox
from qc_svc.events.handlers import record_refused_decision
from servicekit.testing.plugin import JwtKeys

INSPECTOR = uuid.UUID("00000000-0000-4000-8000-0000000000d1")
OTHER_INSPECTOR = uuid.UUID("00000000-0000-4000-8000-0000000000d2")
BASE = "/api/v1/inspections"


def cmd(version: int, **body: Any) -> dict[str, Any]:
    return {"expected_row_version": version, "client_event_id": str(uuid.uuid4()), **body}


def refusal(inspection: dict[str, Any], code: str, detail: str) -> CloudEvent[Any]:
    data = TaskQcDecisionRefusedV1(
        inspection_id=uuid.UUID(inspection["id"]),
        task_id=uuid.UUID(inspection["task_id"]),
        org_id=uuid.UUID(inspection["org_id"]),
        decision="failed",
        code=code,
        detail=detail,
        occurred_at=datetime.now(UTC),
    )
    return CloudEvent[TaskQcDecisionRefusedV1](
        id=str(uuid.uuid4()),
        source="task-svc",
        type=TASK_QC_DECISION_REFUSED,
        time=data.occurred_at,
        subject=str(data.task_id),
        data=data,
    )


async def test_a_refused_reject_is_shown_and_the_inspector_rejects_again(
    client: httpx.AsyncClient, jwt_keys: JwtKeys, submit: Any, session: AsyncSession
) -> None:
    inspection = await submit()
    h = jwt_keys.headers(["inspector"], user_id=INSPECTOR)
    url = f"{BASE}/{inspection.id}"
    resp = await client.post(f"{url}/claim", json=cmd(1), headers=h)
    assert resp.status_code == 200, resp.text
    resp = await client.post(
        f"{url}/defects", json=cmd(2, code="DENT", severity="major", description="d"), headers=h
    )
    assert resp.status_code == 201, resp.text
    not_upstream = str(uuid.uuid4())
    first_cid = str(uuid.uuid4())
    first_body = {
        "decision": "reject",
        "reason": "dent",
        "rework_from_task_id": not_upstream,
        "expected_row_version": 3,
        "client_event_id": first_cid,
    }
    resp = await client.post(f"{url}/decision", json=first_body, headers=h)
    assert resp.status_code == 200, resp.text
    decided = resp.json()
    assert decided["status"] == "failed"

    detail = f"task {not_upstream} is not upstream of the inspected task"
    await record_refused_decision(session, refusal(decided, "REWORK_TASK_NOT_UPSTREAM", detail))

    resp = await client.get(url, headers=h)
    shown = resp.json()
    assert resp.headers["ETag"] == '"5"'
    assert shown["status"] == "claimed"
    assert shown["inspector_id"] == str(INSPECTOR)
    assert shown["outcome"] == "refused"
    assert shown["outcome_error"] == {"code": "REWORK_TASK_NOT_UPSTREAM", "detail": detail}
    assert shown["outcome_at"] is not None
    assert shown["decision"] is None
    assert [d["code"] for d in shown["defects"]] == ["DENT"]
    assert "decide" in shown["allowed_actions"]
    assert [(r["decision"], r["rework_from_task_id"], r["code"]) for r in shown["refusals"]] == [
        ("reject", not_upstream, "REWORK_TASK_NOT_UPSTREAM")
    ]

    # The first decision's id still replays the first answer, and changes nothing.
    resp = await client.post(f"{url}/decision", json=first_body, headers=h)
    assert resp.status_code == 200 and resp.headers["Idempotent-Replayed"] == "true"
    assert resp.json()["status"] == "failed"
    # Another inspector cannot take over, and a stale version is refused.
    other = jwt_keys.headers(["inspector"], user_id=OTHER_INSPECTOR)
    resp = await client.post(
        f"{url}/decision", json=cmd(5, decision="reject", reason="dent"), headers=other
    )
    assert (resp.status_code, resp.json()["code"]) == (403, "NOT_THE_INSPECTOR")
    resp = await client.post(
        f"{url}/decision", json=cmd(4, decision="reject", reason="dent"), headers=h
    )
    assert (resp.status_code, resp.json()["code"]) == (409, "VERSION_CONFLICT")

    # The inspector rejects again, this time without naming an upstream task.
    resp = await client.post(
        f"{url}/decision", json=cmd(5, decision="reject", reason="dent, redo it"), headers=h
    )
    assert resp.status_code == 200, resp.text
    again = resp.json()
    assert (again["status"], again["row_version"]) == ("failed", 6)
    assert (again["outcome"], again["outcome_error"], again["rework_from_task_id"]) == (
        None,
        None,
        None,
    )
    assert len(again["refusals"]) == 1

    rows = (
        await session.execute(
            select(outbox.c.id, outbox.c.type, outbox.c.payload)
            .where(outbox.c.aggregate_id == str(inspection.id))
            .order_by(outbox.c.seq)
        )
    ).all()
    assert [r.type for r in rows] == [
        "qc.inspection.created",
        "qc.inspection.failed",
        "qc.inspection.reopened",
        "qc.inspection.failed",
    ]
    assert rows[1].id != rows[3].id
    assert rows[1].payload["rework_from_task_id"] == not_upstream
    assert rows[3].payload["rework_from_task_id"] is None
    assert rows[3].payload["reason"] == "dent, redo it"


async def test_the_internal_outcome_route_is_gone(
    client: httpx.AsyncClient, jwt_keys: JwtKeys, submit: Any
) -> None:
    inspection = await submit()
    service = {"Authorization": f"Bearer {jwt_keys.service_token('task-svc')}"}
    body = {"org_id": str(inspection.org_id), "applied": False}
    resp = await client.post(
        f"/internal/inspections/{inspection.id}/outcome", json=body, headers=service
    )
    assert resp.status_code == 404
