"""The live event stream of a project (Server-Sent Events) and its browser tickets."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from servicekit.auth import CurrentUser, Principal, authenticate_user
from servicekit.db import transaction
from servicekit.errors import NotFound
from task_svc.projects import repository
from task_svc.stream import tickets
from task_svc.stream.cursor import parse_cursor
from task_svc.stream.hub import StreamHub
from task_svc.stream.sse import event_stream

router = APIRouter(prefix="/api/v1/projects", tags=["stream"])

SSE_EXAMPLE = (
    "event: ready\nid: 1764748800000-3.1764748795000-0\n"
    'data: {"project_id":"…","cursor":"1764748800000-3.1764748795000-0"}\n\n'
    "event: task.status_changed\nid: 1764748801000-0.1764748795000-0\n"
    'data: {"specversion":"1.0","id":"…","type":"task.status_changed","data":{…}}\n\n'
    ": heartbeat\n\n"
)


class StreamTicket(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "ticket": "Vq3yN1x0l9n3oTqJm4mG3oZ0jv8H7KQzB7m2S0d9c1E",
                    "expires_at": "2026-12-03T08:01:00Z",
                    "url": "/api/v1/projects/0b5e7c52-6f1c-4d53-9d0a-2f9b8e0c6a11/stream"
                    "?ticket=Vq3yN1x0l9n3oTqJm4mG3oZ0jv8H7KQzB7m2S0d9c1E",
                }
            ]
        }
    )

    ticket: str = Field(description="single use, for this project's stream only")
    expires_at: datetime
    url: str = Field(description="the stream's path with the ticket, for `new EventSource(url)`")


_KNOWN_SECONDS, _KNOWN_MAX = 60.0, 10_000


async def _project_exists(request: Request, org_id: uuid.UUID, project_id: uuid.UUID) -> None:
    """404 for another org's project exactly as for one that does not exist. A short session of
    its own: a stream must not hold a database connection while it is open.

    (org, project) pairs found lately are remembered per process for a minute, and the streams
    that open while a pair is being looked up wait for that one lookup, so that a storm of
    reconnecting clients (after a deploy) does not queue up on the database pool. Projects are
    never deleted, only their status moves."""
    state = request.app.state.__dict__
    known: dict[tuple[uuid.UUID, uuid.UUID], float] = state.setdefault("stream_known_projects", {})
    key = (org_id, project_id)
    if known.get(key, 0.0) > time.monotonic():
        return
    # The streams that open together (hundreds at once, on one project) share one lookup.
    lookups: dict[tuple[uuid.UUID, uuid.UUID], asyncio.Task[bool]]
    lookups = state.setdefault("stream_project_lookups", {})
    lookup = lookups.get(key)
    if lookup is None:
        lookup = lookups[key] = asyncio.create_task(_find_project(request, org_id, project_id))
        lookup.add_done_callback(lambda done: _lookup_done(lookups, key, done))
    if not await asyncio.shield(lookup):
        raise NotFound(f"project {project_id} does not exist", code="PROJECT_NOT_FOUND")
    if len(known) >= _KNOWN_MAX:
        known.clear()
    known[key] = time.monotonic() + _KNOWN_SECONDS


async def _find_project(request: Request, org_id: uuid.UUID, project_id: uuid.UUID) -> bool:
    async with transaction(request.app.state.db) as session:
        project = await repository.get_project(session, org_id=org_id, project_id=project_id)
    return project is not None


def _lookup_done(
    lookups: dict[tuple[uuid.UUID, uuid.UUID], asyncio.Task[bool]],
    key: tuple[uuid.UUID, uuid.UUID],
    done: asyncio.Task[bool],
) -> None:
    if lookups.get(key) is done:
        del lookups[key]
    if not done.cancelled():
        done.exception()  # retrieved here too: the waiters may all have gone


def stream_hub(request: Request) -> StreamHub:
    """The process's one hub, made on the first stream (closed by the app's shutdown hook)."""
    hub: StreamHub | None = getattr(request.app.state, "stream_hub", None)
    if hub is None:
        settings = request.app.state.settings
        hub = StreamHub(
            settings.redis_url,
            [f"{settings.events_stream_prefix}:{s}" for s in settings.stream_sources],
            queue_size=settings.stream_queue_size,
            block_ms=settings.stream_read_block_ms,
        )
        request.app.state.stream_hub = hub
    return hub


@router.post(
    "/{project_id}/stream-tickets",
    status_code=201,
    response_model=StreamTicket,
    summary="A single-use ticket for a browser's EventSource on this project's stream",
)
async def create_stream_ticket(
    project_id: uuid.UUID, request: Request, principal: CurrentUser
) -> StreamTicket:
    await _project_exists(request, principal.org, project_id)
    ttl = request.app.state.settings.stream_ticket_ttl_seconds
    ticket = await tickets.issue(
        request.app.state.redis, principal=principal, project_id=project_id, ttl_seconds=ttl
    )
    return StreamTicket(
        ticket=ticket,
        expires_at=datetime.now(UTC) + timedelta(seconds=ttl),
        url=f"/api/v1/projects/{project_id}/stream?ticket={ticket}",
    )


@router.get(
    "/{project_id}/stream",
    summary="Every event of the project as it happens (Server-Sent Events)",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "an endless text/event-stream: `ready` (or `reset`), then one SSE "
            "event per platform event (named by its type, its `id` a resumable cursor), "
            "`: heartbeat` comments, and `dropped` with a reason when the client fell behind",
            "content": {"text/event-stream": {"example": SSE_EXAMPLE}},
        }
    },
)
async def stream_project_events(
    project_id: uuid.UUID,
    request: Request,
    ticket: Annotated[
        str | None,
        Query(max_length=128, description="from POST …/stream-tickets, instead of a bearer token"),
    ] = None,
    last_event_id: Annotated[
        str | None,
        Query(max_length=512, description="resume after this cursor (when no header can be set)"),
    ] = None,
    last_event_id_header: Annotated[
        str | None, Header(alias="Last-Event-ID", max_length=512)
    ] = None,
) -> StreamingResponse:
    principal: Principal
    if ticket is not None and "authorization" not in request.headers:
        principal = await tickets.redeem(
            request.app.state.redis, ticket=ticket, project_id=project_id
        )
    else:
        principal = await authenticate_user(request)
    await _project_exists(request, principal.org, project_id)
    hub = stream_hub(request)
    raw = last_event_id_header or last_event_id
    field = "Last-Event-ID" if last_event_id_header else "last_event_id"
    cursor = parse_cursor(raw, len(hub.streams), field=field) if raw else None
    frames = event_stream(
        hub,
        hub.redis,
        project_id=str(project_id),
        org_id=str(principal.org),
        cursor=cursor,
        resume=bool(raw),
        heartbeat_seconds=request.app.state.settings.stream_heartbeat_seconds,
    )
    return StreamingResponse(
        frames,
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
