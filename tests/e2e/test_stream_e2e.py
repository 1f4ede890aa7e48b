"""The live event stream through the real gateway: real transitions, the relay, Redis, nginx."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from blueprint_stack import Stack

from .support import World


@pytest.fixture(scope="module")
def world(stack: Stack) -> World:
    return World(stack)


def frames_until(lines: Any, want: Any, timeout: float = 30) -> list[dict[str, str]]:
    """SSE frames from a line iterator until `want(frame)` is true of the last one."""
    frames: list[dict[str, str]] = []
    current: dict[str, str] = {}
    deadline = time.monotonic() + timeout
    for line in lines:
        assert time.monotonic() < deadline, f"no matching frame in time: {frames}"
        if line == "":
            if current:
                frames.append(current)
                if want(current):
                    return frames
                current = {}
            continue
        name, _, value = line.partition(":")
        current[name or "comment"] = value.removeprefix(" ")
    raise AssertionError(f"the stream ended: {frames}")


def _pack_task(world: World, gateway: httpx.Client) -> dict[str, Any]:
    pid = world.ids["project_id"][0]
    page = gateway.get(
        f"/api/v1/tasks?project_id={pid}&limit=50", headers=world.tokens["admin"]
    ).json()
    return next(t for t in page["items"] if t["node_key"] == "pack")


def test_a_transition_reaches_a_bearer_stream_through_the_gateway_and_resumes(
    stack: Stack, world: World, gateway: httpx.Client
) -> None:
    pid = world.ids["project_id"][0]
    url = f"/api/v1/projects/{pid}/stream"
    pack = _pack_task(world, gateway)
    with gateway.stream("GET", url, headers=world.tokens["viewer"], timeout=60) as resp:
        assert resp.status_code == 200
        assert resp.headers["content-type"].startswith("text/event-stream")
        lines = resp.iter_lines()
        ready = frames_until(lines, lambda f: True)[0]
        assert ready["event"] == "ready"
        assigned = gateway.post(
            f"/api/v1/tasks/{pack['id']}/transitions",
            headers=world.tokens["planner"],
            json={
                "action": "assign",
                "payload": {"assign_to": str(uuid.uuid4())},
                "expected_row_version": pack["row_version"],
                "client_event_id": str(uuid.uuid4()),
            },
        )
        assert assigned.status_code == 200, assigned.text
        got = frames_until(lines, lambda f: f.get("event") == "task.assigned")[-1]
        envelope = json.loads(got["data"])
        assert envelope["data"]["task_id"] == pack["id"]
        assert envelope["source"] == "task-svc"
    # Resuming from the ready cursor replays the assignment (it happened after that cursor).
    headers = {**world.tokens["viewer"], "Last-Event-ID": ready["id"]}
    with gateway.stream("GET", url, headers=headers, timeout=60) as resp:
        replayed = frames_until(resp.iter_lines(), lambda f: f.get("event") == "task.assigned")
        assert replayed[-1]["id"] == got["id"]


def test_a_ticket_opens_the_stream_once_and_never_reaches_a_log(
    stack: Stack, world: World, gateway: httpx.Client
) -> None:
    pid = world.ids["project_id"][0]
    issued = gateway.post(f"/api/v1/projects/{pid}/stream-tickets", headers=world.tokens["viewer"])
    assert issued.status_code == 201, issued.text
    ticket = issued.json()["ticket"]
    with gateway.stream("GET", issued.json()["url"], timeout=60) as resp:
        assert resp.status_code == 200
        assert frames_until(resp.iter_lines(), lambda f: True)[0]["event"] == "ready"
    again = gateway.get(issued.json()["url"])
    assert again.status_code == 401
    assert again.json()["code"] == "STREAM_TICKET_INVALID"
    other_org = World.__new__(World)  # a stranger's token: another org, same role
    other_org.org_id, other_org.user_id, other_org.keys = uuid.uuid4(), uuid.uuid4(), world.keys
    refused = gateway.post(
        f"/api/v1/projects/{pid}/stream-tickets", headers=other_org.headers("admin")
    )
    assert refused.status_code == 404
    log_dir = Path(stack.config.var_dir) / "log"
    access = stack.config.nginx_dir / "logs" / "access.log"
    deadline = time.monotonic() + 10
    while "query with a ticket removed" not in access.read_text(errors="replace"):
        assert time.monotonic() < deadline, "the ticket request never reached the access log"
        time.sleep(0.1)
    files = [access, *(p for p in log_dir.rglob("*") if p.is_file())]
    assert not [p.name for p in files if ticket in p.read_text(errors="replace")]
