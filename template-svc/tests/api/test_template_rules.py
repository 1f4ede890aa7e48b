"""Refusals, roles, org isolation, lists, archive, idempotency, import/export."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
import yaml

from template_svc.graph import limits as L

from .template_fixtures import ORG_A, ORG_B, PLANNER, VIEWER, cabinet, small_graph

BASE = "/api/v1/templates"


@pytest.fixture
def planner(jwt_keys: Any) -> dict[str, str]:
    return jwt_keys.headers(["planner"], org_id=ORG_A, user_id=PLANNER)


@pytest.fixture
def viewer(jwt_keys: Any) -> dict[str, str]:
    return jwt_keys.headers(["viewer"], org_id=ORG_A, user_id=VIEWER)


@pytest.fixture
def outsider(jwt_keys: Any) -> dict[str, str]:
    return jwt_keys.headers(["admin"], org_id=ORG_B)


async def _create(client: httpx.AsyncClient, headers: dict[str, str], key: str, **kw: Any) -> Any:
    resp = await client.post(BASE, json={"key": key, "name": key.title(), **kw}, headers=headers)
    assert resp.status_code == 201, resp.text
    return resp.json()


async def test_only_planners_and_admins_write_everyone_in_the_org_reads(
    client: httpx.AsyncClient, planner: dict[str, str], viewer: dict[str, str], jwt_keys: Any
) -> None:
    refused = await client.post(BASE, json={"key": "v", "name": "V"}, headers=viewer)
    assert refused.status_code == 403
    assert refused.json()["code"] == "ROLE_REQUIRED"
    admin = jwt_keys.headers(["admin"], org_id=ORG_A)
    tid = (await _create(client, admin, "by-admin", draft=small_graph()))["id"]
    assert (await client.get(f"{BASE}/{tid}", headers=viewer)).status_code == 200
    publish = await client.post(f"{BASE}/{tid}/versions/1/publish", headers=viewer)
    assert publish.status_code == 403


async def test_other_orgs_see_404(
    client: httpx.AsyncClient, planner: dict[str, str], outsider: dict[str, str]
) -> None:
    tid = (await _create(client, planner, "private", draft=small_graph()))["id"]
    for method, url in [
        ("GET", f"{BASE}/{tid}"),
        ("GET", f"{BASE}/{tid}/versions"),
        ("GET", f"{BASE}/{tid}/versions/1"),
        ("GET", f"{BASE}/{tid}/versions/1/export"),
        ("POST", f"{BASE}/{tid}/versions/1/publish"),
        ("POST", f"{BASE}/{tid}/versions"),
        ("POST", f"{BASE}/{tid}/archive"),
    ]:
        resp = await client.request(method, url, headers=outsider)
        assert resp.status_code == 404, (method, url, resp.text)
        assert resp.json()["code"] == "TEMPLATE_NOT_FOUND"
    assert (await client.get(BASE, headers=outsider)).json()["items"] == []


async def test_key_taken_unknown_fields_and_limits(
    client: httpx.AsyncClient, planner: dict[str, str]
) -> None:
    await _create(client, planner, "cab")
    taken = await client.post(BASE, json={"key": "cab", "name": "Again"}, headers=planner)
    assert taken.status_code == 409
    assert taken.json()["code"] == "TEMPLATE_KEY_TAKEN"

    unknown = await client.post(
        BASE, json={"key": "k", "name": "K", "colour": "red"}, headers=planner
    )
    assert unknown.status_code == 422
    assert unknown.json()["errors"][0]["field"] == "colour"
    assert unknown.json()["errors"][0]["type"] == "extra_forbidden"

    graph = small_graph()
    graph["nodes"][1]["estimate"] = 3
    nested = await client.post(f"{BASE}/validate", json=graph, headers=planner)
    assert nested.status_code == 422
    assert nested.json()["errors"][0]["field"] == "nodes[1].estimate"

    bad_key = await client.post(BASE, json={"key": "Not A Slug", "name": "K"}, headers=planner)
    assert bad_key.json()["errors"][0]["field"] == "key"

    too_many = {
        "nodes": [{"key": f"n{i}", "title": "t"} for i in range(L.MAX_NODES + 1)],
        "edges": [],
    }
    limited = await client.post(f"{BASE}/validate", json=too_many, headers=planner)
    assert limited.status_code == 422
    assert limited.json()["errors"][0]["field"] == "nodes"

    bad_kind = await client.post(
        f"{BASE}/validate",
        json={"nodes": [{"key": "a", "title": "A", "work_kind": "party"}]},
        headers=planner,
    )
    assert bad_kind.json()["errors"][0]["field"] == "nodes[0].work_kind"


async def test_put_needs_a_row_version_and_checks_it(
    client: httpx.AsyncClient, planner: dict[str, str]
) -> None:
    tid = (await _create(client, planner, "lock", draft=small_graph()))["id"]
    url = f"{BASE}/{tid}/versions/1"
    missing = await client.put(url, json=small_graph(), headers=planner)
    assert missing.status_code == 428
    assert missing.json()["code"] == "PRECONDITION_REQUIRED"
    garbled = await client.put(url, json=small_graph(), headers={**planner, "If-Match": "abc"})
    assert garbled.json()["code"] == "IF_MATCH_INVALID"
    both = await client.put(
        url,
        json={**small_graph(), "expected_row_version": 1},
        headers={**planner, "If-Match": '"2"'},
    )
    assert (both.status_code, both.json()["code"]) == (400, "IF_MATCH_MISMATCH")
    ok = await client.put(url, json={**small_graph(), "expected_row_version": 1}, headers=planner)
    assert ok.status_code == 200
    lost = await client.put(url, json={**small_graph(), "expected_row_version": 1}, headers=planner)
    assert lost.status_code == 409
    assert lost.json()["code"] == "VERSION_CONFLICT"
    assert (lost.json()["current_row_version"], lost.json()["current_status"]) == (2, "draft")
    # A stale If-Match is a failed precondition (RFC 9110), and a weak tag never matches.
    for tag in ('"1"', 'W/"2"'):
        stale = await client.put(url, json=small_graph(), headers={**planner, "If-Match": tag})
        assert (stale.status_code, stale.json()["code"]) == (412, "VERSION_CONFLICT")
        assert stale.json()["current_row_version"] == 2
        assert stale.headers["ETag"] == '"2"'
    # Nothing changed by the refused writes.
    assert (await client.get(url, headers=planner)).json()["row_version"] == 2


async def test_etag_and_if_none_match(client: httpx.AsyncClient, planner: dict[str, str]) -> None:
    tid = (await _create(client, planner, "cache", draft=small_graph()))["id"]
    url = f"{BASE}/{tid}/versions/1"
    first = await client.get(url, headers=planner)
    same = await client.get(url, headers={**planner, "If-None-Match": first.headers["etag"]})
    assert same.status_code == 304
    await client.post(f"{url}/publish", headers=planner)
    changed = await client.get(url, headers={**planner, "If-None-Match": first.headers["etag"]})
    assert changed.status_code == 200
    assert changed.json()["status"] == "published"


async def test_list_filters_and_cursor_pagination(
    client: httpx.AsyncClient, planner: dict[str, str], viewer: dict[str, str]
) -> None:
    for key in ["alpha", "bravo", "charlie", "delta", "echo"]:
        await _create(client, planner, key)
    archived = (await _create(client, planner, "foxtrot"))["id"]
    arch = await client.post(f"{BASE}/{archived}/archive", headers=planner)
    assert arch.json()["archived"] is True

    seen: list[str] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = (await client.get(BASE, params=params, headers=viewer)).json()
        seen += [t["key"] for t in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == ["alpha", "bravo", "charlie", "delta", "echo"]

    only_archived = await client.get(BASE, params={"archived": "true"}, headers=viewer)
    assert [t["key"] for t in only_archived.json()["items"]] == ["foxtrot"]
    text = await client.get(BASE, params={"q": "RAV"}, headers=viewer)
    assert [t["key"] for t in text.json()["items"]] == ["bravo"]
    bad = await client.get(BASE, params={"cursor": "%%%"}, headers=viewer)
    assert bad.status_code == 400
    assert bad.json()["code"] == "CURSOR_INVALID"

    no_new_versions = await client.post(f"{BASE}/{archived}/versions", headers=planner)
    assert no_new_versions.status_code == 409
    assert no_new_versions.json()["code"] == "TEMPLATE_ARCHIVED"
    stale = await client.post(
        f"{BASE}/{archived}/unarchive", json={"expected_row_version": 1}, headers=planner
    )
    assert stale.json()["code"] == "VERSION_CONFLICT"
    assert stale.json()["current_status"] == "archived"
    back = await client.post(f"{BASE}/{archived}/unarchive", headers=planner)
    assert back.json()["archived"] is False


async def test_archived_template_publishes_nothing_but_stays_readable(
    client: httpx.AsyncClient, planner: dict[str, str], jwt_keys: Any
) -> None:
    tid = (await _create(client, planner, "retired", draft=small_graph()))["id"]
    await client.post(f"{BASE}/{tid}/versions/1/publish", headers=planner)
    await client.post(f"{BASE}/{tid}/versions", json={"clone_from": 1}, headers=planner)
    await client.post(f"{BASE}/{tid}/archive", headers=planner)
    refused = await client.post(f"{BASE}/{tid}/versions/2/publish", headers=planner)
    assert refused.status_code == 409
    assert refused.json()["code"] == "TEMPLATE_ARCHIVED"
    assert (await client.get(f"{BASE}/{tid}/versions/1", headers=planner)).status_code == 200
    service = {"Authorization": f"Bearer {jwt_keys.service_token()}"}
    latest = await client.get(
        f"/internal/templates/{tid}/versions/latest", params={"org_id": str(ORG_A)}, headers=service
    )
    assert latest.json()["version"] == 1


async def test_openapi_documents_every_route_with_examples(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    versions = "/api/v1/templates/{template_id}/versions"
    for path in [
        "/api/v1/templates",
        "/api/v1/templates/validate",
        f"{versions}/import",
        f"{versions}/{{version}}/publish",
        f"{versions}/{{version}}/diff/{{other}}",
        "/internal/templates/{template_id}/versions/latest",
    ]:
        assert path in spec["paths"], path
    schemas = spec["components"]["schemas"]
    assert schemas["TemplateCreate"]["examples"][0]["key"] == "cabinet-assembly"
    assert schemas["VersionReplace"]["additionalProperties"] is False


async def test_idempotency_key_replays_the_first_answer(
    client: httpx.AsyncClient, planner: dict[str, str]
) -> None:
    headers = {**planner, "Idempotency-Key": "create-cab-1"}
    body = {"key": "idem", "name": "Idem", "draft": small_graph()}
    first = await client.post(BASE, json=body, headers=headers)
    second = await client.post(BASE, json=body, headers=headers)
    assert first.status_code == second.status_code == 201
    assert second.json() == first.json()
    assert second.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    listed = await client.get(BASE, params={"q": "idem"}, headers=planner)
    assert len(listed.json()["items"]) == 1
    other = await client.post(BASE, json={**body, "name": "Other"}, headers=headers)
    assert other.status_code == 409
    assert other.json()["code"] == "IDEMPOTENCY_KEY_REUSED"


async def test_export_yaml_and_json_then_import_gives_the_same_graph(
    client: httpx.AsyncClient, planner: dict[str, str]
) -> None:
    tid = (await _create(client, planner, "roundtrip", draft=cabinet()))["id"]
    published = (await client.post(f"{BASE}/{tid}/versions/1/publish", headers=planner)).json()

    exported = await client.get(
        f"{BASE}/{tid}/versions/1/export", params={"format": "yaml"}, headers=planner
    )
    assert exported.status_code == 200
    assert exported.headers["content-type"].startswith("application/yaml")
    assert 'filename="roundtrip-v1.yaml"' in exported.headers["content-disposition"]
    doc = yaml.safe_load(exported.text)
    assert doc["checksum"] == published["checksum"]

    imported = await client.post(
        f"{BASE}/{tid}/versions/import",
        content=exported.content,
        headers={**planner, "Content-Type": "application/yaml"},
    )
    assert imported.status_code == 201, imported.text
    assert imported.json()["version"] == 2
    assert imported.json()["nodes"] == published["nodes"]
    assert imported.json()["edges"] == published["edges"]

    as_json = await client.get(f"{BASE}/{tid}/versions/2/export", headers=planner)
    assert as_json.json()["nodes"] == published["nodes"]
    again = await client.post(
        f"{BASE}/{tid}/versions/import",
        content=as_json.content,
        headers={**planner, "Content-Type": "application/json"},
    )
    assert again.status_code == 201
    republished = await client.post(f"{BASE}/{tid}/versions/3/publish", headers=planner)
    assert republished.json()["checksum"] == published["checksum"]


async def test_import_refusals_are_precise(
    client: httpx.AsyncClient, planner: dict[str, str]
) -> None:
    tid = (await _create(client, planner, "imports"))["id"]
    url = f"{BASE}/{tid}/versions/import"
    yaml_headers = {**planner, "Content-Type": "application/yaml"}
    text_headers = {**planner, "Content-Type": "text/plain"}
    wrong_type = await client.post(url, content=b"x", headers=text_headers)
    assert wrong_type.status_code == 415
    unreadable = await client.post(url, content=b"nodes: [unclosed", headers=yaml_headers)
    assert unreadable.status_code == 400
    assert unreadable.json()["code"] == "DOCUMENT_UNREADABLE"
    doc = {"format": "blueprint.template-version/v1", **small_graph(), "extra": 1}
    unknown = await client.post(url, content=yaml.safe_dump(doc).encode(), headers=yaml_headers)
    assert unknown.status_code == 422
    assert unknown.json()["errors"][0]["field"] == "extra"
    doc = {"format": "blueprint.template-version/v1", **small_graph()}
    doc["nodes"][0]["title"] = ""
    nested = await client.post(url, content=yaml.safe_dump(doc).encode(), headers=yaml_headers)
    assert nested.json()["errors"][0]["field"] == "nodes[0].title"
    versions = await client.get(f"{BASE}/{tid}/versions", headers=planner)
    assert versions.json()["items"] == []


async def test_unknown_ids_answer_404(client: httpx.AsyncClient, planner: dict[str, str]) -> None:
    resp = await client.get(f"{BASE}/{uuid.uuid4()}", headers=planner)
    assert resp.status_code == 404
    assert resp.json()["code"] == "TEMPLATE_NOT_FOUND"
    tid = (await _create(client, planner, "clone-missing"))["id"]
    clone = await client.post(f"{BASE}/{tid}/versions", json={"clone_from": 9}, headers=planner)
    assert clone.status_code == 404
    assert clone.json()["code"] == "VERSION_NOT_FOUND"
    both = await client.post(
        f"{BASE}/{tid}/versions", json={"clone_from": 1, "graph": small_graph()}, headers=planner
    )
    assert both.status_code == 422


async def test_rename_records_who_and_checks_the_row_version(
    client: httpx.AsyncClient, planner: dict[str, str], jwt_keys: Any, viewer: dict[str, str]
) -> None:
    tid = (await _create(client, planner, "rename"))["id"]
    other_planner = uuid.uuid4()
    headers = jwt_keys.headers(["planner"], org_id=ORG_A, user_id=other_planner)
    renamed = await client.patch(
        f"{BASE}/{tid}", json={"name": "Renamed"}, headers={**headers, "If-Match": '"1"'}
    )
    assert renamed.status_code == 200, renamed.text
    assert renamed.json()["name"] == "Renamed"
    assert renamed.json()["updated_by"] == str(other_planner)
    assert renamed.json()["created_by"] == str(PLANNER)
    assert renamed.headers["etag"] == '"2"'
    stale = await client.patch(
        f"{BASE}/{tid}", json={"name": "Lost", "expected_row_version": 1}, headers=planner
    )
    assert stale.status_code == 409
    assert stale.json()["current_status"] == "active"
    by_viewer = await client.patch(f"{BASE}/{tid}", json={"name": "V"}, headers=viewer)
    assert by_viewer.status_code == 403
    assert (await client.get(f"{BASE}/{tid}", headers=viewer)).json()["name"] == "Renamed"


async def test_oversized_import_is_refused(
    client: httpx.AsyncClient, planner: dict[str, str]
) -> None:
    tid = (await _create(client, planner, "big-import"))["id"]
    body = b"# padding\n" * (L.MAX_IMPORT_BYTES // 10 + 1)
    resp = await client.post(
        f"{BASE}/{tid}/versions/import",
        content=body,
        headers={**planner, "Content-Type": "application/yaml"},
    )
    assert resp.status_code == 413
    assert resp.json()["code"] == "PAYLOAD_TOO_LARGE"


async def test_numbers_beyond_the_column_type_are_a_precise_422(
    client: httpx.AsyncClient, planner: dict[str, str]
) -> None:
    """Version numbers and row versions beyond PostgreSQL's integer answer 422 naming the
    field, on every route that takes one (they used to fail in the database with a 500)."""
    tid = (await _create(client, planner, "big-numbers", draft=small_graph()))["id"]
    big, bigger = 2**31, 2**53
    cases: list[tuple[str, str, Any, str]] = [
        ("GET", f"{BASE}/{tid}/versions/{big}", None, "version"),
        ("GET", f"{BASE}/{tid}/versions/1/diff/{bigger}", None, "other"),
        ("GET", f"{BASE}/{tid}/versions/{big}/export", None, "version"),
        ("POST", f"{BASE}/{tid}/versions/{big}/publish", None, "version"),
        ("POST", f"{BASE}/{tid}/versions/{big}/deprecate", None, "version"),
        ("PUT", f"{BASE}/{tid}/versions/{big}", small_graph(), "version"),
        (
            "PUT",
            f"{BASE}/{tid}/versions/1",
            {**small_graph(), "expected_row_version": big},
            "expected_row_version",
        ),
        ("POST", f"{BASE}/{tid}/versions", {"clone_from": big}, "clone_from"),
    ]
    for method, url, body, field in cases:
        resp = await client.request(method, url, json=body, headers=planner)
        assert resp.status_code == 422, (method, url, resp.text)
        assert any(e["field"] == field for e in resp.json()["errors"]), (url, resp.json())
    stale = await client.put(
        f"{BASE}/{tid}/versions/1",
        json=small_graph(),
        headers={**planner, "If-Match": f'"{big}"'},
    )
    assert stale.status_code == 400, stale.text


async def test_a_deeply_nested_or_aliased_yaml_import_is_refused_precisely(
    client: httpx.AsyncClient, planner: dict[str, str]
) -> None:
    tid = (await _create(client, planner, "yaml-bombs"))["id"]
    url = f"{BASE}/{tid}/versions/import"
    headers = {**planner, "Content-Type": "application/yaml"}
    deep = "format: blueprint.template-version/v1\nnodes: " + "[" * 50_000 + "]" * 50_000
    resp = await client.post(url, content=deep.encode(), headers=headers)
    assert resp.status_code == 400, resp.text
    assert resp.json()["code"] == "DOCUMENT_UNREADABLE"
    assert "deep" in resp.json()["detail"]
    laughs = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 9)}]\n" for i in range(8)
    )
    resp = await client.post(url, content=laughs.encode(), headers=headers)
    assert resp.status_code == 400, resp.text
    assert "alias" in resp.json()["detail"]
