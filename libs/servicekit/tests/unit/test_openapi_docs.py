"""The documentation tables: problem examples per status, operationIds, and examples built from
schemas where no table gives one."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import APIRouter
from fastapi.routing import APIRoute

from servicekit.openapi_docs import (
    COMMON_PROBLEMS,
    DocsTableError,
    ProblemExample,
    apply_errors,
    camel_operation_id,
    problem_examples,
)
from servicekit.openapi_samples import sample


def _route(name: str) -> APIRoute:
    router = APIRouter()

    async def handler() -> None:
        return None

    handler.__name__ = name
    router.add_api_route("/x", handler)
    route = router.routes[0]
    assert isinstance(route, APIRoute)
    return route


def test_operation_ids_default_to_the_handler_name_in_camel_case() -> None:
    assert camel_operation_id(_route("create_template")) == "createTemplate"
    assert camel_operation_id(_route("get")) == "get"


def test_a_problem_example_is_the_handlers_body_for_its_status() -> None:
    examples = problem_examples(412, ["VERSION_CONFLICT"], COMMON_PROBLEMS)
    body = examples["VERSION_CONFLICT"]["value"]
    assert body["status"] == 412 and body["title"] == "Precondition failed"
    assert body["type"] == "/problems/version-conflict"
    assert body["current_row_version"] == 4


def test_a_code_under_a_status_it_is_never_answered_with_is_refused() -> None:
    with pytest.raises(DocsTableError, match="TOKEN_MISSING"):
        problem_examples(403, ["TOKEN_MISSING"], COMMON_PROBLEMS)
    with pytest.raises(DocsTableError, match="NO_SUCH_CODE"):
        problem_examples(409, ["NO_SUCH_CODE"], COMMON_PROBLEMS)


def _op_with(*statuses: str) -> dict[str, Any]:
    return {"responses": {s: {"description": s} for s in statuses}}


def test_a_declared_not_found_code_replaces_the_generic_one_and_others_add_up() -> None:
    catalogue = {
        **COMMON_PROBLEMS,
        "TASK_NOT_FOUND": ProblemExample((404,), "Not found", "no such task"),
        "TASK_BLOCKED": ProblemExample((409,), "Conflict", "blocked"),
    }
    op = _op_with("404", "409")
    inferred = {"404": ["NOT_FOUND"], "409": ["VERSION_CONFLICT"]}
    declared = {404: ["TASK_NOT_FOUND"], 409: ["TASK_BLOCKED"]}
    apply_errors(op, inferred, declared, catalogue)
    codes = {s: list(r["content"]["application/problem+json"]["examples"])
             for s, r in op["responses"].items()}  # fmt: skip
    assert codes == {"404": ["TASK_NOT_FOUND"], "409": ["VERSION_CONFLICT", "TASK_BLOCKED"]}


def test_samples_use_the_schemas_examples_enums_and_field_names() -> None:
    schemas = {
        "Page": {
            "type": "object",
            "required": ["items", "next_cursor"],
            "properties": {
                "items": {"type": "array", "items": {"$ref": "#/components/schemas/Item"}},
                "next_cursor": {"anyOf": [{"type": "string"}, {"type": "null"}]},
            },
        },
        "Item": {
            "type": "object",
            "properties": {
                "status": {"type": "string"},
                "kind": {"type": "string", "enum": ["a", "b"]},
                "payload": {"type": "object", "additionalProperties": True},
                "created_at": {"type": "string", "format": "date-time"},
            },
        },
    }
    value = sample({"$ref": "#/components/schemas/Page"}, schemas)
    item = value["items"][0]
    assert item["status"] == "in_progress" and item["kind"] == "a"
    assert item["payload"] and "additionalProp1" not in item["payload"]
    assert item["created_at"].endswith("Z")
    with_example = {**schemas["Page"], "examples": [{"items": []}]}
    assert sample(with_example, schemas) == {"items": [], "next_cursor": None}
