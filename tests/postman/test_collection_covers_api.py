"""The Postman collection requests every public operation of the merged OpenAPI document at
least once, and stays what its generator writes."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path
from typing import Any

from blueprint_stack.openapi import merge, service_documents

_spec = importlib.util.spec_from_file_location(
    "build_collection", Path(__file__).with_name("build_collection.py")
)
assert _spec is not None and _spec.loader is not None
build_collection = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(build_collection)

# Operations the collection does not request yet, each with why; nothing else may be missing.
NOT_YET_REQUESTED: dict[str, str] = {
    "streamProjectEvents": "an event stream never ends, so a collection run cannot wait for "
    "its answer; tests/e2e and the CLI's watch test read it",
    "createStreamTicket": "tickets exist for the stream, which the collection cannot read",
}


def _requests(items: list[dict[str, Any]]) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for item in items:
        if "item" in item:
            out += _requests(item["item"])
        else:
            url = item["request"]["url"]["raw"].replace("{{base_url}}", "").split("?")[0]
            out.append((item["request"]["method"].lower(), url))
    return out


def _matches(template: str, path: str) -> bool:
    pattern = re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(template))
    return re.fullmatch(pattern, path) is not None


def _operation_of(document: dict[str, Any], method: str, path: str) -> str | None:
    """The operation a request calls: a literal path before a templated one (tasks/fsm is not
    tasks/{task_id})."""
    candidates = [
        (template.count("{"), item[method]["operationId"])
        for template, item in document["paths"].items()
        if method in item and _matches(template, path)
    ]
    return min(candidates)[1] if candidates else None


def test_every_public_operation_is_requested() -> None:
    document = merge(service_documents())
    collection = build_collection.collection()
    calls = [(m, p) for m, p in _requests(collection["item"]) if p.startswith("/api/")]
    requested = {_operation_of(document, m, p) for m, p in calls}
    expected = {op["operationId"] for item in document["paths"].values() for op in item.values()}
    missing = expected - requested - set(NOT_YET_REQUESTED)
    assert not missing, f"operations no request of the collection calls: {sorted(missing)}"
    assert None not in requested, "a request calls a path the document does not have"


def test_the_committed_collection_is_what_the_generator_writes() -> None:
    written = json.loads(build_collection.COLLECTION.read_text())
    assert written == build_collection.collection(), (
        "run `uv run python tests/postman/build_collection.py` and commit the result"
    )
    environment = json.loads(build_collection.ENVIRONMENT.read_text())
    assert environment == build_collection.environment()


def test_every_request_asserts_its_status() -> None:
    def walk(items: list[dict[str, Any]]) -> None:
        for item in items:
            if "item" in item:
                walk(item["item"])
                continue
            script = "\n".join(
                line for e in item["event"] if e["listen"] == "test" for line in e["script"]["exec"]
            )
            assert "pm.response.to.have.status(" in script, item["name"]

    walk(build_collection.collection()["item"])
