"""One Redis read loop per process, fanned out to the live streams of its clients.

N open streams cost one blocking XREAD on the event streams, never a database query: the loop
reads every new entry once, picks the project and org out of its payload, and hands the events
of one project read in one XREAD to each subscriber of that project as one shared batch. Frames
are rendered once per batch for all the subscribers that are at the same position (in steady
state, all of them), so the work per event is done once per process and the work per client is
one append, one wake-up and one write per batch, however many events it holds. A subscriber
that falls more than `queue_size` events behind (a client that reads slower than events arrive)
is dropped with a reason instead of buffering without bound; it can reconnect with its last
cursor and catch up from the Redis stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import redis.asyncio as aioredis

from servicekit.jsonutil import loads
from task_svc.stream import metrics as m
from task_svc.stream.cursor import START, entry_key

log = logging.getLogger("task_svc.stream")

# One event: the index of its stream, its Redis entry id, and its SSE frame in two parts around
# the `id` line (built once per event, whatever the number of subscribers).
Item = tuple[int, str, bytes, bytes]
# What a batch renders for a client at some position: the frames, the position after them and
# how many events they are.
Rendered = tuple[bytes, tuple[str, ...], int]


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


def render(items: list[Item], positions: tuple[str, ...]) -> Rendered:
    """The frames of `items` for a client whose cursor is `positions`: the events it has not had
    yet (entry ids only grow within a stream), each with its cursor as the SSE `id`."""
    current = list(positions)
    sent = [entry_key(p) for p in positions]
    out = bytearray()
    count = 0
    for index, entry_id, head, body in items:
        key = entry_key(entry_id)
        if key <= sent[index]:
            continue  # already sent from the history
        sent[index] = key
        current[index] = entry_id
        out += head + b"id: " + ".".join(current).encode() + b"\n" + body
        count += 1
    return bytes(out), tuple(current), count


class Batch:
    """The events of one project read by one XREAD, in order, shared by its subscribers."""

    __slots__ = ("_rendered", "items")

    def __init__(self, items: list[Item]) -> None:
        self.items = items
        self._rendered: dict[tuple[str, ...], Rendered] = {}

    def render_for(self, positions: tuple[str, ...]) -> Rendered:
        """`render` for a client at `positions`, made once per distinct position: clients in
        step (all of a project's clients once each has had an event of every stream, and all
        those that connected between two events of the streams) share one bytes object."""
        rendered = self._rendered.get(positions)
        if rendered is None:
            rendered = self._rendered[positions] = render(self.items, positions)
        return rendered


def _release(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


class Subscriber:
    """One open stream's place in the hub: the batches not written yet, counted in events."""

    __slots__ = ("_waiter", "dropped", "limit", "org_id", "pending", "pending_events", "project_id")

    def __init__(self, project_id: str, org_id: str, limit: int) -> None:
        self.project_id = project_id
        self.org_id = org_id
        self.limit = limit
        self.pending: list[Batch] = []
        self.pending_events = 0
        self.dropped: str | None = None
        self._waiter: asyncio.Future[None] | None = None

    def offer(self, batch: Batch) -> bool:
        """Queue one batch; False (and the subscriber marked dropped) when it would take the
        subscriber more than `limit` events behind."""
        if self.dropped is not None:
            return False
        waiting = self.pending_events + len(batch.items)
        if waiting > self.limit:
            self.dropped = (
                f"the client fell more than {self.limit} events behind; reconnect "
                "with the last event id to catch up"
            )
            self.pending, self.pending_events = [], 0  # give the memory back now
            self.wake()
            return False
        self.pending.append(batch)
        self.pending_events = waiting
        self.wake()
        return True

    def take(self) -> list[Batch]:
        """The batches queued so far (the queue is left empty)."""
        batches, self.pending, self.pending_events = self.pending, [], 0
        return batches

    def wake(self) -> None:
        if self._waiter is not None:
            _release(self._waiter)

    async def wait(self, at_most: float) -> None:
        """Until a batch is queued or the subscriber is dropped, at most `at_most` seconds."""
        if self.pending or self.dropped is not None:
            return
        loop = asyncio.get_running_loop()
        waiter = self._waiter = loop.create_future()
        timer = loop.call_later(at_most, _release, waiter)
        try:
            await waiter
        finally:
            timer.cancel()
            self._waiter = None


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
        # By (project, org): an event reaches only the subscribers of its project in its org.
        self._subscribers: dict[tuple[str, str], set[Subscriber]] = {}
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()

    def subscribe(self, project_id: str, org_id: str) -> Subscriber:
        sub = Subscriber(project_id, org_id, self.queue_size)
        self._subscribers.setdefault((project_id, org_id), set()).add(sub)
        m.STREAM_CLIENTS.inc()
        if self._task is None or self._task.done():
            self._ready.clear()
            self._task = asyncio.create_task(self._run(), name="stream-hub")
        return sub

    def unsubscribe(self, sub: Subscriber) -> None:
        key = (sub.project_id, sub.org_id)
        subs = self._subscribers.get(key)
        if subs is not None and sub in subs:
            subs.discard(sub)
            m.STREAM_CLIENTS.dec()
            if not subs:
                del self._subscribers[key]

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
            if reply:
                self._dispatch(reply, ids)

    def _dispatch(self, reply: list[Any], ids: list[str]) -> None:
        """Hand the entries of one XREAD to the subscribers of their projects, one batch per
        project; `ids` (the loop's positions) moves past every entry read."""
        batches: dict[tuple[str, str], list[Item]] = {}
        subscribers = self._subscribers
        for name, entries in reply:
            index = self.streams.index(_decode(name))
            for entry_id, fields in entries:
                position = ids[index] = _decode(entry_id)
                raw = fields.get(b"event") if subscribers else None
                if raw is None:
                    continue
                project_id, org_id, head, body = parse_entry(raw)
                if project_id is None or org_id is None:
                    continue
                key = (project_id, org_id)
                if key in subscribers:
                    batches.setdefault(key, []).append((index, position, head, body))
        for key, items in batches.items():
            batch = Batch(items)
            for sub in list(subscribers.get(key, ())):
                if not sub.offer(batch):
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
                sub.wake()
                self.unsubscribe(sub)
        await self.redis.aclose()  # type: ignore[attr-defined]
        await self._pool.disconnect()


def _decode(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
