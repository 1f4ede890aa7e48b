"""The text/event-stream of one client: catch up from a cursor, then live events and heartbeats.

Order of work, so that nothing falls between history and live: subscribe to the hub first (live
events start queueing), then read the history after the client's cursor with XRANGE, then take
the queued batches, skipping what the history already sent (entry ids only grow within a stream).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import redis.asyncio as aioredis

from servicekit.jsonutil import dumps
from task_svc.stream import metrics as m
from task_svc.stream.cursor import START, entry_key, format_cursor
from task_svc.stream.hub import Item, StreamHub, Subscriber, parse_entry

PAGE = 500


def frame(event: str, cursor: str | None, data: bytes) -> bytes:
    head = f"event: {event}\n" + (f"id: {cursor}\n" if cursor else "")
    return head.encode() + b"data: " + data + b"\n\n"


async def needs_reset(redis: aioredis.Redis, streams: list[str], cursor: list[str]) -> bool:
    """True when events after the cursor may be gone (trimmed by retention: the cursor's entry
    is no longer kept) or were never in this Redis (the cursor is from its future)."""
    for stream, position in zip(streams, cursor, strict=True):
        try:
            info = await redis.xinfo_stream(stream)
        except aioredis.ResponseError:  # no such stream: only a cursor at the start fits
            if position != START:
                return True
            continue
        key = entry_key(position)
        last = entry_key(_text(info.get("last-generated-id") or START))
        first = info.get("first-entry")
        trimmed = int(info.get("entries-added") or 0) > int(info.get("length") or 0)
        if key > last:
            return True
        if first is not None and key < entry_key(_text(first[0])) and (key != (0, 0) or trimmed):
            return True
        if first is None and key < last:
            return True
    return False


async def history(
    redis: aioredis.Redis, streams: list[str], cursor: list[str], sub: Subscriber
) -> AsyncIterator[Item]:
    """The project's events after `cursor`, stream by stream, a page at a time."""
    for index, stream in enumerate(streams):
        start = cursor[index]
        while True:
            rows = await redis.xrange(stream, min=f"({start}", max="+", count=PAGE)
            for entry_id, fields in rows:
                start = _text(entry_id)
                raw = fields.get(b"event")
                if raw is None:
                    continue
                project_id, org_id, head, body = parse_entry(raw)
                if project_id == sub.project_id and org_id == sub.org_id:
                    yield index, start, head, body
            if len(rows) < PAGE:
                break


async def event_stream(
    hub: StreamHub,
    redis: aioredis.Redis,
    *,
    project_id: str,
    org_id: str,
    cursor: list[str] | None,
    resume: bool,
    heartbeat_seconds: float,
) -> AsyncIterator[bytes]:
    """Frames for one client. `resume` with no usable `cursor` (one made for other streams)
    answers `reset`. Subscribing happens here, inside the generator, so that the `finally`
    that releases the subscriber runs whenever the subscription exists."""
    sub = hub.subscribe(project_id, org_id)
    try:
        # The hub's read loop must be past its starting positions before the history is read:
        # whatever it has not read then, the history has.
        await hub.wait_ready()
        streams = hub.streams
        if cursor is None or await needs_reset(redis, streams, cursor):
            cursor = await hub.positions()
            body = {"project_id": project_id, "cursor": format_cursor(cursor)}
            if resume:
                body["detail"] = "events after the last event id are no longer kept; reload"
            yield frame("reset" if resume else "ready", format_cursor(cursor), dumps(body))
        positions = list(cursor)
        async for index, entry_id, head, body_ in history(redis, streams, cursor, sub):
            positions[index] = entry_id
            yield _event_frame(head, body_, positions)
        async for chunk in _live(sub, positions, heartbeat_seconds):
            yield chunk
    finally:
        hub.unsubscribe(sub)


async def _live(sub: Subscriber, positions: list[str], heartbeat: float) -> AsyncIterator[bytes]:
    at = tuple(positions)
    while True:
        await sub.wait(heartbeat)
        if sub.dropped is not None:
            yield frame("dropped", None, dumps({"reason": sub.dropped}))
            return
        batches = sub.take()
        if not batches:
            yield b": heartbeat\n\n"
            continue
        chunks: list[bytes] = []
        count = 0
        for batch in batches:  # whatever has piled up goes out in one write
            frames, at, sent = batch.render_for(at)
            if sent:
                chunks.append(frames)
                count += sent
        if count:
            m.STREAM_EVENTS.inc(count)
            yield chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _event_frame(head: bytes, body: bytes, positions: list[str]) -> bytes:
    """One event: its type as the SSE event name, the cursor as its id, the envelope as data."""
    m.STREAM_EVENTS.inc()
    return head + b"id: " + format_cursor(positions).encode() + b"\n" + body


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
