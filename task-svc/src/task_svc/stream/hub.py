"""One Redis read loop per process, fanned out to the live streams of its clients.

N open streams cost one blocking XREAD on the event streams, never a database query: the loop
reads every new entry once, picks the project out of its payload, and puts it on the bounded
queue of each subscriber of that project. A subscriber whose queue is full (a client that reads
slower than events arrive) is dropped with a reason instead of buffering without bound; it can
reconnect with its last cursor and catch up from the Redis stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis

from servicekit.jsonutil import loads
from task_svc.stream import metrics as m
from task_svc.stream.cursor import START

log = logging.getLogger("task_svc.stream")

# One queued event: the index of its stream, its Redis entry id, and its SSE frame in two parts
# around the `id` line (built once per event, whatever the number of subscribers).
Item = tuple[int, str, bytes, bytes]


def parse_entry(raw: bytes) -> tuple[str | None, str | None, bytes, bytes]:
    """(project id, org id, frame head, frame body) of one stream entry's event JSON.

    The SSE event name is the event's type; the data is the CloudEvents envelope as published.
    """
    try:
        event: Any = loads(raw)
        data = event.get("data") or {}
        project_id, org_id, kind = data.get("project_id"), data.get("org_id"), event.get("type")
    except (ValueError, AttributeError):
        return None, None, b"", b""
    body = raw.replace(b"\n", b"\ndata: ") if b"\n" in raw else raw
    return project_id, org_id, f"event: {kind or 'event'}\n".encode(), b"data: " + body + b"\n\n"


@dataclass(eq=False)
class Subscriber:
    project_id: str
    org_id: str
    queue: asyncio.Queue[Item]
    dropped: str | None = None
    wake: asyncio.Event = field(default_factory=asyncio.Event)

    def offer(self, item: Item) -> bool:
        """Queue one event; False (and the subscriber marked dropped) when its queue is full."""
        if self.dropped is not None:
            return False
        try:
            self.queue.put_nowait(item)
        except asyncio.QueueFull:
            self.dropped = (
                f"the client fell more than {self.queue.maxsize} events behind; reconnect "
                "with the last event id to catch up"
            )
            while not self.queue.empty():  # give the memory back now
                self.queue.get_nowait()
            self.wake.set()
            return False
        self.wake.set()
        return True


class StreamHub:
    def __init__(
        self, redis_url: str, streams: list[str], *, queue_size: int, block_ms: int = 5000
    ) -> None:
        self.streams = streams
        self.queue_size = queue_size
        self.block_ms = block_ms
        # Its own client: a blocking XREAD must not wait behind (or time out like) the app's. A
        # blocking pool: hundreds of clients connecting at once (after a deploy) wait their turn
        # for one of its connections instead of failing with "too many connections".
        pool: aioredis.BlockingConnectionPool = aioredis.BlockingConnectionPool.from_url(
            redis_url, max_connections=32, timeout=30, socket_timeout=block_ms / 1000 + 10
        )
        self._pool = pool
        self.redis = aioredis.Redis(connection_pool=pool)
        self._subscribers: dict[str, set[Subscriber]] = {}
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()

    def subscribe(self, project_id: str, org_id: str) -> Subscriber:
        sub = Subscriber(project_id, org_id, asyncio.Queue(maxsize=self.queue_size))
        self._subscribers.setdefault(project_id, set()).add(sub)
        m.STREAM_CLIENTS.inc()
        if self._task is None or self._task.done():
            self._ready.clear()
            self._task = asyncio.create_task(self._run(), name="stream-hub")
        return sub

    def unsubscribe(self, sub: Subscriber) -> None:
        subs = self._subscribers.get(sub.project_id)
        if subs is not None and sub in subs:
            subs.discard(sub)
            m.STREAM_CLIENTS.dec()
            if not subs:
                del self._subscribers[sub.project_id]

    async def wait_ready(self) -> None:
        """Until the loop has taken its starting positions (tests and benchmarks)."""
        await self._ready.wait()

    async def positions(self) -> list[str]:
        """The last entry id of each stream now (`0-0` for a stream not created yet)."""
        pipe = self.redis.pipeline(transaction=False)
        for stream in self.streams:
            pipe.xrevrange(stream, count=1)
        last = await pipe.execute()
        return [_decode(rows[0][0]) if rows else START for rows in last]

    async def _run(self) -> None:
        backoff = 0.2
        ids: list[str] | None = None
        while True:
            try:
                if ids is None:
                    ids = await self.positions()
                    self._ready.set()
                reply = await self.redis.xread(
                    dict(zip(self.streams, ids, strict=True)), count=1000, block=self.block_ms
                )
                backoff = 0.2
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("stream read loop failed; retry in %.1fs", backoff, exc_info=True)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
                continue
            for name, entries in reply or []:
                index = self.streams.index(_decode(name))
                for entry_id, fields in entries:
                    ids[index] = _decode(entry_id)
                    if self._subscribers:
                        self._dispatch(index, ids[index], fields)

    def _dispatch(self, index: int, entry_id: str, fields: dict[bytes, bytes]) -> None:
        raw = fields.get(b"event")
        if raw is None:
            return
        project_id, org_id, head, body = parse_entry(raw)
        subs = self._subscribers.get(project_id) if project_id else None
        if not subs:
            return
        item = (index, entry_id, head, body)
        for sub in list(subs):
            if sub.org_id == org_id and not sub.offer(item):
                m.STREAM_DROPPED.inc()
                self.unsubscribe(sub)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        for subs in list(self._subscribers.values()):
            for sub in list(subs):
                sub.dropped = sub.dropped or "the service is shutting down; reconnect"
                sub.wake.set()
                self.unsubscribe(sub)
        await self.redis.aclose()  # type: ignore[attr-defined]
        await self._pool.disconnect()


def _decode(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
