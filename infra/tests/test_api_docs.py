"""The merged OpenAPI document as a manual: human operationIds, described tags, named examples
that fit their schemas, and error examples of the codes each status really answers."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema_rs
import pytest

from blueprint_stack.config import REPO_ROOT
from blueprint_stack.openapi import merge, service_documents
from notify_svc.api_docs import API_DOCS as NOTIFY_DOCS
from qc_svc.api_docs import API_DOCS as QC_DOCS
from servicekit.openapi_docs import COMMON_PROBLEMS
from task_svc.api_docs import API_DOCS as TASK_DOCS
from task_svc.tasks.fsm import TRANSITIONS, USER_ACTIONS
from template_svc.api_docs import API_DOCS as TEMPLATE_DOCS

DOC: dict[str, Any] = merge(service_documents())
TABLES = (TASK_DOCS, QC_DOCS, TEMPLATE_DOCS, NOTIFY_DOCS)
CATALOGUE = {**COMMON_PROBLEMS}
for _table in TABLES:
    CATALOGUE.update(_table.problems)
PROBLEM_JSON = "application/problem+json"
TRANSITIONS_OP = ("post", "/api/v1/tasks/{task_id}/transitions")


def _operations() -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in DOC["paths"].items():
        for method, op in item.items():
            yield method, path, op


def _op(method: str, path: str) -> dict[str, Any]:
    op: dict[str, Any] = DOC["paths"][path][method]
    return op


def _validator(schema: dict[str, Any]) -> Any:
    return jsonschema_rs.validator_for({**schema, "components": DOC["components"]})


def test_operation_ids_are_human_unique_camel_case_and_from_the_tables() -> None:
    ids = [op["operationId"] for _, _, op in _operations()]
    assert len(ids) == len(set(ids)), [i for i in ids if ids.count(i) > 1]
    for op_id in ids:
        assert re.fullmatch(r"[a-z][a-zA-Z0-9]+", op_id), op_id
        assert "Api" not in op_id and "V1" not in op_id, f"{op_id} is FastAPI's generated form"
    tabled = {doc.operation_id for table in TABLES for doc in table.operations.values()}
    assert set(ids) <= tabled, f"operations missing from a docs table: {set(ids) - tabled}"
    assert _op(*TRANSITIONS_OP)["operationId"] == "applyTaskTransition"
    assert _op("post", "/api/v1/templates")["operationId"] == "createTemplate"
    assert _op("post", "/api/v1/inspections/{inspection_id}/decision")["operationId"] == (
        "decideInspection"
    )


def test_every_tag_in_use_is_declared_once_with_a_description() -> None:
    declared = {tag["name"]: tag.get("description", "") for tag in DOC["tags"]}
    used = {tag for _, _, op in _operations() for tag in op.get("tags", [])}
    assert used == set(declared), (used, set(declared))
    assert all(len(text) > 20 for text in declared.values()), declared


def test_the_transitions_examples_selector_lists_every_user_action_with_its_payload() -> None:
    media = _op(*TRANSITIONS_OP)["requestBody"]["content"]["application/json"]
    examples = media["examples"]
    assert list(examples) == [str(a) for a in USER_ACTIONS]
    for action in USER_ACTIONS:
        example = examples[str(action)]
        assert example["summary"].startswith(f"{action}: ")
        assert example["value"]["action"] == action
        required = {f.name for f in TRANSITIONS[action].payload if f.required}
        assert required <= set(example["value"]["payload"]), action
    assert "reason" in examples["cancel"]["value"]["payload"]
    assert "assign_to" in examples["assign"]["value"]["payload"]


@pytest.mark.parametrize(
    ("method", "path", "names"),
    [
        ("post", "/api/v1/inspections/{inspection_id}/decision", ["accept", "reject"]),
        ("post", "/api/v1/deliverables/{deliverable_id}/signoff", ["approved", "rejected"]),
        ("post", "/api/v1/projects", ["count", "named"]),
        ("post", "/api/v1/templates", ["with_draft", "without_draft"]),
    ],
)
def test_operations_with_several_shapes_offer_one_named_example_each(
    method: str, path: str, names: list[str]
) -> None:
    examples = _op(method, path)["requestBody"]["content"]["application/json"]["examples"]
    assert set(names) <= set(examples)
    assert all(example["summary"] for example in examples.values())


def _media_examples() -> Iterator[tuple[str, dict[str, Any], Any]]:
    """(where, schema, value) of every example on a media type of the document."""
    for method, path, op in _operations():
        contents = [("request", op.get("requestBody", {}).get("content", {}))]
        contents += [(status, r.get("content", {})) for status, r in op["responses"].items()]
        for where, content in contents:
            for media_type, media in content.items():
                label = f"{method.upper()} {path} {where} {media_type}"
                if "example" in media:
                    yield label, media.get("schema", {}), media["example"]
                for name, example in media.get("examples", {}).items():
                    yield f"{label} [{name}]", media.get("schema", {}), example["value"]


def test_every_example_fits_its_schema() -> None:
    checked = 0
    for where, schema, value in _media_examples():
        if not schema or schema.get("format") == "binary":
            continue
        errors = [e.message for e in _validator(schema).iter_errors(value)]
        assert not errors, f"{where}: {errors[:3]}"
        checked += 1
    assert checked > 200


def test_json_bodies_and_answers_all_carry_an_example() -> None:
    for method, path, op in _operations():
        medias = [op.get("requestBody", {}).get("content", {}).get("application/json")]
        medias += [
            r.get("content", {}).get("application/json")
            for status, r in op["responses"].items()
            if status.startswith("2")
        ]
        for media in medias:
            if media is not None:
                assert "example" in media or media.get("examples"), f"{method} {path}"


def test_no_placeholder_values_anywhere() -> None:
    text = json.dumps(DOC)
    assert "additionalProp1" not in text
    for where, _, value in _media_examples():
        assert '"string"' not in json.dumps(value), where


def test_transition_answer_example_has_real_statuses() -> None:
    media = _op(*TRANSITIONS_OP)["responses"]["200"]["content"]["application/json"]
    example = media["example"]
    assert (example["from_status"], example["to_status"]) == ("ready", "in_progress")
    assert example["task"]["status"] == example["to_status"]


def _problem_codes(op: dict[str, Any], status: str) -> list[str]:
    examples = op["responses"][status]["content"][PROBLEM_JSON]["examples"]
    for code, example in examples.items():
        assert example["value"]["code"] == code
        assert example["value"]["status"] == int(status)
        assert example["summary"].startswith(code)
    return list(examples)


def test_each_error_status_shows_the_codes_it_answers() -> None:
    for method, path, op in _operations():
        for status in op["responses"]:
            if status.startswith("4"):
                assert _problem_codes(op, status), f"{method} {path} {status}"
    op = _op(*TRANSITIONS_OP)
    assert _problem_codes(op, "401")[0] == "TOKEN_MISSING"
    assert "ROLE_REQUIRED" in _problem_codes(op, "403")
    assert _problem_codes(op, "404") == ["TASK_NOT_FOUND"]
    assert {"VERSION_CONFLICT", "TASK_BLOCKED"} <= set(_problem_codes(op, "409"))
    assert _problem_codes(op, "412") == ["VERSION_CONFLICT"]
    assert "PAYLOAD_INVALID" in _problem_codes(op, "422")
    payload_invalid = op["responses"]["422"]["content"][PROBLEM_JSON]["examples"]
    assert payload_invalid["PAYLOAD_INVALID"]["value"]["errors"][0]["field"] == "payload.assign_to"
    assert _problem_codes(op, "429") == ["RATE_LIMITED"]


def _source_text() -> str:
    roots = [REPO_ROOT / "libs", REPO_ROOT / "gateway"]
    roots += [
        REPO_ROOT / svc / "src" for svc in ("template-svc", "task-svc", "qc-svc", "notify-svc")
    ]
    skip = {"api_docs.py", "openapi_docs.py"}
    texts = []
    for root in roots:
        for file in root.rglob("*"):
            wanted = file.suffix in {".py", ".template"} and file.name not in skip
            if wanted and not {"node_modules", "tests"} & set(file.parts):
                texts.append(Path(file).read_text())
    return "\n".join(texts)


def test_every_documented_code_is_raised_somewhere_in_the_code() -> None:
    source = _source_text()
    missing = [code for code in CATALOGUE if f'"{code}"' not in source]
    assert not missing, f"documented codes no code raises: {missing}"
