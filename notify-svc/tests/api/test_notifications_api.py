"""/api/v1/notifications: contacts (your own, or anyone's as admin or planner), rules with their
defaults, settings, and ad-hoc jobs; every bad input is a precise problem naming the field."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from servicekit.testing.plugin import DEFAULT_USER, JwtKeys

BASE = "/api/v1/notifications"


def planner(jwt_keys: JwtKeys, **kw: Any) -> dict[str, str]:
    return jwt_keys.headers(["planner"], **kw)


def field_errors(resp: httpx.Response) -> dict[str, str]:
    return {e["field"]: e["message"] for e in resp.json().get("errors", [])}


async def test_a_user_sets_their_own_contact_and_only_managers_reach_others(
    client: httpx.AsyncClient, jwt_keys: JwtKeys
) -> None:
    me = jwt_keys.headers(["operator"])
    body = {"email": "ada@example.com", "name": "Ada", "locale": "de"}
    put = await client.put(f"{BASE}/contacts/{DEFAULT_USER}", json=body, headers=me)
    assert put.status_code == 200, put.text
    assert put.json()["email"] == "ada@example.com" and put.json()["quiet"] is False
    got = await client.get(f"{BASE}/contacts/{DEFAULT_USER}", headers=me)
    assert got.json()["locale"] == "de"
    someone = uuid.uuid4()
    refused = await client.put(f"{BASE}/contacts/{someone}", json=body, headers=me)
    assert refused.status_code == 403 and refused.json()["code"] == "ROLE_REQUIRED"
    by_planner = await client.put(
        f"{BASE}/contacts/{someone}", json={**body, "quiet": True}, headers=planner(jwt_keys)
    )
    assert by_planner.status_code == 200 and by_planner.json()["quiet"] is True
    other_org = await client.get(
        f"{BASE}/contacts/{someone}", headers=planner(jwt_keys, org_id=uuid.uuid4())
    )
    assert other_org.status_code == 404 and other_org.json()["code"] == "CONTACT_NOT_FOUND"


@pytest.mark.parametrize(
    ("email", "reason"),
    [
        ("not-an-address", "needs a name, '@' and a domain"),
        ("ada@localhost", "the domain must look like example.com"),
        ("ada@example.com\r\nBcc: x@example.com", "no spaces, line breaks"),
        ("a..b@example.com", "two dots in a row"),
    ],
)
async def test_an_invalid_address_names_the_field_and_the_reason(
    client: httpx.AsyncClient, jwt_keys: JwtKeys, email: str, reason: str
) -> None:
    resp = await client.put(
        f"{BASE}/contacts/{DEFAULT_USER}", json={"email": email}, headers=planner(jwt_keys)
    )
    assert resp.status_code == 422, resp.text
    assert resp.json()["code"] == "VALIDATION_FAILED"
    assert reason in field_errors(resp)["email"]


async def test_nul_characters_and_oversized_fields_are_refused_by_field(
    client: httpx.AsyncClient, jwt_keys: JwtKeys
) -> None:
    nul = await client.put(
        f"{BASE}/contacts/{DEFAULT_USER}",
        json={"email": "ada@example.com", "name": "A\u0000da"},
        headers=planner(jwt_keys),
    )
    assert nul.status_code == 422 and "name" in field_errors(nul)
    big = await client.post(
        f"{BASE}/email",
        json={"to": "ops@example.com", "subject": "s", "body": "x" * 100_001},
        headers=planner(jwt_keys),
    )
    assert big.status_code == 422 and "body" in field_errors(big)


async def test_rules_start_from_the_defaults_and_refuse_unknown_event_types(
    client: httpx.AsyncClient, jwt_keys: JwtKeys
) -> None:
    headers = planner(jwt_keys)
    rules = (await client.get(f"{BASE}/rules", headers=headers)).json()["items"]
    by_type = {r["event_type"]: r for r in rules}
    assert set(by_type) == {
        "task.assigned", "qc.inspection.failed", "deliverable.ready_for_signoff",
        "deadline.reminder", "deadline.overdue",
    }  # fmt: skip
    assert by_type["task.assigned"]["recipients"] == [{"kind": "assignee", "address": None}]
    assert by_type["deliverable.ready_for_signoff"]["recipients"][0]["kind"] == "approvers"
    assert all(r["is_default"] and r["enabled"] for r in rules)

    unknown = await client.put(
        f"{BASE}/rules",
        json={"rules": [{"event_type": "task.assigned"}, {"event_type": "task.finished"}]},
        headers=headers,
    )
    assert unknown.status_code == 422 and unknown.json()["code"] == "EVENT_TYPE_UNKNOWN"
    assert "task.finished" in field_errors(unknown)["rules[1].event_type"]
    bad_address = await client.put(
        f"{BASE}/rules",
        json={"rules": [{"event_type": "qc.inspection.failed",
                         "recipients": [{"kind": "address", "address": "qa@"}]}]},
        headers=headers,
    )  # fmt: skip
    assert bad_address.status_code == 422
    assert "rules[0].recipients[0]" in field_errors(bad_address)

    changed = await client.put(
        f"{BASE}/rules",
        json={"rules": [{"event_type": "qc.inspection.failed",
                         "recipients": [{"kind": "assignee"},
                                        {"kind": "address", "address": "qa@example.com"}]},
                        {"event_type": "deadline.overdue", "enabled": False}]},
        headers=headers,
    )  # fmt: skip
    assert changed.status_code == 200, changed.text
    after = {r["event_type"]: r for r in changed.json()["items"]}
    assert after["qc.inspection.failed"]["recipients"][1]["address"] == "qa@example.com"
    assert after["deadline.overdue"] == {**after["deadline.overdue"], "enabled": False,
                                         "is_default": False}  # fmt: skip
    assert after["task.assigned"]["is_default"] is True
    operator = await client.get(f"{BASE}/rules", headers=jwt_keys.headers(["operator"]))
    assert operator.status_code == 403


async def test_settings_default_to_a_60_minute_lead_and_hold_the_approvers_address(
    client: httpx.AsyncClient, jwt_keys: JwtKeys
) -> None:
    headers = planner(jwt_keys)
    first = (await client.get(f"{BASE}/settings", headers=headers)).json()
    assert (first["reminder_lead_minutes"], first["webhook_secret_set"]) == (60, False)
    put = await client.put(
        f"{BASE}/settings",
        json={"reminder_lead_minutes": 120, "approvers_email": "approvers@example.com"},
        headers=headers,
    )
    assert put.status_code == 200 and put.json()["reminder_lead_minutes"] == 120
    zero = await client.put(f"{BASE}/settings", json={"reminder_lead_minutes": 0}, headers=headers)
    assert zero.status_code == 422 and "reminder_lead_minutes" in field_errors(zero)
    secret = await client.post(f"{BASE}/settings/webhook-secret", headers=headers)
    assert secret.json()["secret"].startswith("whsec_")
    assert (await client.get(f"{BASE}/settings", headers=headers)).json()["webhook_secret_set"]


async def test_an_email_job_is_accepted_once_per_idempotency_key(
    client: httpx.AsyncClient, jwt_keys: JwtKeys
) -> None:
    headers = {**planner(jwt_keys), "Idempotency-Key": "shift-note-1"}
    body = {"to": "ops@example.com", "subject": "Line 2", "body": "Stops at 14:00."}
    first = await client.post(f"{BASE}/email", json=body, headers=headers)
    assert first.status_code == 202, first.text
    again = await client.post(f"{BASE}/email", json=body, headers=headers)
    assert again.status_code == 202 and again.headers["idempotent-replayed"] == "true"
    job_id = first.json()["job_id"]
    assert again.json() == first.json() == {"job_id": job_id, "status": "queued"}
    other = await client.post(f"{BASE}/email", json={**body, "body": "x"}, headers=headers)
    assert other.status_code == 409 and other.json()["code"] == "IDEMPOTENCY_KEY_REUSED"
    job = await client.get(f"{BASE}/jobs/{job_id}", headers=planner(jwt_keys))
    assert job.json()["status"] == "queued" and job.json()["history"] == []
    listed = await client.get(f"{BASE}/jobs", params={"status": "queued"},
                              headers=planner(jwt_keys))  # fmt: skip
    assert [j["id"] for j in listed.json()["items"]] == [job_id]
    retry = await client.post(f"{BASE}/jobs/{job_id}/retry", headers=planner(jwt_keys))
    assert retry.status_code == 409 and retry.json()["code"] == "JOB_NOT_RETRYABLE"
    missing = await client.get(f"{BASE}/jobs/{uuid.uuid4()}", headers=planner(jwt_keys))
    assert missing.status_code == 404 and missing.json()["code"] == "JOB_NOT_FOUND"


async def test_email_jobs_refuse_a_bad_address_an_unknown_user_and_two_recipients(
    client: httpx.AsyncClient, jwt_keys: JwtKeys
) -> None:
    headers = planner(jwt_keys)
    text = {"subject": "s", "body": "b"}
    bad = await client.post(f"{BASE}/email", json={"to": "ops@", **text}, headers=headers)
    assert bad.status_code == 422 and "to" in field_errors(bad)
    nobody = uuid.uuid4()
    unknown = await client.post(f"{BASE}/email", json={"to_user": str(nobody), **text},
                                headers=headers)  # fmt: skip
    assert unknown.status_code == 422 and unknown.json()["code"] == "USER_UNKNOWN"
    assert field_errors(unknown) == {"to_user": "no contact for this user"}
    both = await client.post(
        f"{BASE}/email", json={"to": "a@example.com", "to_user": str(nobody), **text},
        headers=headers,
    )  # fmt: skip
    assert both.status_code == 422 and "exactly one" in both.json()["detail"]


async def test_webhook_jobs_need_the_org_secret_and_an_allowed_url(
    client: httpx.AsyncClient, jwt_keys: JwtKeys
) -> None:
    headers = planner(jwt_keys)
    body = {"url": "http://127.0.0.1:9/hook", "payload": {"n": 1}}
    no_secret = await client.post(f"{BASE}/webhook", json=body, headers=headers)
    assert no_secret.status_code == 409 and no_secret.json()["code"] == "WEBHOOK_SECRET_MISSING"
    await client.post(f"{BASE}/settings/webhook-secret", headers=headers)
    private = await client.post(
        f"{BASE}/webhook", json={**body, "url": "http://10.1.2.3/hook"}, headers=headers
    )
    assert private.status_code == 422 and private.json()["rule"] == "private"
    accepted = await client.post(f"{BASE}/webhook", json=body, headers=headers)
    assert accepted.status_code == 202, accepted.text
    huge = await client.post(
        f"{BASE}/webhook", json={**body, "payload": {"x": "y" * 70_000}}, headers=headers
    )
    assert huge.status_code == 422 and "payload" in field_errors(huge)
