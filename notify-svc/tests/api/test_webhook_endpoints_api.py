"""/api/v1/webhooks/endpoints: roles, org scoping, the secret shown once, SSRF refusals naming
the rule, conditional changes, idempotent creation, rotation and the event catalogue."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from notify_svc.settings import Settings
from notify_svc.webhooks import service
from servicekit.errors import Unprocessable
from servicekit.testing.plugin import JwtKeys

BASE = "/api/v1/webhooks/endpoints"
BODY = {"url": "http://127.0.0.1:9/hook", "event_types": ["task.*", "qc.inspection.failed"]}


async def create(
    client: httpx.AsyncClient, jwt_keys: JwtKeys, body: dict[str, Any] | None = None, **kw: Any
) -> httpx.Response:
    return await client.post(BASE, json=body or BODY, headers=jwt_keys.headers(["planner"], **kw))


async def test_create_shows_the_secret_once_and_never_again(
    client: httpx.AsyncClient, jwt_keys: JwtKeys
) -> None:
    resp = await create(client, jwt_keys)
    assert resp.status_code == 201, resp.text
    created = resp.json()
    assert created["secret"].startswith("whsec_")
    assert resp.headers["location"] == f"{BASE}/{created['id']}"
    assert created["event_types"] == BODY["event_types"]
    assert (created["active"], created["ordering"], created["row_version"]) == (True, "none", 1)
    read = await client.get(f"{BASE}/{created['id']}", headers=jwt_keys.headers(["admin"]))
    assert read.status_code == 200 and "secret" not in read.json()
    assert created["secret"] not in read.text
    listed = await client.get(BASE, headers=jwt_keys.headers(["planner"]))
    assert [e["id"] for e in listed.json()["items"]] == [created["id"]]
    assert created["secret"] not in listed.text


async def test_other_orgs_get_404_and_other_roles_403(
    client: httpx.AsyncClient, jwt_keys: JwtKeys
) -> None:
    created = (await create(client, jwt_keys)).json()
    other = jwt_keys.headers(["planner"], org_id=uuid.uuid4())
    for method, path in (("GET", ""), ("PATCH", ""), ("DELETE", ""), ("POST", "/rotate-secret")):
        kw: dict[str, Any] = {"json": {}} if method == "PATCH" else {}
        resp = await client.request(method, f"{BASE}/{created['id']}{path}", headers=other, **kw)
        assert resp.status_code == 404, (method, path, resp.text)
        assert resp.json()["code"] == "ENDPOINT_NOT_FOUND"
    assert (await client.get(BASE, headers=other)).json()["items"] == []
    viewer = await client.get(BASE, headers=jwt_keys.headers(["operator"]))
    assert viewer.status_code == 403 and viewer.json()["code"] == "ROLE_REQUIRED"


@pytest.mark.parametrize(
    ("url", "rule"),
    [
        ("http://10.0.0.1/hook", "private"),
        ("http://169.254.169.254/latest/meta-data", "metadata"),
        ("http://100.64.1.1/", "carrier_grade_nat"),
        ("ftp://example.com/hook", "scheme"),
        ("http://user:pw@example.com/", "credentials"),
        ("http://no-such-host.invalid/hook", "unresolvable"),
    ],
)
async def test_ssrf_refusals_name_the_rule(
    client: httpx.AsyncClient, jwt_keys: JwtKeys, url: str, rule: str
) -> None:
    resp = await create(client, jwt_keys, {**BODY, "url": url})
    assert resp.status_code == 422, resp.text
    problem = resp.json()
    assert (problem["code"], problem["rule"]) == ("URL_NOT_ALLOWED", rule)
    assert problem["errors"][0]["field"] == "url"
    assert (await client.get(BASE, headers=jwt_keys.headers(["planner"]))).json()["items"] == []


@pytest.mark.parametrize(
    ("url", "rule"),
    [
        ("http://[::ffff:127.0.0.1]:8080/hook", "loopback"),
        ("http://localhost:8080/hook", "loopback"),
        ("http://127.0.0.1/hook", "loopback"),
    ],
)
async def test_loopback_is_refused_without_the_allowlist(url: str, rule: str) -> None:
    with pytest.raises(Unprocessable) as refused:
        await service.check_url(url, settings=Settings(webhook_allowed_networks=[]))
    assert refused.value.extra["rule"] == rule
    assert "loopback" in refused.value.detail


async def test_unknown_event_types_and_bad_fields_are_precise(
    client: httpx.AsyncClient, jwt_keys: JwtKeys
) -> None:
    resp = await create(client, jwt_keys, {**BODY, "event_types": ["task.*", "nothing.*"]})
    assert resp.status_code == 422
    assert resp.json()["code"] == "EVENT_TYPE_UNKNOWN"
    assert resp.json()["errors"][0]["field"] == "event_types[1]"
    resp = await create(client, jwt_keys, {**BODY, "ordering": "sometimes"})
    assert resp.status_code == 422 and resp.json()["errors"][0]["field"] == "ordering"


async def test_idempotency_key_replays_the_creation(
    client: httpx.AsyncClient, jwt_keys: JwtKeys
) -> None:
    headers = {**jwt_keys.headers(["planner"]), "Idempotency-Key": "create-erp-hook"}
    first = await client.post(BASE, json=BODY, headers=headers)
    again = await client.post(BASE, json=BODY, headers=headers)
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json()["id"] == first.json()["id"]
    other = await client.post(BASE, json={**BODY, "description": "x"}, headers=headers)
    assert other.status_code == 409 and other.json()["code"] == "IDEMPOTENCY_KEY_REUSED"


async def test_patch_with_if_match_pauses_and_a_stale_tag_changes_nothing(
    client: httpx.AsyncClient, jwt_keys: JwtKeys
) -> None:
    created = (await create(client, jwt_keys)).json()
    headers = jwt_keys.headers(["planner"])
    url = f"{BASE}/{created['id']}"
    paused = await client.patch(url, json={"active": False}, headers={**headers, "If-Match": '"1"'})
    assert paused.status_code == 200, paused.text
    assert (paused.json()["active"], paused.json()["disabled_reason"]) == (
        False,
        "disabled by a user",
    )
    assert paused.headers["etag"] == '"2"'
    stale = await client.patch(
        url, json={"description": "late"}, headers={**headers, "If-Match": '"1"'}
    )
    assert stale.status_code == 412 and stale.json()["code"] == "VERSION_CONFLICT"
    assert (await client.get(url, headers=headers)).json()["description"] == ""
    deleted = await client.delete(url, headers=headers)
    assert deleted.status_code == 204
    assert (await client.get(url, headers=headers)).status_code == 404


async def test_rotation_returns_a_new_secret_and_a_grace_period(
    client: httpx.AsyncClient, jwt_keys: JwtKeys
) -> None:
    created = (await create(client, jwt_keys)).json()
    resp = await client.post(
        f"{BASE}/{created['id']}/rotate-secret", headers=jwt_keys.headers(["planner"])
    )
    assert resp.status_code == 200, resp.text
    rotated = resp.json()
    assert rotated["secret"].startswith("whsec_") and rotated["secret"] != created["secret"]
    assert rotated["previous_secret_expires_at"] is not None
    now_only = await client.post(
        f"{BASE}/{created['id']}/rotate-secret",
        json={"grace_period_seconds": 0},
        headers=jwt_keys.headers(["planner"]),
    )
    assert now_only.json()["previous_secret_expires_at"] is None


async def test_the_event_catalogue_lists_every_type_with_its_schema(
    client: httpx.AsyncClient, jwt_keys: JwtKeys
) -> None:
    resp = await client.get("/api/v1/webhooks/event-types", headers=jwt_keys.headers(["admin"]))
    assert resp.status_code == 200
    types = {item["type"]: item for item in resp.json()["items"]}
    assert {"task.status_changed", "qc.inspection.failed", "webhook.endpoint.disabled"} <= set(
        types
    )
    schema = types["task.status_changed"]["schema"]
    assert schema["$id"] == "urn:blueprint:event:task.status_changed:v1"
    assert "to_status" in schema["properties"]
