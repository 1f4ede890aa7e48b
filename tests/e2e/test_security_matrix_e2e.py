"""Attacks from outside, generated from the merged OpenAPI document so a new endpoint cannot be
forgotten: another org's ids answer exactly like ids that do not exist, hostile bodies are
refused precisely, and no log line of the run holds a bearer token."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from blueprint_stack import Stack

from .support import World

pytestmark = pytest.mark.e2e

METHODS = {"get", "post", "put", "patch", "delete"}


@pytest.fixture(scope="module")
def owner(stack: Stack) -> World:
    return World(stack)


@pytest.fixture(scope="module")
def intruder(stack: Stack) -> World:
    return World(stack)


@pytest.fixture(scope="module")
def merged(gateway: httpx.Client) -> dict[str, Any]:
    doc: dict[str, Any] = gateway.get("/openapi.json").json()
    return doc


def _example_body(op: dict[str, Any]) -> Any:
    content = op.get("requestBody", {}).get("content", {}).get("application/json")
    if content is None:
        return None
    for example in (content.get("examples") or {}).values():
        if "value" in example:
            return example["value"]
    if "example" in content:
        return content["example"]
    schema = content.get("schema", {})
    examples = schema.get("examples")
    if isinstance(examples, list) and examples:
        return examples[0]
    return {}


def _fill(path: str, values: dict[str, str]) -> str:
    for name, value in values.items():
        path = path.replace("{" + name + "}", value)
    return path


def test_another_orgs_ids_answer_exactly_like_ids_that_do_not_exist(
    merged: dict[str, Any], gateway: httpx.Client, owner: World, intruder: World
) -> None:
    """For every public operation with an id in its path, the intruder (admin of another org)
    gets for the owner's ids the same status and code as for random ids: nothing tells it that
    the owner's resources exist."""
    checked, leaks = 0, []
    admin = intruder.tokens["admin"]
    for path, item in merged["paths"].items():
        params = [p for p in path.split("/") if p.startswith("{")]
        if not params or not path.startswith("/api/"):
            continue
        for method, op in item.items():
            if method not in METHODS:
                continue
            names = [p.strip("{}") for p in params]
            owned = {n: owner.ids[n][0] for n in names}
            random_ids = {
                n: owned[n] if n in {"version", "other"} else str(uuid.uuid4()) for n in names
            }
            body = _example_body(op)
            kw: dict[str, Any] = {"headers": admin}
            if body is not None:
                kw["json"] = body
            theirs = gateway.request(method.upper(), _fill(path, owned), **kw)
            nothing = gateway.request(method.upper(), _fill(path, random_ids), **kw)
            checked += 1
            a = (theirs.status_code, theirs.json().get("code") if theirs.content else None)
            b = (nothing.status_code, nothing.json().get("code") if nothing.content else None)
            if a != b or theirs.status_code < 400:
                leaks.append(f"{method.upper()} {path}: other org's id {a}, random id {b}")
    print(f"tenant matrix: {checked} operations checked")
    assert checked >= 25, checked
    assert not leaks, "\n".join(leaks)


@pytest.mark.parametrize(
    ("path", "make_body"),
    [
        ("/api/v1/projects", lambda: "[" * 100_000 + "]" * 100_000),
        ("/api/v1/templates", lambda: '{"a":' * 50_000 + "1" + "}" * 50_000),
        ("/api/v1/templates/validate", lambda: json.dumps({"nodes": [[[[[[[[[[]]]]]]]]]]})),
        ("/api/v1/projects", lambda: json.dumps({"name": "x" * 2_000_000})),
    ],
)
def test_hostile_bodies_are_refused_with_a_problem_never_a_5xx(
    gateway: httpx.Client, owner: World, path: str, make_body: Any
) -> None:
    resp = gateway.post(
        path,
        content=make_body().encode(),
        headers={**owner.tokens["planner"], "Content-Type": "application/json"},
    )
    assert 400 <= resp.status_code < 500, (resp.status_code, resp.text[:300])
    assert resp.headers["content-type"] == "application/problem+json"


def test_no_log_line_holds_a_bearer_token(
    stack: Stack, owner: World, intruder: World, merged: dict[str, Any]
) -> None:
    """Every log file of the stack, after the requests above: no token, whole or as its
    signature, appears anywhere."""
    secrets = []
    for world in (owner, intruder):
        for headers in world.tokens.values():
            token = headers["Authorization"].removeprefix("Bearer ")
            secrets += [token, token.rsplit(".", 1)[-1]]
    log_dir = Path(stack.config.var_dir) / "log"
    files = [p for p in log_dir.rglob("*") if p.is_file()]
    assert files, f"no log files under {log_dir}"
    found = []
    for path in files:
        text = path.read_text(errors="replace")
        if "Bearer ey" in text:
            found.append(f"{path.name}: a bearer token")
        found += [f"{path.name}: a token of this run" for s in secrets if s in text]
    assert not found, found
