"""The merged OpenAPI document the gateway serves at /openapi.json, and its Swagger UI."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from blueprint_stack.openapi import DocsError, build, merge, service_documents


def _doc(paths: dict[str, Any], schemas: dict[str, Any]) -> dict[str, Any]:
    return {"paths": paths, "components": {"schemas": schemas}}


def _op(ref: str) -> dict[str, Any]:
    schema = {"$ref": f"#/components/schemas/{ref}"}
    return {"get": {"responses": {"200": {"content": {"application/json": {"schema": schema}}}}}}


def test_same_name_different_schema_is_kept_per_service_with_refs_following() -> None:
    merged = merge(
        {
            "template-svc": _doc({"/api/v1/templates": _op("Page")}, {"Page": {"title": "A"}}),
            "task-svc": _doc({"/api/v1/tasks": _op("Page")}, {"Page": {"title": "B"}}),
        }
    )
    schemas = merged["components"]["schemas"]
    assert schemas["Page"] == {"title": "A"}
    assert schemas["TaskPage"] == {"title": "B"}
    tasks_ref = merged["paths"]["/api/v1/tasks"]["get"]["responses"]["200"]["content"]
    assert tasks_ref["application/json"]["schema"]["$ref"] == "#/components/schemas/TaskPage"


def test_internal_and_health_routes_and_their_schemas_stay_out() -> None:
    merged = merge(
        {
            "task-svc": _doc(
                {"/api/v1/tasks": _op("Pub"), "/internal/tasks/{id}": _op("Priv"), "/healthz": {}},
                {"Pub": {"title": "pub"}, "Priv": {"title": "priv"}},
            )
        }
    )
    assert list(merged["paths"]) == ["/api/v1/tasks"]
    assert set(merged["components"]["schemas"]) == {"Pub"}


def test_a_path_served_twice_is_refused() -> None:
    with pytest.raises(DocsError, match="/api/v1/x"):
        merge({"a-svc": _doc({"/api/v1/x": {}}, {}), "b-svc": _doc({"/api/v1/x": {}}, {})})


def _refs(node: Any) -> set[str]:
    found: set[str] = set()
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "$ref":
                found.add(v.rsplit("/", 1)[-1])
            else:
                found |= _refs(v)
    elif isinstance(node, list):
        for v in node:
            found |= _refs(v)
    return found


def test_the_real_services_merge_into_one_usable_document(tmp_path: Path) -> None:
    out = build(tmp_path / "docs")
    doc = json.loads((out / "openapi.json").read_text())
    prefixes = {"/api/v1/templates", "/api/v1/projects", "/api/v1/tasks", "/api/v1/inspections"}
    for prefix in prefixes:
        assert any(p.startswith(prefix) for p in doc["paths"]), f"no route under {prefix}"
    assert not any(p.startswith("/internal") for p in doc["paths"])
    text = json.dumps(doc)
    assert "HTTPValidationError" not in text and "additionalProp1" not in text
    assert _refs(doc) <= set(doc["components"]["schemas"]), "every $ref resolves"
    for path, item in doc["paths"].items():
        for method, op in item.items():
            for status, resp in op["responses"].items():
                if status.startswith(("4", "5")):
                    assert "application/problem+json" in resp["content"], (method, path, status)
            assert op.get("security") == [{"bearer": []}], (method, path)
    for asset in ("index.html", "swagger-ui-bundle.js", "swagger-ui.css", "init.js"):
        assert (out / asset).stat().st_size > 0
    assert "/openapi.json" in (out / "init.js").read_text()


def test_service_documents_come_from_all_four_services() -> None:
    assert set(service_documents()) == {"template-svc", "task-svc", "qc-svc", "notify-svc"}
