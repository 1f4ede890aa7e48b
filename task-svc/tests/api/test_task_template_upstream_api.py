"""When template-svc cannot answer: a clear 503 problem after a few tries, and nothing created."""

from __future__ import annotations

import asyncio
import socket
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from servicekit.testing.plugin import JwtKeys
from task_svc.projects.models import Project
from task_svc.templates_client import TemplatesClient

from ..support.templates import planner_headers


class Answering500:
    """A tiny real HTTP server that answers every request with 500 and counts them."""

    def __init__(self) -> None:
        self.requests = 0
        self.server: asyncio.Server | None = None

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while (await reader.readline()) not in (b"\r\n", b""):
            pass
        self.requests += 1
        body = b'{"detail":"boom"}'
        writer.write(
            b"HTTP/1.1 500 Internal Server Error\r\nContent-Type: application/json\r\n"
            b"Content-Length: " + str(len(body)).encode() + b"\r\nConnection: close\r\n\r\n" + body
        )
        await writer.drain()
        writer.close()

    @property
    def url(self) -> str:
        assert self.server is not None
        port = self.server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"


@pytest.fixture
async def failing_server() -> AsyncIterator[Answering500]:
    srv = Answering500()
    srv.server = await asyncio.start_server(srv.handle, "127.0.0.1", 0)
    try:
        yield srv
    finally:
        srv.server.close()
        await srv.server.wait_closed()


def closed_port() -> int:
    """A local port nothing listens on (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def request_body() -> dict[str, Any]:
    return {
        "name": "P",
        "template_id": str(uuid.uuid4()),
        "deliverables": 1,
        "start_at": "2026-12-01T08:00:00Z",
    }


async def count_projects(session: AsyncSession, org: uuid.UUID) -> int:
    stmt = select(func.count()).select_from(Project).where(Project.org_id == org)
    return int(await session.scalar(stmt) or 0)


async def test_connection_refused_is_503(
    client: httpx.AsyncClient, app: Any, jwt_keys: JwtKeys, session: AsyncSession
) -> None:
    app.state.templates_client = TemplatesClient(
        f"http://127.0.0.1:{closed_port()}",
        token=app.state.service_tokens.token,
        attempts=2,
        backoff_seconds=0,
    )
    org = uuid.uuid4()
    resp = await client.post(
        "/api/v1/projects", json=request_body(), headers=planner_headers(jwt_keys, org)
    )
    assert resp.status_code == 503, resp.text
    problem = resp.json()
    assert problem["code"] == "TEMPLATE_SVC_UNAVAILABLE"
    assert "after 2 attempts" in problem["detail"] and "ConnectError" in problem["detail"]
    assert resp.headers["retry-after"] == "5"
    assert await count_projects(session, org) == 0


async def test_server_errors_are_retried_then_503(
    client: httpx.AsyncClient,
    app: Any,
    jwt_keys: JwtKeys,
    session: AsyncSession,
    failing_server: Answering500,
) -> None:
    app.state.templates_client = TemplatesClient(
        failing_server.url, token=app.state.service_tokens.token, attempts=3, backoff_seconds=0
    )
    org = uuid.uuid4()
    resp = await client.post(
        "/api/v1/projects", json=request_body(), headers=planner_headers(jwt_keys, org)
    )
    assert resp.status_code == 503, resp.text
    assert resp.json()["code"] == "TEMPLATE_SVC_UNAVAILABLE"
    assert "HTTP 500" in resp.json()["detail"]
    assert failing_server.requests == 3
    assert await count_projects(session, org) == 0
