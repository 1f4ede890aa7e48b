"""Every public operation documents a worked example of its request body and its answer.

Swagger UI is the planners' manual: a request without an example shows `"string"` placeholders,
and a response without one shows nothing useful. An example counts when it is on the media type
(`example`/`examples`) or on the schema it refers to (following `$ref`, and for an optional
body `anyOf: [<schema>, null]`, on the schema that is not null).
"""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel

from template_svc.graph.schemas import GRAPH_EXAMPLE, Graph, GraphProblem
from template_svc.graph.validation import validate_graph
from template_svc.main import create_app
from template_svc.templates.schemas import (
    RowVersionGuard,
    TemplateCreate,
    TemplateCreated,
    TemplatePage,
    TemplateRead,
    TemplateUpdate,
)
from template_svc.versions.schemas import (
    GraphValidation,
    VersionCreate,
    VersionDiff,
    VersionDocument,
    VersionPage,
    VersionRead,
    VersionReplace,
    VersionSummary,
)

DOC: dict[str, Any] = create_app().openapi()
SCHEMAS: dict[str, Any] = DOC["components"]["schemas"]
OPERATIONS = [
    (method.upper(), path, op)
    for path, ops in DOC["paths"].items()
    if path.startswith("/api/v1/")
    for method, op in ops.items()
]


def _resolve(schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = SCHEMAS[schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def _has_example(media: dict[str, Any]) -> bool:
    if media.get("example") is not None or media.get("examples"):
        return True
    schema = _resolve(media.get("schema") or {})
    if schema.get("example") is not None or schema.get("examples"):
        return True
    branches = [
        _resolve(s)
        for s in schema.get("anyOf") or schema.get("oneOf") or []
        if s != {"type": "null"}
    ]
    return bool(branches) and all(
        b.get("example") is not None or b.get("examples") for b in branches
    )


def _missing(op: dict[str, Any]) -> list[str]:
    missing = []
    body = op.get("requestBody")
    if body is not None:
        missing += [f"request {mt}" for mt, m in body["content"].items() if not _has_example(m)]
    for status, response in op["responses"].items():
        if not status.startswith("2"):
            continue
        missing += [
            f"response {status} {mt}"
            for mt, m in (response.get("content") or {}).items()
            if not _has_example(m)
        ]
    return missing


def test_there_are_operations_to_check() -> None:
    paths = {path for _, path, _ in OPERATIONS}
    assert "/api/v1/templates/{template_id}/versions/{version}" in paths
    assert len(OPERATIONS) >= 15


@pytest.mark.parametrize(
    ("method", "path", "op"), OPERATIONS, ids=[f"{m} {p}" for m, p, _ in OPERATIONS]
)
def test_operation_has_request_and_response_examples(
    method: str, path: str, op: dict[str, Any]
) -> None:
    assert _missing(op) == [], f"{method} {path} lacks examples"


def test_a_schema_without_examples_is_caught() -> None:
    bare = {"requestBody": {"content": {"application/json": {"schema": {"type": "object"}}}}}
    assert _missing({**bare, "responses": {}}) == ["request application/json"]
    optional = {
        "content": {
            "application/json": {
                "schema": {"anyOf": [{"$ref": "#/components/schemas/Problem"}, {"type": "null"}]}
            }
        }
    }
    assert _missing({"responses": {"200": optional}}) == ["response 200 application/json"]


SCHEMA_MODELS: list[type[BaseModel]] = [
    Graph,
    GraphProblem,
    TemplateCreate,
    TemplateUpdate,
    RowVersionGuard,
    TemplateRead,
    TemplateCreated,
    TemplatePage,
    VersionCreate,
    VersionReplace,
    VersionSummary,
    VersionRead,
    VersionPage,
    GraphValidation,
    VersionDiff,
    VersionDocument,
]


@pytest.mark.parametrize("model", SCHEMA_MODELS, ids=[m.__name__ for m in SCHEMA_MODELS])
def test_examples_are_valid_instances_of_their_schema(model: type[BaseModel]) -> None:
    examples = model.model_json_schema().get("examples")
    assert examples, f"{model.__name__} has no example"
    for example in examples:
        model.model_validate(example)


def test_the_graph_example_is_publishable() -> None:
    assert validate_graph(GRAPH_EXAMPLE) == []
