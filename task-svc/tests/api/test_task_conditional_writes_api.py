"""task-svc's writes on servicekit's seams: an `Idempotency-Key` header on transitions (the same
rules as client_event_id), a stale `If-Match` answered 412 on transitions and sign-offs, and a
sign-off without any row version answered 428."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from ..support.taskgraph import APPROVER, OPERATOR, OPERATOR2, ORG, PLANNER, make_graph, task_row
from ..support.transitions import post_action


def hdr(jwt_keys: Any, roles: list[str], user: uuid.UUID) -> dict[str, str]:
    return jwt_keys.headers(roles, org_id=ORG, user_id=user)


async def transition(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    task_id: uuid.UUID,
    body: dict[str, Any],
    **extra: str,
) -> httpx.Response:
    return await client.post(
        f"/api/v1/tasks/{task_id}/transitions", json=body, headers={**headers, **extra}
    )


async def events_of(db_conn: AsyncConnection, task_id: uuid.UUID) -> list[tuple[str, Any]]:
    rows = await db_conn.execute(
        text(
            "SELECT action, client_event_id FROM task.task_events WHERE task_id = :t "
            "ORDER BY row_version"
        ),
        {"t": task_id},
    )
    return [(r[0], r[1]) for r in rows]


async def test_an_idempotency_key_replays_the_first_answer_and_refuses_another_request(
    fsm_client: httpx.AsyncClient, db_conn: AsyncConnection, jwt_keys: Any
) -> None:
    a = (await make_graph(db_conn, ["a"]))["tasks"]["a"]
    planner = hdr(jwt_keys, ["planner"], PLANNER)
    assign = {"action": "assign", "payload": {"assign_to": str(OPERATOR)}}
    first = await transition(
        fsm_client, planner, a, {**assign, "expected_row_version": 1}, **{"Idempotency-Key": "k1"}
    )
    assert first.status_code == 200, first.text
    assert "Idempotent-Replayed" not in first.headers
    # A retry after the first was applied replays it, even with the version it read before.
    again = await transition(
        fsm_client, planner, a, {**assign, "expected_row_version": 1}, **{"Idempotency-Key": "k1"}
    )
    assert again.status_code == 200, again.text
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    # The header and client_event_id are one key: the body's spelling replays the same answer.
    body_key = await post_action(
        fsm_client, planner, a, "assign", 1, {"assign_to": str(OPERATOR)}, "k1"
    )
    assert body_key.headers["Idempotent-Replayed"] == "true"
    other = await transition(
        fsm_client,
        planner,
        a,
        {"action": "assign", "payload": {"assign_to": str(OPERATOR2)}, "expected_row_version": 2},
        **{"Idempotency-Key": "k1"},
    )
    assert (other.status_code, other.json()["code"]) == (409, "IDEMPOTENCY_KEY_REUSED")
    assert other.json()["idempotency_key"] == "k1"
    assert other.json()["original_action"] == "assign"
    assert await events_of(db_conn, a) == [("create", None), ("assign", "k1")]
    row = await task_row(db_conn, a)
    assert (row["assigned_to"], row["row_version"]) == (OPERATOR, 2)


async def test_an_idempotency_key_that_disagrees_with_client_event_id_is_refused(
    fsm_client: httpx.AsyncClient, db_conn: AsyncConnection, jwt_keys: Any
) -> None:
    a = (await make_graph(db_conn, ["a"]))["tasks"]["a"]
    planner = hdr(jwt_keys, ["planner"], PLANNER)
    body = {"action": "start", "expected_row_version": 1, "client_event_id": "c-1"}
    r = await transition(fsm_client, planner, a, body, **{"Idempotency-Key": "k-2"})
    assert (r.status_code, r.json()["code"]) == (400, "IDEMPOTENCY_KEY_MISMATCH")
    assert {e["field"] for e in r.json()["errors"]} == {"Idempotency-Key", "client_event_id"}
    long = await transition(
        fsm_client, planner, a, {"action": "start", "expected_row_version": 1},
        **{"Idempotency-Key": "x" * 201},
    )  # fmt: skip
    assert (long.status_code, long.json()["code"]) == (400, "IDEMPOTENCY_KEY_INVALID")
    assert (await task_row(db_conn, a))["row_version"] == 1


async def test_a_stale_if_match_on_a_transition_is_412_and_a_stale_body_version_409(
    fsm_client: httpx.AsyncClient, db_conn: AsyncConnection, jwt_keys: Any
) -> None:
    a = (await make_graph(db_conn, ["a"]))["tasks"]["a"]
    planner = hdr(jwt_keys, ["planner"], PLANNER)
    start = {"action": "start"}
    stale = await transition(fsm_client, planner, a, start, **{"If-Match": '"7"'})
    assert (stale.status_code, stale.json()["code"]) == (412, "VERSION_CONFLICT")
    assert (stale.json()["current_row_version"], stale.json()["current_status"]) == (1, "ready")
    assert stale.headers["ETag"] == '"1"'
    weak = await transition(fsm_client, planner, a, start, **{"If-Match": 'W/"1"'})
    assert weak.status_code == 412 and "weak" in weak.json()["detail"]
    body = await transition(fsm_client, planner, a, {**start, "expected_row_version": 7})
    assert (body.status_code, body.json()["code"]) == (409, "VERSION_CONFLICT")
    assert (await task_row(db_conn, a))["row_version"] == 1
    ok = await transition(fsm_client, planner, a, start, **{"If-Match": '"1"'})
    assert ok.status_code == 200, ok.text
    assert ok.headers["ETag"] == '"2"'


async def _ready_for_signoff(
    fsm_client: httpx.AsyncClient, db_conn: AsyncConnection, jwt_keys: Any
) -> str:
    g = await make_graph(db_conn, ["a"])
    op = hdr(jwt_keys, ["operator"], OPERATOR)
    assert (await post_action(fsm_client, op, g["tasks"]["a"], "start", 1)).status_code == 200
    assert (await post_action(fsm_client, op, g["tasks"]["a"], "complete", 2)).status_code == 200
    return f"/api/v1/deliverables/{g['deliverables'][0]}/signoff"


async def test_a_signoff_needs_a_row_version_and_answers_a_stale_if_match_with_412(
    fsm_client: httpx.AsyncClient, db_conn: AsyncConnection, jwt_keys: Any
) -> None:
    url = await _ready_for_signoff(fsm_client, db_conn, jwt_keys)
    approver = hdr(jwt_keys, ["approver"], APPROVER)
    approve = {"decision": "approved"}
    missing = await fsm_client.post(url, headers=approver, json=approve)
    assert (missing.status_code, missing.json()["code"]) == (428, "ROW_VERSION_REQUIRED")
    assert missing.json()["errors"][0]["field"] == "expected_row_version"
    stale = await fsm_client.post(url, headers={**approver, "If-Match": '"1"'}, json=approve)
    assert (stale.status_code, stale.json()["code"]) == (412, "VERSION_CONFLICT")
    assert (stale.json()["current_row_version"], stale.json()["current_status"]) == (
        2,
        "ready_for_signoff",
    )
    body = await fsm_client.post(url, headers=approver, json={**approve, "expected_row_version": 1})
    assert body.status_code == 409 and body.json()["code"] == "VERSION_CONFLICT"
    both = await fsm_client.post(
        url, headers={**approver, "If-Match": '"2"'}, json={**approve, "expected_row_version": 1}
    )
    assert (both.status_code, both.json()["code"]) == (400, "IF_MATCH_MISMATCH")
    signed = await fsm_client.post(url, headers={**approver, "If-Match": '"2"'}, json=approve)
    assert signed.status_code == 200, signed.text
    assert signed.json()["status"] == "signed_off"


async def test_a_signoff_is_for_approvers_only(
    fsm_client: httpx.AsyncClient, db_conn: AsyncConnection, jwt_keys: Any
) -> None:
    url = await _ready_for_signoff(fsm_client, db_conn, jwt_keys)
    planner = hdr(jwt_keys, ["planner"], PLANNER)
    r = await fsm_client.post(url, headers=planner, json={"decision": "approved"})
    assert (r.status_code, r.json()["code"]) == (403, "ROLE_REQUIRED")
    unauthenticated = await fsm_client.post(url, json={"decision": "approved"})
    assert unauthenticated.status_code == 401
