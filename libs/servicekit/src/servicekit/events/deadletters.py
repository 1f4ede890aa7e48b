"""The events a consumer group gave up on: how they are written, listed and re-driven."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import redis.asyncio as aioredis

from servicekit.events.names import dead_letter_stream, redrive_stream


@dataclass(frozen=True)
class DeadLetter:
    id: str
    event: str
    stream: str
    entry_id: str
    type: str
    error: str
    attempts: int
    failed_at: str


def dead_letter_fields(
    *,
    event: Any,
    stream: str,
    entry_id: str,
    group: str,
    event_type: str,
    error: str,
    attempts: int,
) -> dict[str, Any]:
    """The fields of a dead-letter stream entry (read back by `list_dead_letters`)."""
    return {
        "event": event if event is not None else "",
        "stream": stream,
        "entry_id": entry_id,
        "group": group,
        "type": event_type,
        "error": error,
        "attempts": str(attempts),
        "failed_at": datetime.now(UTC).isoformat(),
    }


def _s(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


async def list_dead_letters(
    redis: aioredis.Redis, group: str, *, prefix: str = "events", limit: int = 100
) -> list[DeadLetter]:
    entries = await redis.xrange(dead_letter_stream(group, prefix), count=limit)
    letters = []
    for entry_id, raw_fields in entries:
        fields = {_s(k): _s(v) for k, v in raw_fields.items()}
        letters.append(
            DeadLetter(
                id=_s(entry_id),
                event=fields.get("event", ""),
                stream=fields.get("stream", ""),
                entry_id=fields.get("entry_id", ""),
                type=fields.get("type", ""),
                error=fields.get("error", ""),
                attempts=int(fields.get("attempts", "0") or 0),
                failed_at=fields.get("failed_at", ""),
            )
        )
    return letters


async def redrive(
    redis: aioredis.Redis,
    group: str,
    *,
    prefix: str = "events",
    ids: list[str] | None = None,
) -> int:
    """Send dead letters (all, or those `ids`) back to the group; returns how many.

    They go to the group's own redrive stream, so other services never see them again.
    """
    dead = dead_letter_stream(group, prefix)
    target = redrive_stream(group, prefix)
    wanted = set(ids) if ids else None
    moved = 0
    start = "-"
    while True:
        entries = await redis.xrange(dead, min=start, count=500)
        if not entries:
            break
        for entry_id, fields in entries:
            eid = _s(entry_id)
            if wanted is not None and eid not in wanted:
                continue
            event = fields.get("event", fields.get(b"event"))
            if event:
                await redis.xadd(target, {"event": event})
            await redis.xdel(dead, eid)
            moved += 1
        start = "(" + _s(entries[-1][0])
    return moved
