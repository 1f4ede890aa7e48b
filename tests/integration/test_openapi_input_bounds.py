"""Every number and list a client sends is bounded in every service's OpenAPI document, so
validation refuses a value too large to store (or to allocate for) before any code runs.

Generated from the documents themselves: a new endpoint with an unbounded integer fails here.
"""

from __future__ import annotations

from typing import Any

import pytest

from blueprint_stack.openapi import service_documents

DOCUMENTS = service_documents()


def _resolve(doc: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        name = node["$ref"].rsplit("/", 1)[-1]
        node = doc["components"]["schemas"][name]
    return node


def _unbounded(doc: dict[str, Any], node: Any, where: str, seen: set[str]) -> list[str]:
    """Paths to integer schemas without a maximum under `node` (request side only)."""
    if not isinstance(node, dict):
        return []
    if "$ref" in node:
        name = node["$ref"].rsplit("/", 1)[-1]
        if name in seen:
            return []
        return _unbounded(doc, _resolve(doc, node), where, seen | {name})
    out: list[str] = []
    if node.get("type") == "integer" and "maximum" not in node:
        out.append(where)
    for key in ("anyOf", "oneOf", "allOf"):
        for sub in node.get(key, []):
            out += _unbounded(doc, sub, where, seen)
    for name, sub in node.get("properties", {}).items():
        out += _unbounded(doc, sub, f"{where}.{name}", seen)
    if isinstance(node.get("items"), dict):
        out += _unbounded(doc, node["items"], f"{where}[]", seen)
    if isinstance(node.get("additionalProperties"), dict):
        out += _unbounded(doc, node["additionalProperties"], f"{where}.*", seen)
    return out


def _operations() -> list[tuple[str, str, str, dict[str, Any]]]:
    ops = []
    for service, doc in DOCUMENTS.items():
        for path, item in doc["paths"].items():
            for method, op in item.items():
                if method in {"get", "post", "put", "patch", "delete"}:
                    ops.append((service, method.upper(), path, op))
    return ops


@pytest.mark.parametrize(
    ("service", "method", "path", "op"),
    _operations(),
    ids=[f"{s}:{m} {p}" for s, m, p, _ in _operations()],
)
def test_every_integer_a_client_sends_has_a_maximum(
    service: str, method: str, path: str, op: dict[str, Any]
) -> None:
    doc = DOCUMENTS[service]
    found: list[str] = []
    for param in op.get("parameters", []):
        found += _unbounded(doc, param.get("schema", {}), f"{param['in']}.{param['name']}", set())
    for media, content in op.get("requestBody", {}).get("content", {}).items():
        found += _unbounded(doc, content.get("schema", {}), f"body({media})", set())
    assert not found, f"{method} {path}: integers without a maximum: {found}"
