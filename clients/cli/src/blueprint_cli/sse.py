"""Reading a project's live stream: SSE frames, reconnecting with Last-Event-ID."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import click
import httpx

from blueprint_cli.api import Api, refuse


@dataclass
class Frame:
    event: str
    id: str | None
    data: str

    def json(self) -> Any:
        try:
            return json.loads(self.data)
        except ValueError:
            return self.data


def parse(lines: Iterable[str]) -> Iterator[Frame]:
    """SSE frames from the body's lines (comments, such as heartbeats, are skipped)."""
    event, ident = "message", None
    data: list[str] = []
    for line in lines:
        if line == "":
            if data:
                yield Frame(event, ident, "\n".join(data))
            event, ident, data = "message", None, []
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "event":
            event = value
        elif name == "id":
            ident = value
        elif name == "data":
            data.append(value)


def follow(api: Api, project_id: str, *, last_event_id: str | None = None) -> Iterator[Frame]:
    """Every frame of the project's stream, for ever: a dropped connection (or a `dropped`
    frame) is reopened with the last id received, so nothing is missed; a refusal (4xx) ends
    it with exit code 1."""
    last = last_event_id
    backoff = 0.5
    path = f"/api/v1/projects/{project_id}/stream"
    while True:
        headers = {"Accept": "text/event-stream"}
        if last:
            headers["Last-Event-ID"] = last
        try:
            timeout = httpx.Timeout(10.0, read=60.0)  # heartbeats come every 15 s
            with api.http.stream("GET", path, headers=headers, timeout=timeout) as resp:
                if 400 <= resp.status_code < 500:
                    resp.read()
                    refuse(resp)
                if resp.status_code == 200:
                    backoff = 0.5
                    for frame in parse(resp.iter_lines()):
                        if frame.id:
                            last = frame.id
                        yield frame
        except httpx.TransportError as exc:
            click.echo(f"stream interrupted ({exc.__class__.__name__}); reconnecting", err=True)
        time.sleep(backoff)
        backoff = min(backoff * 2, 10.0)
