"""Example values built from JSON schemas, for the media types no table gives an example.

Left to itself Swagger UI fills a body from the schema: `"string"` for every text (a status or
an action included) and `"additionalProp1": {}` for every free-form object, which teaches
nothing. This builds the example on the server instead: a schema's own examples first, then the
first enum member, then a value that fits the field's name.
"""

from __future__ import annotations

from typing import Any

_UUIDS = {
    "org_id": "5a0e9c3b-1f2d-4e6a-9b8c-7d6e5f4a3b2c",
    "project_id": "2c4e6a8b-0d1f-4a3b-9c5d-7e9f1a3b5c7d",
    "task_id": "0b7c1a52-6f0e-4d43-9d0c-2f6d6c1b8e11",
    "deliverable_id": "8e6c4a2b-0f1d-4e3c-8b5a-9d7f1e3c5a7b",
    "template_id": "4f3e2d1c-0b9a-4876-a5b4-c3d2e1f0a9b8",
    "inspection_id": "3b2a1c0d-4e5f-4a6b-8c7d-9e0f1a2b3c4d",
    "assigned_to": "7d1f3c8e-2a4b-4c6d-8e9f-0a1b2c3d4e5f",
    "created_by": "7d1f3c8e-2a4b-4c6d-8e9f-0a1b2c3d4e5f",
}
_DEFAULT_UUID = "1e2d3c4b-5a69-4788-9a0b-1c2d3e4f5a6b"
_TEXT = {
    "status": "in_progress",
    "from_status": "ready",
    "to_status": "in_progress",
    "current_status": "in_progress",
    "action": "start",
    "decision": "accept",
    "severity": "major",
    "result": "pass",
    "name": "Cabinet assembly",
    "title": "Weld the frame",
    "key": "cabinet-assembly",
    "node_key": "weld-frame",
    "serial": "CAB-0001",
    "code": "WELD-01",
    "actor": "user:7d1f3c8e-2a4b-4c6d-8e9f-0a1b2c3d4e5f",
    "checksum": "sha256:9f2c4e6a8b0d1f3a5c7e9b1d3f5a7c9e",
    "reason": "waiting for parts",
    "comment": "all checks passed",
    "next_cursor": "eyJpZCI6IDQyfQ",
    "client_event_id": "start-2f9c6a1e",
    "request_id": "9f0c2d4e6a8b4c1d",
    "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736",
}
_DATETIME = "2026-03-02T08:30:00Z"
_FREE_FORM = {"note": "any JSON object"}
_MAX_DEPTH = 12


def sample(schema: dict[str, Any], schemas: dict[str, Any], name: str = "", depth: int = 0) -> Any:
    """An example value for `schema` (refs resolved against `schemas`); `name` is the property
    it is the value of, which picks a fitting text or id."""
    if depth > _MAX_DEPTH:
        return None
    while "$ref" in schema:
        schema = schemas.get(schema["$ref"].rsplit("/", 1)[-1], {})
    for key in ("example", "const"):
        if schema.get(key) is not None:
            return schema[key]
    if schema.get("examples"):
        return _complete(schema["examples"][0], schema, schemas, depth)
    if schema.get("enum"):
        return schema["enum"][0]
    branches = [
        b for b in schema.get("anyOf", []) + schema.get("oneOf", []) if b != {"type": "null"}
    ]
    if branches:
        return sample(branches[0], schemas, name, depth + 1)
    if schema.get("allOf"):
        return sample(schema["allOf"][0], schemas, name, depth + 1)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object" or "properties" in schema:
        return _object(schema, schemas, depth)
    if kind == "array":
        return [sample(schema.get("items", {}), schemas, name.rstrip("s"), depth + 1)]
    if kind == "integer":
        return max(int(schema.get("minimum", 1)), 1 if name != "index" else 0)
    if kind == "number":
        return 0.75
    if kind == "boolean":
        return False
    if kind == "string":
        return _text(schema, name)
    return None


def _complete(value: Any, schema: dict[str, Any], schemas: dict[str, Any], depth: int) -> Any:
    """A schema's own example with its required nulls put back, nested objects included:
    FastAPI drops every None from the document it generates, examples too, which leaves them
    invalid."""
    while "$ref" in schema:
        schema = schemas.get(schema["$ref"].rsplit("/", 1)[-1], {})
    branches = [b for b in schema.get("anyOf", []) if b != {"type": "null"}]
    if len(branches) == 1:
        schema = branches[0]
        while "$ref" in schema:
            schema = schemas.get(schema["$ref"].rsplit("/", 1)[-1], {})
    if isinstance(value, list) and depth <= _MAX_DEPTH:
        return [_complete(v, schema.get("items", {}), schemas, depth + 1) for v in value]
    if not isinstance(value, dict) or depth > _MAX_DEPTH:
        return value
    properties = schema.get("properties", {})
    out = {
        k: _complete(v, properties[k], schemas, depth + 1) if k in properties else v
        for k, v in value.items()
    }
    for prop in schema.get("required", []):
        if prop not in out and prop in properties:
            nullable = {"type": "null"} in properties[prop].get("anyOf", [])
            out[prop] = None if nullable else sample(properties[prop], schemas, prop, depth + 1)
    return out


def _object(schema: dict[str, Any], schemas: dict[str, Any], depth: int) -> dict[str, Any]:
    properties = schema.get("properties", {})
    if not properties:
        return dict(_FREE_FORM)
    return {prop: sample(sub, schemas, prop, depth + 1) for prop, sub in properties.items()}


def _text(schema: dict[str, Any], name: str) -> str:
    fmt = schema.get("format")
    if fmt == "uuid":
        return _UUIDS.get(name, _DEFAULT_UUID)
    if fmt == "date-time" or name.endswith("_at"):
        return _DATETIME
    if fmt == "date":
        return _DATETIME[:10]
    if fmt == "binary":
        return ""
    return _TEXT.get(name, name.replace("_", " ") or "text")
