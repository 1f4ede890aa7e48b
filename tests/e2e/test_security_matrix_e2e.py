"""Attacks from outside, generated from the merged OpenAPI document so a new endpoint cannot be
forgotten: another org's ids answer exactly like ids that do not exist, hostile bodies are
refused precisely, and no log line of the run holds a bearer token."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from blueprint_stack import Stack
from blueprint_stack.keys import DEV_AUDIENCE, DEV_ISSUER

from .support import ROLES, World, is_event_stream

pytestmark = pytest.mark.e2e

METHODS = {"get", "post", "put", "patch", "delete"}
# Writes that succeed for any id by design: the id is not a resource of an org. Another org's
# admin gets for the owner's id what it gets for a random one (that is still checked).
WRITES_TO_OWN_ORG = {
    ("put", "/api/v1/notifications/contacts/{user_id}"): "a contact is keyed by the identity "
    "provider's user id within the caller's org; writing one writes the caller's own org",
}


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


def _send(gateway: httpx.Client, method: str, url: str, **kw: Any) -> httpx.Response:
    """One request through the gateway, waiting out its write rate limit (a 429 is the
    gateway's answer to the pace of this test, not the service's to the request)."""
    for _ in range(100):
        resp = gateway.request(method, url, **kw)
        if resp.status_code != 429:
            return resp
        time.sleep(float(resp.headers.get("retry-after", "0.2")))
    raise AssertionError(f"{method} {url}: still rate limited")


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
            theirs = _send(gateway, method.upper(), _fill(path, owned), **kw)
            nothing = _send(gateway, method.upper(), _fill(path, random_ids), **kw)
            checked += 1
            a = (theirs.status_code, theirs.json().get("code") if theirs.content else None)
            b = (nothing.status_code, nothing.json().get("code") if nothing.content else None)
            own_org_write = (method, path) in WRITES_TO_OWN_ORG
            if a != b or (theirs.status_code < 400 and not own_org_write):
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


def _forged_tokens(keys_dir: Path, org_id: uuid.UUID) -> dict[str, str]:
    """Tokens an attacker could make, each wrong in one way."""
    private = (keys_dir / "private.pem").read_bytes()
    public = (keys_dir / "public.pem").read_bytes()
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    now = int(time.time())
    claims = {
        "sub": str(uuid.uuid4()),
        "org_id": str(org_id),
        "roles": ["admin"],
        "iss": DEV_ISSUER,
        "aud": DEV_AUDIENCE,
        "iat": now,
        "exp": now + 600,
    }

    def b64(raw: bytes) -> str:
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    def unsigned(header: dict[str, Any]) -> str:
        return f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}."

    hs_head = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    hs_body = b64(json.dumps(claims).encode())
    hs_sig = b64(hmac.new(public, f"{hs_head}.{hs_body}".encode(), hashlib.sha256).digest())
    return {
        "alg none": unsigned({"alg": "none", "typ": "JWT"}),
        "HS256 signed with the public key": f"{hs_head}.{hs_body}.{hs_sig}",
        "expired": jwt.encode({**claims, "exp": now - 3600}, private, algorithm="RS256"),
        "wrong audience": jwt.encode({**claims, "aud": "another-api"}, private, algorithm="RS256"),
        "wrong issuer": jwt.encode({**claims, "iss": "evil"}, private, algorithm="RS256"),
        "another issuer's key": jwt.encode(claims, other_key, algorithm="RS256"),
        "signature stripped": jwt.encode(claims, private, algorithm="RS256").rsplit(".", 1)[0]
        + ".",
        "not yet valid": jwt.encode({**claims, "nbf": now + 3600}, private, algorithm="RS256"),
    }


def test_forged_tokens_are_401_problems_everywhere(
    stack: Stack, gateway: httpx.Client, owner: World
) -> None:
    paths = [
        f"/api/v1/templates/{owner.ids['template_id'][0]}",
        f"/api/v1/projects/{owner.ids['project_id'][0]}",
        f"/api/v1/tasks/{owner.ids['task_id'][0]}",
        f"/api/v1/inspections/{owner.ids['inspection_id'][0]}",
    ]
    forged = _forged_tokens(Path(stack.config.keys_dir), owner.org_id)
    for name, token in forged.items():
        for path in paths:
            resp = gateway.get(path, headers={"Authorization": f"Bearer {token}"})
            assert resp.status_code == 401, (name, path, resp.text)
            assert resp.headers["content-type"] == "application/problem+json"


def test_a_token_without_an_org_reads_nothing(
    stack: Stack, gateway: httpx.Client, owner: World
) -> None:

    private = (Path(stack.config.keys_dir) / "private.pem").read_bytes()
    now = int(time.time())
    token = jwt.encode(
        {
            "sub": str(uuid.uuid4()),
            "roles": ["admin"],
            "iss": DEV_ISSUER,
            "aud": DEV_AUDIENCE,
            "iat": now,
            "exp": now + 600,
        },
        private,
        algorithm="RS256",
    )
    resp = gateway.get(
        f"/api/v1/projects/{owner.ids['project_id'][0]}",
        headers={"Authorization": f"Bearer {token}"},
    )
    assert resp.status_code in {401, 403}, resp.text
    assert resp.headers["content-type"] == "application/problem+json"


def test_every_operation_answers_each_role_as_its_declared_roles_say(
    merged: dict[str, Any], gateway: httpx.Client, owner: World
) -> None:
    """Operation x role, from the merged document's `x-roles` (derived from each route's
    dependencies): a role outside the list gets 403 ROLE_REQUIRED and changes nothing; a role
    inside it is never refused for its role. Task actions open to every user are then decided
    by the state machine's own role table (docs/fsm.md, tested cell by cell)."""
    cells, wrong = 0, []
    for path, item in merged["paths"].items():
        if not path.startswith("/api/"):
            continue
        names = [p.strip("{}") for p in path.split("/") if p.startswith("{")]
        url = _fill(path, {n: owner.ids[n][0] for n in names})
        for method, op in item.items():
            if method not in METHODS or is_event_stream(op):
                continue
            allowed = set(op.get("x-roles") or ROLES)
            body = _example_body(op)
            # Refused roles first: their requests must change nothing for the others.
            for role in sorted(ROLES, key=lambda r: r in allowed):
                kw: dict[str, Any] = {"headers": owner.tokens[role]}
                if body is not None:
                    kw["json"] = body
                resp = _send(gateway, method.upper(), url, **kw)
                is_problem = resp.headers.get("content-type") == "application/problem+json"
                code = resp.json().get("code") if is_problem else None
                refused = resp.status_code == 403 and code == "ROLE_REQUIRED"
                cells += 1
                if refused != (role not in allowed):
                    wrong.append(f"{method.upper()} {path} as {role}: {resp.status_code} {code}")
    print(f"role matrix: {cells} cells checked")
    assert cells >= 40 * len(ROLES), cells
    assert not wrong, "\n".join(wrong)
