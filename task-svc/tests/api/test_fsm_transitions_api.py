"""The transition API: actions, errors, idempotency, cascades, bulk, history, sign-off."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from ..support.taskgraph import (
    APPROVER,
    OPERATOR,
    OPERATOR2,
    ORG,
    OTHER_ORG,
    PLANNER,
    make_graph,
    task_row,
)
from ..support.transitions import post_action


def hdr(jwt_keys: Any, roles: Any, user: uuid.UUID, org: uuid.UUID = ORG) -> dict[str, str]:
    return jwt_keys.headers(list(roles), org_id=org, user_id=user)


act = post_action


async def test_fsm_api_assign_start_complete_unblocks_dependent(
    fsm_client: httpx.AsyncClient, db_conn: AsyncConnection, jwt_keys: Any
) -> None:
    g = await make_graph(db_conn, ["a", "b"], [("a", "b")])
    a, b = g["tasks"]["a"], g["tasks"]["b"]
    planner = hdr(jwt_keys, ["planner"], PLANNER)
    op = hdr(jwt_keys, ["operator"], OPERATOR)

    r = await act(fsm_client, planner, a, "assign", 1, {"assign_to": str(OPERATOR)})
    assert r.status_code == 200, r.text
    assert r.headers["ETag"] == '"2"'
    assert r.json()["task"]["assigned_to"] == str(OPERATOR)
    r = await act(fsm_client, op, a, "start", 2)
    assert r.status_code == 200, r.text
    assert r.json()["to_status"] == "in_progress"
    assert "complete" in r.json()["task"]["allowed_actions"]
    r = await act(fsm_client, op, a, "complete", 3, {"note": "ok"})
    assert r.status_code == 200, r.text
    assert r.json()["to_status"] == "done"

    row_b = await task_row(db_conn, b)
    assert (row_b["status"], row_b["open_blockers"], row_b["row_version"]) == ("ready", 0, 2)
    events = await fsm_client.get(f"/api/v1/tasks/{b}/events", headers=op)
    assert [e["action"] for e in events.json()["items"]] == ["create", "unblock"]
    outbox = await db_conn.execute(text("SELECT type, headers FROM task.outbox ORDER BY seq"))
    rows = list(outbox)
    types = [r[0] for r in rows]
    assert types.count("task.unblocked") == 1
    assert "task.assigned" in types
    assert "deliverable.ready_for_signoff" not in types  # b is not resolved yet
    # Each event names the JSON Schema of its type, as every emitted event does.
    assert [r[1]["dataschema"] for r in rows] == [f"urn:blueprint:event:{t}:v1" for t in types]
    r = await fsm_client.get(f"/api/v1/tasks/{b}/events?cursor=page-2", headers=op)
    assert (r.status_code, r.json()["code"]) == (400, "CURSOR_INVALID")


async def test_fsm_api_errors_are_precise(
    fsm_client: httpx.AsyncClient, db_conn: AsyncConnection, jwt_keys: Any
) -> None:
    g = await make_graph(db_conn, ["a", "b"], [("a", "b")])
    a, b = g["tasks"]["a"], g["tasks"]["b"]
    planner = hdr(jwt_keys, ["planner"], PLANNER)
    op = hdr(jwt_keys, ["operator"], OPERATOR)

    r = await act(fsm_client, planner, a, "assign", 1, {})
    assert r.status_code == 422
    assert r.json()["code"] == "PAYLOAD_INVALID"
    assert r.json()["detail"] == "action 'assign' needs payload.assign_to (a user id)"

    r = await act(fsm_client, planner, a, "pause", 1, {"reason": "x"})
    assert r.status_code == 409 and r.json()["code"] == "ACTION_NOT_ALLOWED"
    assert r.json()["current_status"] == "ready"
    assert "start" in r.json()["allowed_actions"]

    r = await act(fsm_client, planner, a, "assign", 7, {"assign_to": str(OPERATOR)})
    assert r.status_code == 409 and r.json()["code"] == "VERSION_CONFLICT"
    assert (r.json()["current_row_version"], r.json()["current_status"]) == (1, "ready")

    r = await act(fsm_client, op, b, "start", 1)
    assert r.status_code == 409 and r.json()["code"] == "TASK_BLOCKED"
    assert r.json()["blockers"] == [{"id": str(a), "title": "Task a", "status": "ready"}]

    r = await act(fsm_client, op, a, "cancel", 1, {"reason": "no"})
    assert r.status_code == 403 and r.json()["code"] == "ACTION_FORBIDDEN"

    r = await act(fsm_client, planner, a, "qc_accept", 1, {"inspection_id": str(uuid.uuid4())})
    assert r.status_code == 403 and r.json()["code"] == "SYSTEM_ACTION"

    r = await act(fsm_client, planner, a, "start", None)
    assert r.status_code == 428 and r.json()["code"] == "ROW_VERSION_REQUIRED"

    other = hdr(jwt_keys, ["planner"], PLANNER, org=OTHER_ORG)
    r = await act(fsm_client, other, a, "cancel", 1, {"reason": "x"})
    assert r.status_code == 404

    row = await task_row(db_conn, a)
    assert (row["status"], row["row_version"]) == ("ready", 1)


async def test_fsm_api_assignee_rule(
    fsm_client: httpx.AsyncClient, db_conn: AsyncConnection, jwt_keys: Any
) -> None:
    g = await make_graph(db_conn, ["a"])
    a = g["tasks"]["a"]
    planner = hdr(jwt_keys, ["planner"], PLANNER)
    r = await act(fsm_client, planner, a, "assign", 1, {"assign_to": str(OPERATOR)})
    assert r.status_code == 200
    r = await act(fsm_client, hdr(jwt_keys, ["operator"], OPERATOR2), a, "start", 2)
    assert r.status_code == 403
    viewer = hdr(jwt_keys, ["viewer"], OPERATOR2)
    g2 = await make_graph(db_conn, ["x"])
    r = await act(fsm_client, viewer, g2["tasks"]["x"], "start", 1)
    assert r.status_code == 403
    r = await act(fsm_client, hdr(jwt_keys, ["operator"], OPERATOR2), g2["tasks"]["x"], "start", 1)
    assert r.status_code == 200
    assert r.json()["task"]["assigned_to"] == str(OPERATOR2)


async def test_fsm_api_a_viewer_assigned_a_task_still_cannot_change_it(
    fsm_client: httpx.AsyncClient, db_conn: AsyncConnection, jwt_keys: Any
) -> None:
    """A viewer reads; being named as the assignee gives it no right to work the task."""
    g = await make_graph(db_conn, ["a"])
    a = g["tasks"]["a"]
    planner = hdr(jwt_keys, ["planner"], PLANNER)
    viewer = hdr(jwt_keys, ["viewer"], OPERATOR)
    r = await act(fsm_client, planner, a, "assign", 1, {"assign_to": str(OPERATOR)})
    assert r.status_code == 200
    r = await fsm_client.get(f"/api/v1/tasks/{a}", headers=viewer)
    assert r.status_code == 200
    assert r.json()["allowed_actions"] == []
    r = await act(fsm_client, viewer, a, "start", 2)
    assert r.status_code == 403, r.text
    assert r.json()["code"] == "ACTION_FORBIDDEN"
    assert "only read tasks" in r.json()["detail"]
    # Walk the task on with an admin; at each step the viewer is refused and nothing changes.
    r = await act(fsm_client, hdr(jwt_keys, ["admin"], PLANNER), a, "start", 2)
    assert r.status_code == 200, r.text
    for action, payload in (("pause", {"reason": "x"}), ("complete", None)):
        r = await act(fsm_client, viewer, a, action, 3, payload)
        assert r.status_code == 403, (action, r.text)
    r = await act(fsm_client, planner, a, "pause", 3, {"reason": "parts"})
    assert r.status_code == 200, r.text
    r = await act(fsm_client, viewer, a, "resume", 4)
    assert r.status_code == 403, r.text
    row = await task_row(db_conn, a)
    assert (row["status"], row["row_version"]) == ("on_hold", 4)


async def test_fsm_api_idempotent_replay_and_mismatch(
    fsm_client: httpx.AsyncClient, db_conn: AsyncConnection, jwt_keys: Any
) -> None:
    g = await make_graph(db_conn, ["a"])
    a = g["tasks"]["a"]
    planner = hdr(jwt_keys, ["planner"], PLANNER)
    first = await act(fsm_client, planner, a, "assign", 1, {"assign_to": str(OPERATOR)}, "c-1")
    again = await act(fsm_client, planner, a, "assign", 1, {"assign_to": str(OPERATOR)}, "c-1")
    assert again.status_code == first.status_code == 200
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert again.json() == first.json()
    other = await act(fsm_client, planner, a, "assign", 2, {"assign_to": str(OPERATOR2)}, "c-1")
    assert other.status_code == 409 and other.json()["code"] == "IDEMPOTENCY_KEY_REUSED"
    n = await db_conn.execute(
        text("SELECT count(*) FROM task.task_events WHERE task_id = :t"), {"t": a}
    )
    assert n.scalar_one() == 2  # create + one assign


async def test_fsm_api_qc_round_trip_and_reopen_reblocks(
    fsm_client: httpx.AsyncClient, db_conn: AsyncConnection, jwt_keys: Any
) -> None:
    g = await make_graph(
        db_conn, ["a", "b", "m"], [("a", "b"), ("a", "m")], qc=["a"], milestones=["m"]
    )
    a, b, m = g["tasks"]["a"], g["tasks"]["b"], g["tasks"]["m"]
    op = hdr(jwt_keys, ["operator"], OPERATOR)
    planner = hdr(jwt_keys, ["planner"], PLANNER)
    svc = {"Authorization": f"Bearer {jwt_keys.service_token('qc-svc')}"}
    assert (await act(fsm_client, op, a, "start", 1)).status_code == 200
    r = await act(fsm_client, op, a, "complete", 2)
    assert r.json()["to_status"] == "in_qc"
    url = f"/internal/tasks/{a}/system-transitions?org_id={ORG}"
    r = await fsm_client.post(
        url,
        headers=svc,
        json={
            "action": "qc_reject",
            "client_event_id": "i1",
            "payload": {"inspection_id": str(uuid.uuid4()), "reason": "bad"},
        },
    )
    assert r.status_code == 200, r.text
    assert r.json()["to_status"] == "rework"
    assert (await act(fsm_client, op, a, "start", 4)).status_code == 200
    assert (await act(fsm_client, op, a, "complete", 5)).status_code == 200
    qc = await db_conn.execute(
        text(
            "SELECT payload->>'round' FROM task.outbox WHERE type = 'task.submitted_for_qc' "
            "ORDER BY seq"
        )
    )
    assert [row[0] for row in qc] == ["1", "2"]
    r = await fsm_client.post(
        url,
        headers=svc,
        json={
            "action": "qc_accept",
            "client_event_id": "i2",
            "payload": {"inspection_id": str(uuid.uuid4())},
        },
    )
    assert r.json()["to_status"] == "done"
    assert (await task_row(db_conn, b))["status"] == "ready"
    assert (await task_row(db_conn, m))["status"] == "done"  # milestone completed itself

    r = await act(fsm_client, planner, a, "reopen", 7, {"reason": "scratch"})
    assert r.status_code == 200, r.text
    row_b = await task_row(db_conn, b)
    assert (row_b["status"], row_b["open_blockers"]) == ("blocked", 1)
    row_m = await task_row(db_conn, m)
    assert (row_m["status"], row_m["open_blockers"]) == ("done", 1)
    ev = await db_conn.execute(
        text("SELECT action FROM task.task_events WHERE task_id = :t ORDER BY id"), {"t": m}
    )
    assert [e[0] for e in ev] == ["create", "unblock", "auto_complete", "blocker_reopened"]


async def test_fsm_api_bulk_results_per_item(
    fsm_client: httpx.AsyncClient, db_conn: AsyncConnection, jwt_keys: Any
) -> None:
    g = await make_graph(db_conn, ["a", "b"])
    a, b = g["tasks"]["a"], g["tasks"]["b"]
    planner = hdr(jwt_keys, ["planner"], PLANNER)
    items = [
        {
            "task_id": str(a),
            "action": "assign",
            "payload": {"assign_to": str(OPERATOR)},
            "expected_row_version": 1,
        },
        {"task_id": str(b), "action": "assign", "payload": {}, "expected_row_version": 1},
        {"task_id": str(a), "action": "unassign", "expected_row_version": 2},
    ]
    r = await fsm_client.post(
        "/api/v1/tasks/transitions:bulk", json={"items": items}, headers=planner
    )
    assert r.status_code == 207, r.text
    results = r.json()["results"]
    assert [x["status"] for x in results] == [200, 422, 200]
    problem = results[1]["body"]
    assert (problem["code"], problem["status"], problem["field"]) == (
        "PAYLOAD_INVALID",
        422,
        "payload.assign_to",
    )
    assert problem["type"] == "/problems/payload-invalid"
    assert (await task_row(db_conn, a))["row_version"] == 3
    assert (await task_row(db_conn, b))["row_version"] == 1


async def test_signoff_approve_completes_project_and_reject_reopens(
    fsm_client: httpx.AsyncClient, db_conn: AsyncConnection, jwt_keys: Any
) -> None:
    g = await make_graph(db_conn, ["a"])
    a = g["tasks"]["a"]
    dl = g["deliverables"][0]
    op = hdr(jwt_keys, ["operator"], OPERATOR)
    approver = hdr(jwt_keys, ["approver"], APPROVER)
    await act(fsm_client, op, a, "start", 1)
    await act(fsm_client, op, a, "complete", 2)
    url = f"/api/v1/deliverables/{dl}/signoff"
    r = await fsm_client.post(
        url, headers=op, json={"decision": "approved", "expected_row_version": 2}
    )
    assert r.status_code == 403
    r = await fsm_client.post(
        url,
        headers=approver,
        json={
            "decision": "rejected",
            "comment": "scratch",
            "reopen_task_ids": [str(a)],
            "expected_row_version": 2,
        },
    )
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "in_progress"
    assert (await task_row(db_conn, a))["status"] == "rework"
    r = await fsm_client.post(
        url, headers=approver, json={"decision": "approved", "expected_row_version": 3}
    )
    assert (r.status_code, r.json()["code"]) == (409, "DELIVERABLE_NOT_READY")
    assert r.json()["current_status"] == "in_progress"
    await act(fsm_client, op, a, "start", 4)
    await act(fsm_client, op, a, "complete", 5)
    r = await fsm_client.post(
        url, headers=approver, json={"decision": "approved", "expected_row_version": 3}
    )
    assert r.status_code == 409 and r.json()["code"] == "VERSION_CONFLICT"
    assert (r.json()["current_row_version"], r.json()["current_status"]) == (
        4,
        "ready_for_signoff",
    )
    r = await fsm_client.post(
        url, headers=approver, json={"decision": "approved", "expected_row_version": 4}
    )
    assert r.status_code == 200, r.text
    assert r.json()["project_completed"] is True
    p = await db_conn.execute(
        text("SELECT status FROM task.projects WHERE id = :p"), {"p": g["project"]}
    )
    assert p.scalar_one() == "completed"
