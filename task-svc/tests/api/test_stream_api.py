"""The live event stream over real HTTP: task-svc served by uvicorn on a free port, events put
on real Redis streams the way the relay writes them (one `event` field of CloudEvents JSON)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis
import uvicorn
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from servicekit.db import Database
from servicekit.devstack.ports import free_port
from servicekit.jsonutil import dumps, loads
from servicekit.testing.plugin import JwtKeys
from task_svc.main import create_app

from ..support.taskgraph import ORG, OTHER_ORG, insert_project


@dataclass
class Live:
    url: str
    prefix: str
    redis: aioredis.Redis
    project_id: uuid.UUID
    headers: dict[str, str]

    async def publish(
        self,
        project_id: uuid.UUID | None = None,
        kind: str = "task.assigned",
        producer: str = "task-svc",
        org_id: uuid.UUID = ORG,
    ) -> str:
        event = {
            "specversion": "1.0",
            "id": str(uuid.uuid4()),
            "source": producer,
            "type": kind,
            "data": {"project_id": str(project_id or self.project_id), "org_id": str(org_id)},
        }
        entry = await self.redis.xadd(f"{self.prefix}:{producer}", {"event": dumps(event)})
        return str(entry.decode())


@pytest.fixture
async def live(
    settings: Any,
    engine: AsyncEngine,
    db_conn: AsyncConnection,
    redis_url: str,
    jwt_keys: JwtKeys,
) -> AsyncIterator[Live]:
    prefix = f"t{uuid.uuid4().hex[:10]}"
    app = create_app(
        settings.model_copy(
            update={
                "events_stream_prefix": prefix,
                "stream_heartbeat_seconds": 0.3,
                "stream_read_block_ms": 200,
            }
        ),
        database=Database(engine, bind=db_conn),
    )
    project_id = await insert_project(db_conn, org_id=ORG)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            app, host="127.0.0.1", port=port, log_config=None, timeout_graceful_shutdown=1
        )
    )
    serving = asyncio.create_task(server.serve())
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline and not serving.done(), "uvicorn did not start"
        await asyncio.sleep(0.02)
    client = aioredis.from_url(redis_url)
    try:
        yield Live(
            f"http://127.0.0.1:{port}",
            prefix,
            client,
            project_id,
            jwt_keys.headers(["viewer"], org_id=ORG),
        )
    finally:
        server.should_exit = True
        await serving
        await client.aclose()


async def read_events(
    resp: httpx.Response, until: Any, timeout: float = 20
) -> list[dict[str, Any]]:
    """SSE frames (event, id, data, comments) until `until(frames)` holds."""
    frames: list[dict[str, Any]] = []
    current: dict[str, Any] = {}
    lines = resp.extensions.get("sse_lines")
    if lines is None:  # one line iterator per response: the body can be read only once
        lines = resp.extensions["sse_lines"] = resp.aiter_lines()
    async with asyncio.timeout(timeout):
        async for line in lines:
            if line == "":
                if current:
                    frames.append(current)
                    current = {}
                    if until(frames):
                        return frames
                continue
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "":
                current["comment"] = value
            else:
                current[name] = value
    raise AssertionError(f"the stream ended after {frames}")


def kinds(frames: list[dict[str, Any]]) -> list[str]:
    return [f.get("event", "comment") for f in frames]


async def test_a_client_gets_its_projects_events_with_resumable_ids_and_heartbeats(
    live: Live,
) -> None:
    async with httpx.AsyncClient(base_url=live.url, timeout=30) as http:
        path = f"/api/v1/projects/{live.project_id}/stream"
        async with http.stream("GET", path, headers=live.headers) as resp:
            assert resp.status_code == 200
            assert resp.headers["content-type"].startswith("text/event-stream")
            ready = await read_events(resp, lambda f: True)
            assert ready[0]["event"] == "ready"
            await live.publish(project_id=uuid.uuid4())  # another project's: not sent
            await live.publish(org_id=OTHER_ORG)  # same id, another org: not sent
            entry = await live.publish(kind="task.status_changed")
            qc_entry = await live.publish(kind="qc.inspection.created", producer="qc-svc")
            frames = await read_events(resp, lambda f: len([x for x in f if "event" in x]) >= 2)
            events = [f for f in frames if "event" in f]
            assert [e["event"] for e in events] == ["task.status_changed", "qc.inspection.created"]
            task_pos = entry
            assert events[0]["id"].split(".")[0] == task_pos
            assert events[1]["id"] == f"{task_pos}.{qc_entry}"
            assert loads(events[0]["data"])["data"]["project_id"] == str(live.project_id)
            beats = await read_events(resp, lambda f: "comment" in f[-1])
            assert beats[-1]["comment"] == "heartbeat"


async def test_last_event_id_resumes_with_what_was_missed_and_nothing_twice(live: Live) -> None:
    path = f"/api/v1/projects/{live.project_id}/stream"
    async with httpx.AsyncClient(base_url=live.url, timeout=30) as http:
        async with http.stream("GET", path, headers=live.headers) as resp:
            await read_events(resp, lambda f: f[-1].get("event") == "ready")
            await live.publish(kind="task.assigned")
            frames = await read_events(resp, lambda f: f[-1].get("event") == "task.assigned")
            cursor = frames[-1]["id"]
        missed = [await live.publish(kind=k) for k in ("task.unblocked", "task.status_changed")]
        headers = {**live.headers, "Last-Event-ID": cursor}
        async with http.stream("GET", path, headers=headers) as resp:
            frames = await read_events(resp, lambda f: len([x for x in f if "event" in x]) >= 2)
            events = [f for f in frames if "event" in f]
            assert [e["event"] for e in events] == ["task.unblocked", "task.status_changed"]
            assert [e["id"].split(".")[0] for e in events] == missed
            later = await live.publish(kind="project.status_changed")
            frames = await read_events(resp, lambda f: f[-1].get("event") is not None)
            assert frames[-1]["event"] == "project.status_changed"
            assert frames[-1]["id"].split(".")[0] == later


async def test_a_cursor_beyond_retention_or_from_elsewhere_gets_a_reset(live: Live) -> None:
    path = f"/api/v1/projects/{live.project_id}/stream"
    first = await live.publish()
    await live.publish()
    await live.redis.xtrim(
        f"{live.prefix}:task-svc", minid=(await live.publish()), approximate=False
    )
    async with httpx.AsyncClient(base_url=live.url, timeout=30) as http:
        for cursor in (f"{first}.0-0", "99999999999999-0.0-0", "1-0"):
            headers = {**live.headers, "Last-Event-ID": cursor}
            async with http.stream("GET", path, headers=headers) as resp:
                frames = await read_events(resp, lambda f: True)
                assert frames[0]["event"] == "reset", (cursor, frames)
                assert "reload" in loads(frames[0]["data"])["detail"]
        resp = await http.get(path, headers={**live.headers, "Last-Event-ID": "yesterday"})
        assert resp.status_code == 422
        problem = resp.json()
        assert problem["code"] == "STREAM_CURSOR_INVALID"
        assert problem["errors"][0]["field"] == "Last-Event-ID"


async def test_another_orgs_project_is_404_and_no_token_401(live: Live, jwt_keys: JwtKeys) -> None:
    path = f"/api/v1/projects/{live.project_id}/stream"
    async with httpx.AsyncClient(base_url=live.url, timeout=30) as http:
        other = jwt_keys.headers(["admin"], org_id=OTHER_ORG)
        resp = await http.get(path, headers=other)
        assert resp.status_code == 404
        assert resp.json()["code"] == "PROJECT_NOT_FOUND"
        resp = await http.post(path + "-tickets", headers=other)
        assert resp.status_code == 404
        resp = await http.get(path)
        assert resp.status_code == 401


async def test_a_ticket_opens_one_stream_once_for_its_project_only(live: Live) -> None:
    base = f"/api/v1/projects/{live.project_id}"
    async with httpx.AsyncClient(base_url=live.url, timeout=30) as http:
        issued = await http.post(f"{base}/stream-tickets", headers=live.headers)
        assert issued.status_code == 201, issued.text
        ticket = issued.json()["ticket"]
        assert issued.json()["url"] == f"{base}/stream?ticket={ticket}"
        keys = [k.decode() async for k in live.redis.scan_iter("stream-ticket:*")]
        assert keys and not any(ticket in k for k in keys)  # only its hash is kept
        async with http.stream("GET", issued.json()["url"]) as resp:
            assert resp.status_code == 200
            assert (await read_events(resp, lambda f: True))[0]["event"] == "ready"
        again = await http.get(issued.json()["url"])
        assert again.status_code == 401
        assert again.json()["code"] == "STREAM_TICKET_INVALID"
        other = (await http.post(f"{base}/stream-tickets", headers=live.headers)).json()
        resp = await http.get(f"/api/v1/projects/{uuid.uuid4()}/stream?ticket={other['ticket']}")
        assert resp.status_code == 401
        resp = await http.get(other["url"])
        assert resp.status_code == 401  # tried once on the wrong project: spent


async def test_a_crowd_reconnecting_at_once_is_served_not_refused(live: Live) -> None:
    """120 streams opening together (clients coming back after a deploy) all start: they wait
    for Redis connections instead of failing, and skip the database once the project is known
    (the first stream checks it: this test app has one database connection, not a pool)."""
    path = f"/api/v1/projects/{live.project_id}/stream"
    limits = httpx.Limits(max_connections=200)
    async with httpx.AsyncClient(base_url=live.url, timeout=60, limits=limits) as http:
        async with http.stream("GET", path, headers=live.headers) as resp:
            assert (await read_events(resp, lambda f: True))[0]["event"] == "ready"

        async def one() -> str:
            async with http.stream("GET", path, headers=live.headers) as resp:
                assert resp.status_code == 200
                return str((await read_events(resp, lambda f: True, timeout=60))[0]["event"])

        firsts = await asyncio.gather(*(one() for _ in range(120)))
    assert firsts == ["ready"] * 120
