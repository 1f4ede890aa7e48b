"""Stream positions: where a client is in each Redis stream the live stream reads.

An SSE client's `Last-Event-ID` must say exactly where to resume, and the live stream merges
several Redis streams (one per producing service). So the SSE `id` of an event is a cursor: the
Redis entry id of the last event sent from each stream, in the order of the `stream_sources`
setting, joined with `.` (e.g. `1764748800000-3.1764748795000-0`). The event's own CloudEvents id
is inside its data. Resuming from a cursor is one XRANGE per stream; resuming from a bare event
id would mean scanning a week of stream history to find it.
"""

from __future__ import annotations

import re

from servicekit.errors import Unprocessable

_ENTRY_ID = re.compile(r"^\d{1,20}-\d{1,20}$")
START = "0-0"


def entry_key(entry_id: str) -> tuple[int, int]:
    """A Redis entry id as a sortable pair (`ms-seq`)."""
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


def format_cursor(positions: list[str]) -> str:
    return ".".join(positions)


def parse_cursor(raw: str, streams: int, *, field: str = "Last-Event-ID") -> list[str] | None:
    """The positions a cursor names; None when it was made for another set of streams (the
    client must reload). A cursor that is not one at all is a 422 naming the field."""
    parts = raw.strip().split(".")
    if not all(_ENTRY_ID.match(p) for p in parts):
        raise Unprocessable(
            f"{field} must be a stream cursor as sent in an event's `id` "
            f"(Redis entry ids `<ms>-<seq>` joined by '.'), not {raw[:80]!r}",
            code="STREAM_CURSOR_INVALID",
            errors=[
                {
                    "in": "header" if field == "Last-Event-ID" else "query",
                    "field": field,
                    "message": "expected <ms>-<seq>[.<ms>-<seq>...]",
                }
            ],
        )
    if len(parts) != streams:
        return None
    return parts
