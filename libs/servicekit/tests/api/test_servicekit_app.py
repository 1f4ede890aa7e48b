"""The platform conventions every service inherits: problem+json, auth, request ids, metrics."""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import AsyncIterator
from typing import Annotated, Any

import httpx
import jwt
import pytest
from fastapi import APIRouter, Depends, FastAPI
from prometheus_client.parser import text_string_to_metric_families
from pydantic import BaseModel, ConfigDict

from servicekit.app import build_app
from servicekit.auth import Principal, ServiceCaller, require_roles
from servicekit.devstack.tokens import mint_token
from servicekit.errors import NotFound
from servicekit.settings import BaseServiceSettings
from servicekit.testing.keys import generate_rsa_pair
from servicekit.testing.plugin import JwtKeys

router = APIRouter()
Viewer = Annotated[Principal, Depends(require_roles("viewer"))]
Planner = Annotated[Principal, Depends(require_roles("planner"))]


class ThingCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    size: int


@router.get("/api/v1/things/{thing_id}")
async def read_thing(thing_id: uuid.UUID, who: Viewer) -> Any:
    if thing_id.int == 0:
        raise NotFound(f"thing {thing_id} does not exist")
    return {"id": str(thing_id), "org_id": str(who.org_id), "roles": sorted(who.roles)}


@router.post("/api/v1/things", status_code=201)
async def create_thing(body: ThingCreate, who: Planner) -> Any:
    return {"name": body.name}


@router.get("/api/v1/boom")
async def boom() -> Any:
    raise RuntimeError("secret internals must not leak")


@router.get("/internal/ping")
async def internal_ping(caller: ServiceCaller) -> Any:
    return {"caller": caller.sub}


@pytest.fixture
async def kit_app(jwt_keys: JwtKeys) -> AsyncIterator[FastAPI]:
    settings = BaseServiceSettings(
        service_name="kit-test",
        database_url="postgresql+asyncpg://nobody@127.0.0.1:1/none",
        redis_url="redis://127.0.0.1:1/0",
        jwt_public_key_file=jwt_keys.public_key_file,
        jwt_issuer=jwt_keys.issuer,
        jwt_audience=jwt_keys.audience,
    )
    app = build_app(settings, title="kit", routers=[router])
    async with app.router.lifespan_context(app):
        yield app


@pytest.fixture
async def kit(kit_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=kit_app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://kit") as c:
        yield c


def assert_problem(resp: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = resp.json()
    assert body["status"] == status
    assert body["code"] == code
    assert body["type"].startswith("/problems/")
    assert body["title"] and body["detail"]
    return body


THING = f"/api/v1/things/{uuid.uuid4()}"


async def test_valid_token_passes(kit: httpx.AsyncClient, jwt_keys: JwtKeys) -> None:
    resp = await kit.get(THING, headers=jwt_keys.headers(["viewer"]))
    assert resp.status_code == 200
    assert resp.json()["roles"] == ["viewer"]


async def test_missing_token_is_401(kit: httpx.AsyncClient) -> None:
    body = assert_problem(await kit.get(THING), 401, "TOKEN_MISSING")
    assert "Bearer" in body["detail"]


async def test_expired_token_is_401(kit: httpx.AsyncClient, jwt_keys: JwtKeys) -> None:
    token = jwt_keys.token(["viewer"], ttl=-120)
    resp = await kit.get(THING, headers={"Authorization": f"Bearer {token}"})
    assert_problem(resp, 401, "TOKEN_EXPIRED")


@pytest.mark.parametrize(
    ("override", "fragment"),
    [({"issuer": "someone-else"}, "issuer"), ({"audience": "other-app"}, "audience")],
)
async def test_wrong_issuer_or_audience_is_401(
    kit: httpx.AsyncClient, jwt_keys: JwtKeys, override: dict[str, str], fragment: str
) -> None:
    token = jwt_keys.token(["viewer"], **override)
    body = assert_problem(
        await kit.get(THING, headers={"Authorization": f"Bearer {token}"}), 401, "TOKEN_INVALID"
    )
    assert fragment in body["detail"]


async def test_token_signed_by_another_key_is_401(kit: httpx.AsyncClient) -> None:
    other_private, _ = generate_rsa_pair()
    token = mint_token(
        other_private,
        sub=str(uuid.uuid4()),
        roles=["viewer"],
        org_id=uuid.uuid4(),
        issuer="blueprint-test",
    )
    body = assert_problem(
        await kit.get(THING, headers={"Authorization": f"Bearer {token}"}), 401, "TOKEN_INVALID"
    )
    assert "signature" in body["detail"]


async def test_alg_none_is_401(kit: httpx.AsyncClient) -> None:
    claims = {
        "sub": str(uuid.uuid4()),
        "org_id": str(uuid.uuid4()),
        "roles": ["admin"],
        "iss": "blueprint-test",
        "aud": "blueprint",
        "exp": int(time.time()) + 600,
    }
    token = jwt.encode(claims, key=None, algorithm="none")
    body = assert_problem(
        await kit.get(THING, headers={"Authorization": f"Bearer {token}"}), 401, "TOKEN_INVALID"
    )
    assert "RS256" in body["detail"]


async def test_hmac_token_with_public_key_as_secret_is_401(
    kit: httpx.AsyncClient, jwt_keys: JwtKeys
) -> None:
    claims = {
        "sub": str(uuid.uuid4()),
        "org_id": str(uuid.uuid4()),
        "roles": ["admin"],
        "iss": "blueprint-test",
        "aud": "blueprint",
        "exp": int(time.time()) + 600,
    }
    header = json.dumps({"alg": "HS256", "typ": "JWT"}).encode()
    import base64
    import hashlib
    import hmac

    def b64(raw: bytes) -> str:
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    signing_input = f"{b64(header)}.{b64(json.dumps(claims).encode())}"
    sig = hmac.new(jwt_keys.public_key_file.read_bytes(), signing_input.encode(), hashlib.sha256)
    token = f"{signing_input}.{b64(sig.digest())}"
    assert_problem(
        await kit.get(THING, headers={"Authorization": f"Bearer {token}"}), 401, "TOKEN_INVALID"
    )


async def test_garbage_and_wrong_scheme_are_401(kit: httpx.AsyncClient) -> None:
    assert_problem(
        await kit.get(THING, headers={"Authorization": "Bearer not.a.jwt"}), 401, "TOKEN_INVALID"
    )
    assert_problem(
        await kit.get(THING, headers={"Authorization": "Basic dXNlcjpwdw=="}), 401, "TOKEN_MISSING"
    )


async def test_missing_role_is_403(kit: httpx.AsyncClient, jwt_keys: JwtKeys) -> None:
    resp = await kit.post(
        "/api/v1/things", json={"name": "a", "size": 1}, headers=jwt_keys.headers(["viewer"])
    )
    body = assert_problem(resp, 403, "ROLE_REQUIRED")
    assert "planner" in body["detail"]


async def test_user_token_cannot_call_internal_and_service_token_can(
    kit: httpx.AsyncClient, jwt_keys: JwtKeys
) -> None:
    resp = await kit.get("/internal/ping", headers=jwt_keys.headers(["admin"]))
    assert_problem(resp, 403, "SERVICE_TOKEN_REQUIRED")
    ok = await kit.get(
        "/internal/ping", headers={"Authorization": f"Bearer {jwt_keys.service_token('task-svc')}"}
    )
    assert ok.status_code == 200
    assert ok.json() == {"caller": "service:task-svc"}


async def test_not_found_is_a_problem(kit: httpx.AsyncClient, jwt_keys: JwtKeys) -> None:
    resp = await kit.get(f"/api/v1/things/{uuid.UUID(int=0)}", headers=jwt_keys.headers(["viewer"]))
    body = assert_problem(resp, 404, "NOT_FOUND")
    assert "does not exist" in body["detail"]
    assert body["instance"] == f"/api/v1/things/{uuid.UUID(int=0)}"


async def test_validation_lists_every_offending_field(
    kit: httpx.AsyncClient, jwt_keys: JwtKeys
) -> None:
    resp = await kit.post(
        "/api/v1/things",
        json={"size": "big", "colour": "red"},
        headers=jwt_keys.headers(["planner"]),
    )
    body = assert_problem(resp, 422, "VALIDATION_FAILED")
    fields = {e["field"]: e for e in body["errors"]}
    assert set(fields) == {"name", "size", "colour"}
    assert fields["name"]["message"] == "required field is missing"
    assert fields["colour"]["type"] == "extra_forbidden"
    assert "integer" in fields["size"]["message"]
    assert "detail" in body and "loc" not in json.dumps(body)


async def test_path_parameter_validation_names_the_parameter(
    kit: httpx.AsyncClient, jwt_keys: JwtKeys
) -> None:
    resp = await kit.get("/api/v1/things/not-a-uuid", headers=jwt_keys.headers(["viewer"]))
    body = assert_problem(resp, 422, "VALIDATION_FAILED")
    assert body["errors"][0]["in"] == "path"
    assert body["errors"][0]["field"] == "thing_id"


async def test_malformed_json_is_400(kit: httpx.AsyncClient, jwt_keys: JwtKeys) -> None:
    resp = await kit.post(
        "/api/v1/things",
        content=b'{"name": ',
        headers={**jwt_keys.headers(["planner"]), "Content-Type": "application/json"},
    )
    assert_problem(resp, 400, "BODY_NOT_JSON")


async def test_crash_is_a_500_problem_without_internals(
    kit: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR):
        resp = await kit.get("/api/v1/boom", headers={"X-Request-ID": "crash-1"})
    body = assert_problem(resp, 500, "INTERNAL_ERROR")
    assert "secret internals" not in resp.text
    assert "Traceback" not in resp.text
    assert body["request_id"] == "crash-1"
    assert resp.headers["x-request-id"] == "crash-1"
    assert any("secret internals" in (r.exc_text or str(r.exc_info)) for r in caplog.records)


async def test_method_not_allowed_is_a_problem(kit: httpx.AsyncClient) -> None:
    assert_problem(await kit.delete("/api/v1/boom"), 405, "METHOD_NOT_ALLOWED")


async def test_request_id_is_kept_or_generated(kit: httpx.AsyncClient) -> None:
    kept = await kit.get("/healthz", headers={"X-Request-ID": "abc"})
    assert kept.headers["x-request-id"] == "abc"
    generated = await kit.get("/healthz")
    assert len(generated.headers["x-request-id"]) == 32
    unsafe = await kit.get("/healthz", headers={"X-Request-ID": 'a b"<script>'})
    assert unsafe.headers["x-request-id"] != 'a b"<script>'


async def test_log_lines_are_json_with_request_id(
    kit: httpx.AsyncClient, jwt_keys: JwtKeys, capsys: pytest.CaptureFixture[str]
) -> None:
    await kit.get(THING, headers={**jwt_keys.headers(["viewer"]), "X-Request-ID": "log-probe-7"})
    lines = [
        json.loads(line) for line in capsys.readouterr().out.splitlines() if "log-probe-7" in line
    ]
    assert lines, "the access log line carries the request id"
    line = lines[-1]
    assert line["service"] == "kit-test"
    assert line["request_id"] == "log-probe-7"
    assert line["route"] == "/api/v1/things/{thing_id}"
    assert line["status"] == 200
    assert line["org_id"] == "00000000-0000-4000-8000-00000000000a"
    assert line["actor_id"] == "00000000-0000-4000-8000-00000000000b"
    assert "Bearer" not in json.dumps(lines)


async def test_metrics_count_by_route_template_not_raw_path(
    kit: httpx.AsyncClient, jwt_keys: JwtKeys
) -> None:
    for _ in range(2):
        await kit.get(f"/api/v1/things/{uuid.uuid4()}", headers=jwt_keys.headers(["viewer"]))
    body = (await kit.get("/metrics")).text
    assert 'route="/api/v1/things/{thing_id}"' in body
    assert "http_requests_in_flight" in body
    assert "http_request_duration_seconds_bucket" in body
    for line in body.splitlines():
        if line.startswith("http_requests_total") and "kit-test" in line:
            assert "/api/v1/things/0" not in line


async def test_readyz_reports_what_is_unreachable(kit: httpx.AsyncClient) -> None:
    body = assert_problem(await kit.get("/readyz"), 503, "NOT_READY")
    assert body["checks"]["database"].startswith("failed")
    assert body["checks"]["redis"].startswith("failed")


async def test_made_up_methods_count_as_other_and_the_otel_histogram_has_its_labels(
    kit: httpx.AsyncClient,
) -> None:
    """A client inventing methods (FOO1, BAR2, ...) must not create a series per method."""
    for method in ("FOO1", "BAR2", "BAZ3"):
        await kit.request(method, "/api/v1/things")
    await kit.get("/api/v1/boom")
    families = {f.name: f for f in text_string_to_metric_families((await kit.get("/metrics")).text)}
    methods = {
        s.labels["method"]
        for s in families["http_requests"].samples
        if s.labels.get("service") == "kit-test"
    }
    assert "_OTHER" in methods
    assert not methods & {"FOO1", "BAR2", "BAZ3"}, methods
    otel = [
        s.labels
        for s in families["http_server_request_duration_seconds"].samples
        if s.name.endswith("_count") and s.labels.get("service") == "kit-test"
    ]
    assert {
        "service": "kit-test",
        "http_request_method": "GET",
        "http_route": "/api/v1/boom",
        "http_response_status_code": "500",
    } in otel
    assert any(lbl["http_request_method"] == "_OTHER" for lbl in otel)


async def _problems(kit: httpx.AsyncClient, code: str, status: str) -> float:
    labels = {"service": "kit-test", "code": code, "status": status}
    for family in text_string_to_metric_families((await kit.get("/metrics")).text):
        for sample in family.samples:
            if sample.name == "http_problems_total" and sample.labels == labels:
                return sample.value
    return 0.0


async def test_problem_answers_are_counted_by_code(
    kit: httpx.AsyncClient, jwt_keys: JwtKeys
) -> None:
    before = await _problems(kit, "VALIDATION_FAILED", "422")
    r = await kit.post("/api/v1/things", json={"name": 3}, headers=jwt_keys.headers(["planner"]))
    assert r.status_code == 422
    assert await _problems(kit, "VALIDATION_FAILED", "422") == before + 1
