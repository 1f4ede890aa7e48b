"""The inspections API: claim, results, defects, decision, with versions, replays and guards."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from qc_svc.db import outbox
from servicekit.testing.plugin import JwtKeys

INSPECTOR = uuid.UUID("00000000-0000-4000-8000-0000000000c1")
OTHER_INSPECTOR = uuid.UUID("00000000-0000-4000-8000-0000000000c2")
BASE = "/api/v1/inspections"


def as_inspector(jwt_keys: JwtKeys, user: uuid.UUID = INSPECTOR) -> dict[str, str]:
    return jwt_keys.headers(["inspector"], user_id=user)


def cmd(version: int, **body: Any) -> dict[str, Any]:
    return {"expected_row_version": version, "client_event_id": str(uuid.uuid4()), **body}


async def claimed(client: httpx.AsyncClient, jwt_keys: JwtKeys, inspection_id: uuid.UUID) -> dict:
    resp = await client.post(
        f"{BASE}/{inspection_id}/claim", json=cmd(1), headers=as_inspector(jwt_keys)
    )
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


async def events_of(session: AsyncSession, inspection_id: uuid.UUID) -> list[tuple[str, dict]]:
    rows = await session.execute(
        select(outbox.c.type, outbox.c.payload)
        .where(outbox.c.aggregate_id == str(inspection_id))
        .order_by(outbox.c.seq)
    )
    return [(r.type, r.payload) for r in rows]


async def test_reject_with_a_major_defect_publishes_failed_with_findings(
    client: httpx.AsyncClient, jwt_keys: JwtKeys, submit: Any, session: AsyncSession
) -> None:
    inspection = await submit()
    h = as_inspector(jwt_keys)
    body = await claimed(client, jwt_keys, inspection.id)
    assert body["status"] == "claimed"
    assert body["inspector_id"] == str(INSPECTOR)
    assert body["row_version"] == 2

    resp = await client.put(
        f"{BASE}/{inspection.id}/results",
        json=cmd(
            2,
            results=[
                {"code": "WELD-01", "result": "pass"},
                {"code": "WELD-02", "result": "fail", "note": "porosity"},
            ],
        ),
        headers=h,
    )
    assert resp.status_code == 200, resp.text
    assert resp.headers["ETag"] == '"3"'
    items = {i["code"]: i for i in resp.json()["checklist"]}
    assert items["WELD-02"] == {
        "code": "WELD-02",
        "text": "No porosity",
        "required": True,
        "result": "fail",
        "note": "porosity",
    }
    assert items["PAINT-01"]["result"] is None

    resp = await client.post(
        f"{BASE}/{inspection.id}/defects",
        json=cmd(3, code="POROSITY", severity="major", description="joint 3"),
        headers=h,
    )
    assert resp.status_code == 201, resp.text
    assert [d["code"] for d in resp.json()["defects"]] == ["POROSITY"]

    upstream = uuid.uuid4()
    resp = await client.post(
        f"{BASE}/{inspection.id}/decision",
        json=cmd(4, decision="reject", reason="reweld joint 3", rework_from_task_id=str(upstream)),
        headers=h,
    )
    assert resp.status_code == 200, resp.text
    decided = resp.json()
    assert decided["status"] == "failed"
    assert decided["decision"] == "reject"
    assert decided["allowed_actions"] == []
    assert decided["decided_at"] is not None

    events = await events_of(session, inspection.id)
    assert [t for t, _ in events] == ["qc.inspection.created", "qc.inspection.failed"]
    failed = events[1][1]
    assert failed["task_id"] == str(inspection.task_id)
    assert failed["reason"] == "reweld joint 3"
    assert failed["failed_items"] == ["WELD-02"]
    assert failed["defects"] == [
        {"code": "POROSITY", "severity": "major", "description": "joint 3"}
    ]
    assert failed["rework_from_task_id"] == str(upstream)
    assert failed["inspector_id"] == str(INSPECTOR)


async def test_accept_after_all_required_items_pass_publishes_passed(
    client: httpx.AsyncClient, jwt_keys: JwtKeys, submit: Any, session: AsyncSession
) -> None:
    inspection = await submit(round=2)
    h = as_inspector(jwt_keys)
    await claimed(client, jwt_keys, inspection.id)
    resp = await client.put(
        f"{BASE}/{inspection.id}/results",
        json=cmd(
            2, results=[{"code": "WELD-01", "result": "pass"}, {"code": "WELD-02", "result": "na"}]
        ),
        headers=h,
    )
    assert resp.status_code == 200, resp.text
    resp = await client.post(
        f"{BASE}/{inspection.id}/decision", json=cmd(3, decision="accept"), headers=h
    )
    assert resp.status_code == 200, resp.text
    assert resp.json()["status"] == "passed"
    events = await events_of(session, inspection.id)
    assert [t for t, _ in events] == ["qc.inspection.created", "qc.inspection.passed"]
    assert events[1][1]["round"] == 2


async def test_accept_is_refused_naming_unanswered_failed_items_and_critical_defects(
    client: httpx.AsyncClient, jwt_keys: JwtKeys, submit: Any, session: AsyncSession
) -> None:
    inspection = await submit()
    h = as_inspector(jwt_keys)
    await claimed(client, jwt_keys, inspection.id)
    await client.put(
        f"{BASE}/{inspection.id}/results",
        json=cmd(2, results=[{"code": "WELD-02", "result": "fail"}]),
        headers=h,
    )
    await client.post(
        f"{BASE}/{inspection.id}/defects",
        json=cmd(3, code="CRACK", severity="critical", description="through crack"),
        headers=h,
    )
    resp = await client.post(
        f"{BASE}/{inspection.id}/decision", json=cmd(4, decision="accept"), headers=h
    )
    # The inspection's state forbids the accept: 409, like every refusal of "not now".
    assert resp.status_code == 409
    problem = resp.json()
    assert resp.headers["content-type"] == "application/problem+json"
    assert problem["code"] == "ACCEPT_BLOCKED"
    assert problem["unanswered_items"] == ["WELD-01"]
    assert problem["failed_items"] == ["WELD-02"]
    assert problem["critical_defects"] == ["CRACK"]
    assert "WELD-01" in problem["detail"]
    # nothing changed
    again = (await client.get(f"{BASE}/{inspection.id}", headers=h)).json()
    assert (again["status"], again["row_version"]) == ("claimed", 4)
    assert [t for t, _ in await events_of(session, inspection.id)] == ["qc.inspection.created"]


async def test_reject_needs_a_reason_and_a_finding(
    client: httpx.AsyncClient, jwt_keys: JwtKeys, submit: Any
) -> None:
    inspection = await submit()
    h = as_inspector(jwt_keys)
    await claimed(client, jwt_keys, inspection.id)
    url = f"{BASE}/{inspection.id}/decision"
    resp = await client.post(url, json=cmd(2, decision="reject", reason="bad"), headers=h)
    assert (resp.status_code, resp.json()["code"]) == (409, "REJECT_WITHOUT_FINDINGS")
    await client.put(
        f"{BASE}/{inspection.id}/results",
        json=cmd(2, results=[{"code": "PAINT-01", "result": "fail"}]),
        headers=h,
    )
    resp = await client.post(url, json=cmd(3, decision="reject", reason="  "), headers=h)
    assert (resp.status_code, resp.json()["code"]) == (422, "REJECT_REASON_REQUIRED")
    resp = await client.post(
        url,
        json=cmd(3, decision="reject", reason="x", rework_from_task_id=str(inspection.task_id)),
        headers=h,
    )
    assert (resp.status_code, resp.json()["code"]) == (422, "REWORK_TASK_IS_INSPECTED_TASK")
    resp = await client.post(url, json=cmd(3, decision="reject", reason="runs"), headers=h)
    assert resp.status_code == 200, resp.text
    assert resp.json()["status"] == "failed"


async def test_stale_version_is_409_with_the_current_version_and_changes_nothing(
    client: httpx.AsyncClient, jwt_keys: JwtKeys, submit: Any
) -> None:
    inspection = await submit()
    h = as_inspector(jwt_keys)
    await claimed(client, jwt_keys, inspection.id)
    resp = await client.put(
        f"{BASE}/{inspection.id}/results",
        json=cmd(1, results=[{"code": "WELD-01", "result": "pass"}]),
        headers=h,
    )
    assert resp.status_code == 409
    problem = resp.json()
    assert problem["code"] == "VERSION_CONFLICT"
    assert (problem["current_row_version"], problem["current_status"]) == (2, "claimed")
    body = (await client.get(f"{BASE}/{inspection.id}", headers=h)).json()
    assert body["checklist"][0]["result"] is None


async def test_if_match_header_stands_in_for_expected_row_version(
    client: httpx.AsyncClient, jwt_keys: JwtKeys, submit: Any
) -> None:
    inspection = await submit()
    h = as_inspector(jwt_keys)
    got = await client.get(f"{BASE}/{inspection.id}", headers=h)
    etag = got.headers["ETag"]
    resp = await client.post(
        f"{BASE}/{inspection.id}/claim",
        json={"client_event_id": str(uuid.uuid4())},
        headers={**h, "If-Match": etag},
    )
    assert resp.status_code == 200, resp.text
    assert resp.headers["ETag"] == '"2"'
    defect = {"code": "X", "severity": "minor", "description": "d"}
    resp = await client.post(
        f"{BASE}/{inspection.id}/defects",
        json={**defect, "client_event_id": str(uuid.uuid4()), "expected_row_version": 2},
        headers={**h, "If-Match": '"3"'},
    )
    assert (resp.status_code, resp.json()["code"]) == (400, "IF_MATCH_MISMATCH")
    resp = await client.post(
        f"{BASE}/{inspection.id}/defects",
        json={**defect, "client_event_id": str(uuid.uuid4())},
        headers={**h, "If-Match": "two"},
    )
    assert (resp.status_code, resp.json()["code"]) == (400, "IF_MATCH_INVALID")
    resp = await client.post(
        f"{BASE}/{inspection.id}/defects",
        json={
            "client_event_id": str(uuid.uuid4()),
            "code": "X",
            "severity": "minor",
            "description": "d",
        },
        headers=h,
    )
    assert (resp.status_code, resp.json()["code"]) == (428, "ROW_VERSION_REQUIRED")


async def test_same_client_event_id_replays_the_first_answer_and_does_nothing_else(
    client: httpx.AsyncClient, jwt_keys: JwtKeys, submit: Any, session: AsyncSession
) -> None:
    inspection = await submit()
    h = as_inspector(jwt_keys)
    await claimed(client, jwt_keys, inspection.id)
    defect = cmd(2, code="DENT", severity="minor", description="small dent")
    first = await client.post(f"{BASE}/{inspection.id}/defects", json=defect, headers=h)
    second = await client.post(f"{BASE}/{inspection.id}/defects", json=defect, headers=h)
    assert first.status_code == second.status_code == 201
    assert second.json() == first.json()
    assert second.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    current = (await client.get(f"{BASE}/{inspection.id}", headers=h)).json()
    assert len(current["defects"]) == 1
    assert current["row_version"] == 3

    decision = cmd(3, decision="reject", reason="dent")
    one = await client.post(f"{BASE}/{inspection.id}/decision", json=decision, headers=h)
    two = await client.post(f"{BASE}/{inspection.id}/decision", json=decision, headers=h)
    assert (one.status_code, two.status_code) == (200, 200)
    assert two.headers["Idempotent-Replayed"] == "true"
    assert [t for t, _ in await events_of(session, inspection.id)] == [
        "qc.inspection.created",
        "qc.inspection.failed",
    ]


async def test_same_client_event_id_with_other_arguments_is_409(
    client: httpx.AsyncClient, jwt_keys: JwtKeys, submit: Any
) -> None:
    inspection = await submit()
    h = as_inspector(jwt_keys)
    await claimed(client, jwt_keys, inspection.id)
    defect = cmd(2, code="DENT", severity="minor", description="small dent")
    assert (await client.post(f"{BASE}/{inspection.id}/defects", json=defect, headers=h)).is_success
    resp = await client.post(
        f"{BASE}/{inspection.id}/defects", json={**defect, "severity": "major"}, headers=h
    )
    assert resp.status_code == 409
    assert resp.json()["code"] == "IDEMPOTENCY_KEY_REUSED"
    assert resp.json()["original_action"] == "add_defect"
    assert resp.json()["client_event_id"] == defect["client_event_id"]
    # Another command (or another inspection) with that id is another request too.
    other = await client.post(
        f"{BASE}/{inspection.id}/claim",
        json=cmd(3, client_event_id=defect["client_event_id"]),
        headers=h,
    )
    assert (other.status_code, other.json()["code"]) == (409, "IDEMPOTENCY_KEY_REUSED")
    assert other.json()["original_inspection_id"] == str(inspection.id)


async def test_only_the_claiming_inspector_may_record_and_a_claimed_one_cannot_be_taken(
    client: httpx.AsyncClient, jwt_keys: JwtKeys, submit: Any
) -> None:
    inspection = await submit()
    await claimed(client, jwt_keys, inspection.id)
    other = as_inspector(jwt_keys, OTHER_INSPECTOR)
    resp = await client.put(
        f"{BASE}/{inspection.id}/results",
        json=cmd(2, results=[{"code": "WELD-01", "result": "pass"}]),
        headers=other,
    )
    assert (resp.status_code, resp.json()["code"]) == (403, "NOT_THE_INSPECTOR")
    resp = await client.post(f"{BASE}/{inspection.id}/claim", json=cmd(2), headers=other)
    assert (resp.status_code, resp.json()["code"]) == (409, "INSPECTION_STATUS_CONFLICT")
    assert resp.json()["current_status"] == "claimed"


async def test_results_are_checked_against_the_checklist(
    client: httpx.AsyncClient, jwt_keys: JwtKeys, submit: Any
) -> None:
    inspection = await submit()
    h = as_inspector(jwt_keys)
    await claimed(client, jwt_keys, inspection.id)
    url = f"{BASE}/{inspection.id}/results"
    resp = await client.put(
        url, json=cmd(2, results=[{"code": "NOPE", "result": "pass"}]), headers=h
    )
    assert (resp.status_code, resp.json()["code"]) == (422, "CHECKLIST_ITEM_UNKNOWN")
    assert resp.json()["unknown_items"] == ["NOPE"]
    resp = await client.put(
        url,
        json=cmd(
            2,
            results=[{"code": "WELD-01", "result": "pass"}, {"code": "WELD-01", "result": "fail"}],
        ),
        headers=h,
    )
    assert (resp.status_code, resp.json()["code"]) == (422, "CHECKLIST_ITEM_REPEATED")
    resp = await client.put(
        url, json=cmd(2, results=[{"code": "WELD-01", "result": "maybe"}]), headers=h
    )
    assert resp.status_code == 422
    assert resp.json()["code"] == "VALIDATION_FAILED"
    assert resp.json()["errors"][0]["field"] == "results[0].result"
    resp = await client.put(url, json={**cmd(2, results=[]), "surprise": 1}, headers=h)
    fields = {e["field"] for e in resp.json()["errors"]}
    assert {"results", "surprise"} <= fields


async def test_a_defect_can_be_withdrawn(
    client: httpx.AsyncClient, jwt_keys: JwtKeys, submit: Any
) -> None:
    inspection = await submit()
    h = as_inspector(jwt_keys)
    await claimed(client, jwt_keys, inspection.id)
    added = await client.post(
        f"{BASE}/{inspection.id}/defects",
        json=cmd(2, code="CRACK", severity="critical", description="oops, wrong part"),
        headers=h,
    )
    defect_id = added.json()["defects"][0]["id"]
    resp = await client.delete(
        f"{BASE}/{inspection.id}/defects/{defect_id}",
        params={"client_event_id": str(uuid.uuid4()), "expected_row_version": 3},
        headers=h,
    )
    assert resp.status_code == 200, resp.text
    assert resp.json()["defects"] == []
    resp = await client.delete(
        f"{BASE}/{inspection.id}/defects/{defect_id}",
        params={"client_event_id": str(uuid.uuid4())},
        headers={**h, "If-Match": '"4"'},
    )
    assert (resp.status_code, resp.json()["code"]) == (404, "DEFECT_NOT_FOUND")


async def test_roles_and_orgs(client: httpx.AsyncClient, jwt_keys: JwtKeys, submit: Any) -> None:
    inspection = await submit()
    url = f"{BASE}/{inspection.id}"
    for role in ("planner", "viewer", "inspector", "admin"):
        assert (await client.get(url, headers=jwt_keys.headers([role]))).status_code == 200
    resp = await client.get(url, headers=jwt_keys.headers(["operator"]))
    assert (resp.status_code, resp.json()["code"]) == (403, "ROLE_REQUIRED")
    resp = await client.post(f"{url}/claim", json=cmd(1), headers=jwt_keys.headers(["planner"]))
    assert (resp.status_code, resp.json()["code"]) == (403, "ROLE_REQUIRED")
    stranger = jwt_keys.headers(["inspector"], org_id=uuid.uuid4())
    resp = await client.get(url, headers=stranger)
    assert (resp.status_code, resp.json()["code"]) == (404, "INSPECTION_NOT_FOUND")
    resp = await client.post(f"{url}/claim", json=cmd(1), headers=stranger)
    assert resp.status_code == 404
    page = (await client.get(BASE, headers=stranger)).json()
    assert page["items"] == []


async def test_list_filters_and_cursor_pagination(
    client: httpx.AsyncClient, jwt_keys: JwtKeys, submit: Any
) -> None:
    project = uuid.uuid4()
    task = uuid.uuid4()
    made = [await submit(project_id=project, task_id=task, round=n) for n in (1, 2, 3)]
    made.append(await submit(project_id=project))
    await submit()  # another project
    await claimed(client, jwt_keys, made[3].id)
    h = jwt_keys.headers(["viewer"])

    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"project_id": str(project), "limit": 3}
        if cursor:
            params["cursor"] = cursor
        page = (await client.get(BASE, params=params, headers=h)).json()
        seen += [i["id"] for i in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert sorted(seen) == sorted(str(i.id) for i in made)
    assert len(seen) == len(set(seen)) == 4

    by_task = (await client.get(BASE, params={"task_id": str(task), "round": 2}, headers=h)).json()
    assert [i["id"] for i in by_task["items"]] == [str(made[1].id)]
    pending = (
        await client.get(BASE, params={"project_id": str(project), "status": "pending"}, headers=h)
    ).json()
    assert {i["id"] for i in pending["items"]} == {str(i.id) for i in made[:3]}
    mine = (
        await client.get(BASE, params={"inspector": "me"}, headers=as_inspector(jwt_keys))
    ).json()
    assert [i["id"] for i in mine["items"]] == [str(made[3].id)]
    by_id = (await client.get(BASE, params={"inspector": str(INSPECTOR)}, headers=h)).json()
    assert [i["id"] for i in by_id["items"]] == [str(made[3].id)]

    bad = await client.get(BASE, params={"inspector": "someone"}, headers=h)
    assert (bad.status_code, bad.json()["errors"][0]["field"]) == (422, "inspector")
    bad = await client.get(BASE, params={"cursor": "zzz"}, headers=h)
    assert (bad.status_code, bad.json()["code"]) == (400, "CURSOR_INVALID")
    bad = await client.get(BASE, params={"status": "lost"}, headers=h)
    assert bad.status_code == 422


async def test_a_stale_if_match_is_412_and_a_weak_tag_never_matches(
    client: httpx.AsyncClient, jwt_keys: JwtKeys, submit: Any
) -> None:
    inspection = await submit()
    h = as_inspector(jwt_keys)
    await claimed(client, jwt_keys, inspection.id)
    url = f"{BASE}/{inspection.id}/results"
    results = {"results": [{"code": "WELD-01", "result": "pass"}]}
    for tag in ('"1"', 'W/"2"'):
        resp = await client.put(
            url,
            json={**results, "client_event_id": str(uuid.uuid4())},
            headers={**h, "If-Match": tag},
        )
        assert (resp.status_code, resp.json()["code"]) == (412, "VERSION_CONFLICT")
        assert (resp.json()["current_row_version"], resp.json()["current_status"]) == (
            2,
            "claimed",
        )
        assert resp.headers["ETag"] == '"2"'
    body = (await client.get(f"{BASE}/{inspection.id}", headers=h)).json()
    assert (body["row_version"], body["checklist"][0]["result"]) == (2, None)


async def test_an_idempotency_key_header_stands_in_for_client_event_id(
    client: httpx.AsyncClient, jwt_keys: JwtKeys, submit: Any
) -> None:
    inspection = await submit()
    h = as_inspector(jwt_keys)
    await claimed(client, jwt_keys, inspection.id)
    url = f"{BASE}/{inspection.id}/defects"
    defect = {"code": "DENT", "severity": "minor", "description": "d", "expected_row_version": 2}
    keyed = {**h, "Idempotency-Key": "dent-1"}
    first = await client.post(url, json=defect, headers=keyed)
    again = await client.post(url, json=defect, headers=keyed)
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.content == first.content
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.headers["ETag"] == first.headers["ETag"] == '"3"'
    reused = await client.post(url, json={**defect, "code": "DING"}, headers=keyed)
    assert (reused.status_code, reused.json()["code"]) == (409, "IDEMPOTENCY_KEY_REUSED")
    assert reused.json()["idempotency_key"] == "dent-1"

    both = await client.post(
        url,
        json={**defect, "expected_row_version": 3, "client_event_id": str(uuid.uuid4())},
        headers={**h, "Idempotency-Key": "dent-2"},
    )
    assert (both.status_code, both.json()["code"]) == (400, "IDEMPOTENCY_KEY_MISMATCH")
    neither = await client.post(url, json={**defect, "expected_row_version": 3}, headers=h)
    assert (neither.status_code, neither.json()["code"]) == (422, "VALIDATION_FAILED")
    assert neither.json()["errors"][0]["field"] == "client_event_id"
    current = (await client.get(f"{BASE}/{inspection.id}", headers=h)).json()
    assert (current["row_version"], len(current["defects"])) == (3, 1)


async def test_events_carry_their_dataschema(
    client: httpx.AsyncClient, jwt_keys: JwtKeys, submit: Any, session: AsyncSession
) -> None:
    inspection = await submit()
    h = as_inspector(jwt_keys)
    await claimed(client, jwt_keys, inspection.id)
    await client.put(
        f"{BASE}/{inspection.id}/results",
        json=cmd(
            2,
            results=[{"code": "WELD-01", "result": "pass"}, {"code": "WELD-02", "result": "pass"}],
        ),
        headers=h,
    )
    resp = await client.post(
        f"{BASE}/{inspection.id}/decision", json=cmd(3, decision="accept"), headers=h
    )
    assert resp.status_code == 200, resp.text
    rows = await session.execute(
        select(outbox.c.type, outbox.c.headers)
        .where(outbox.c.aggregate_id == str(inspection.id))
        .order_by(outbox.c.seq)
    )
    assert [(r.type, r.headers["dataschema"]) for r in rows] == [
        ("qc.inspection.created", "urn:blueprint:event:qc.inspection.created:v1"),
        ("qc.inspection.passed", "urn:blueprint:event:qc.inspection.passed:v1"),
    ]
