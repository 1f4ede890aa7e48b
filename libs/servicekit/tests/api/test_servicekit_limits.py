"""What every service refuses before its routes run, and how it answers the unexpected:
oversized headers and bodies, NUL characters, values the database cannot store, and a 500 that
must not cost the next request on the same kept-alive connection."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import orjson
import pytest
import uvicorn
from fastapi import APIRouter, Depends, FastAPI
from pydantic import BaseModel, ConfigDict

from servicekit.app import build_app
from servicekit.auth import Principal, require_roles
from servicekit.devstack.ports import free_port
from servicekit.settings import BaseServiceSettings
from servicekit.testing.plugin import JwtKeys, PgServer

router = APIRouter()


class Note(BaseModel):
    model_config = ConfigDict(extra="forbid")
    title: str
    lines: list[str] = []


@router.post("/api/v1/notes", status_code=201)
async def create_note(body: Note, who: Principal = Depends(require_roles("planner"))) -> Any:
    return {"title": body.title, "lines": body.lines}


@router.get("/api/v1/notes")
async def search_notes(text: str = "") -> Any:
    return {"text": text}


@router.get("/api/v1/crash")
async def crash() -> Any:
    raise RuntimeError("an unexpected failure")


@router.get("/api/v1/stored-number")
async def stored_number(n: int = 0) -> Any:
    conn = await asyncpg.connect(STATE["dsn"])
    try:
        return {"n": await conn.fetchval("SELECT $1::int4", n)}
    finally:
        await conn.close()


@router.post("/api/v1/locks")
async def take_locks(first: int, second: int) -> Any:
    """Two advisory locks in the order given, a pause between: two requests in opposite
    orders deadlock, and PostgreSQL rolls one of them back."""
    conn = await asyncpg.connect(STATE["dsn"])
    try:
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", first)
            await asyncio.sleep(0.3)
            await conn.execute("SELECT pg_advisory_xact_lock($1)", second)
        return {"locked": [first, second]}
    finally:
        await conn.close()


STATE: dict[str, str] = {}


def make_app(jwt_keys: JwtKeys, **limits: int) -> FastAPI:
    settings = BaseServiceSettings(
        service_name="limits-test",
        database_url="postgresql+asyncpg://nobody@127.0.0.1:1/none",
        redis_url="redis://127.0.0.1:1/0",
        jwt_public_key_file=jwt_keys.public_key_file,
        jwt_issuer=jwt_keys.issuer,
        jwt_audience=jwt_keys.audience,
        **limits,
    )
    return build_app(settings, title="limits", routers=[router])


@pytest.fixture
async def client(jwt_keys: JwtKeys) -> AsyncIterator[httpx.AsyncClient]:
    app = make_app(jwt_keys, max_request_header_bytes=8192, max_request_body_bytes=4096)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://svc") as c:
            yield c


def problem(resp: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = resp.json()
    assert (body["status"], body["code"]) == (status, code)
    return body


async def test_limits_oversized_headers_are_431(client: httpx.AsyncClient) -> None:
    token = "x" * 100_000
    resp = await client.get("/api/v1/notes", headers={"Authorization": f"Bearer {token}"})
    body = problem(resp, 431, "REQUEST_HEADERS_TOO_LARGE")
    assert body["limit"] == 8192


async def test_limits_oversized_bodies_are_413_declared_or_streamed(
    client: httpx.AsyncClient, jwt_keys: JwtKeys
) -> None:
    headers = jwt_keys.headers(["planner"])
    big = {"title": "t", "lines": ["x" * 100] * 100}
    problem(await client.post("/api/v1/notes", json=big, headers=headers), 413, "PAYLOAD_TOO_LARGE")

    async def chunks() -> AsyncIterator[bytes]:
        raw = orjson.dumps(big)
        for i in range(0, len(raw), 1000):
            yield raw[i : i + 1000]

    resp = await client.post(
        "/api/v1/notes",
        content=chunks(),
        headers={**headers, "Content-Type": "application/json"},
    )
    problem(resp, 413, "PAYLOAD_TOO_LARGE")
    small = {"title": "t", "lines": ["x"] * 10}
    assert (await client.post("/api/v1/notes", json=small, headers=headers)).status_code == 201


async def test_limits_nul_in_body_names_each_field(
    client: httpx.AsyncClient, jwt_keys: JwtKeys
) -> None:
    headers = jwt_keys.headers(["planner"])
    resp = await client.post(
        "/api/v1/notes", json={"title": "a\u0000b", "lines": ["ok", "c\x00"]}, headers=headers
    )
    body = problem(resp, 422, "VALIDATION_FAILED")
    fields = sorted(e["field"] for e in body["errors"])
    assert fields == ["lines[1]", "title"]
    assert all(e["in"] == "body" and "NUL" in e["message"] for e in body["errors"])


async def test_limits_an_escaped_backslash_before_u0000_is_plain_text(
    client: httpx.AsyncClient, jwt_keys: JwtKeys
) -> None:
    resp = await client.post(
        "/api/v1/notes", json={"title": "C:\\u0000"}, headers=jwt_keys.headers(["planner"])
    )
    assert resp.status_code == 201, resp.text
    assert resp.json()["title"] == "C:\\u0000"


async def test_limits_nul_in_query_and_path(client: httpx.AsyncClient) -> None:
    body = problem(await client.get("/api/v1/notes?text=a%00b"), 422, "VALIDATION_FAILED")
    assert body["errors"][0]["in"] == "query"
    assert body["errors"][0]["field"] == "text"
    body = problem(await client.get("/api/v1/notes/a%00b"), 422, "VALIDATION_FAILED")
    assert body["errors"][0]["in"] == "path"


async def test_limits_a_value_the_database_cannot_store_is_422(
    client: httpx.AsyncClient, pg_server: PgServer
) -> None:
    STATE["dsn"] = pg_server.admin_dsn
    assert (await client.get("/api/v1/stored-number?n=7")).json() == {"n": 7}
    problem(await client.get("/api/v1/stored-number?n=2147483648"), 422, "VALUE_OUT_OF_RANGE")


async def test_a_deadlock_is_a_503_to_send_again_never_a_500(
    client: httpx.AsyncClient, pg_server: PgServer
) -> None:
    STATE["dsn"] = pg_server.admin_dsn
    answers = await asyncio.gather(
        client.post("/api/v1/locks?first=71&second=72"),
        client.post("/api/v1/locks?first=72&second=71"),
    )
    assert sorted(a.status_code for a in answers) == [200, 503]
    refused = next(a for a in answers if a.status_code == 503)
    problem(refused, 503, "WRITE_COLLISION")
    assert refused.headers["retry-after"] == "1"
    # Rolled back whole: the same request again goes through.
    again = await client.post(refused.request.url.raw_path.decode())
    assert again.status_code == 200


def _request(path: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: svc\r\nConnection: keep-alive\r\n\r\n".encode()


def _read_response(sock: socket.socket) -> tuple[int, bytes]:
    """One HTTP/1.1 response with a Content-Length body: (status, body)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("the server closed the connection")
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    fields = (line.partition(": ") for line in lines)
    length = next(int(v) for k, _, v in fields if k.lower() == "content-length")
    while len(rest) < length:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("the server closed the connection")
        rest += chunk
    return int(lines[0].split()[1]), rest[:length]


async def test_limits_a_500_keeps_the_connection_for_the_next_request(jwt_keys: JwtKeys) -> None:
    """A proxy pools connections to the service: after a 500 the same connection must still
    carry the next request (a closed one would turn that request into the proxy's 502)."""
    app = make_app(jwt_keys)
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve())
    try:
        while not server.started:
            await asyncio.sleep(0.01)

        def exchange() -> list[tuple[int, bytes]]:
            with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
                out = []
                for path in ("/api/v1/crash", "/api/v1/notes?text=after", "/api/v1/crash"):
                    sock.sendall(_request(path))
                    out.append(_read_response(sock))
                return out

        answers = await asyncio.to_thread(exchange)
    finally:
        server.should_exit = True
        await serving
    assert [status for status, _ in answers] == [500, 200, 500]
    assert orjson.loads(answers[0][1])["code"] == "INTERNAL_ERROR"
    assert orjson.loads(answers[1][1]) == {"text": "after"}
