"""A stream entry as the consumer handles it: parsed once, with its aggregate and its outcome."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from contracts.envelope import CloudEvent
from servicekit.events.handlers import EventHandlers, Registered
from servicekit.events.ordering import AggregateKey
from servicekit.jsonutil import loads

# Outcomes, as counted by `events_consumed_total`.
PROCESSED = "processed"
DUPLICATE = "duplicate"
IGNORED = "ignored"
RETRIED = "retried"
DEAD_LETTERED = "dead_lettered"
DEFERRED = "deferred"
FAILED = "failed"  # only if a batch ends before its outcome was decided
OUTCOMES = (PROCESSED, DUPLICATE, IGNORED, RETRIED, DEAD_LETTERED, DEFERRED, FAILED)


@dataclass(slots=True)
class Entry:
    stream: str
    id: str
    raw: Any
    deliveries: int
    event_type: str = "unknown"
    key: AggregateKey | None = None
    registered: Registered | None = None
    event: CloudEvent[Any] | None = None
    event_id: uuid.UUID | None = None
    source: str = ""
    parse_error: Exception | None = None
    outcome: str | None = None
    error: Exception | None = None


def parse_entry(
    stream: str,
    entry_id: Any,
    fields: dict[Any, Any],
    deliveries: dict[str, int] | None,
    handlers: EventHandlers,
) -> Entry:
    """The entry with its event validated; an entry that cannot be parsed keeps the error (it
    fails when its turn comes), one of a type without a handler is `IGNORED`."""
    eid = text_of(entry_id)
    raw = fields.get("event", fields.get(b"event"))
    entry = Entry(stream, eid, raw, deliveries.get(eid, 1) if deliveries else 1)
    try:
        if raw is None:
            raise ValueError("stream entry has no `event` field")
        document = loads(raw)
        entry.event_type = str(document.get("type", "unknown"))
        subject = document.get("subject")
        if subject is not None:
            entry.key = (stream, str(document.get("aggregatetype") or ""), str(subject))
        elif document.get("id") is not None:
            entry.key = (stream, "", f"id:{document['id']}")  # its own duplicates wait
        entry.registered = handlers.get(entry.event_type)
        if entry.registered is None:
            entry.outcome = IGNORED
            return entry
        entry.event = event = entry.registered.envelope_model.model_validate(document)
        entry.event_id = uuid.UUID(event.id)
        entry.source = event.source
    except Exception as exc:
        entry.parse_error = exc
    return entry


def stream_order(entry_id: str) -> tuple[int, int]:
    """Sort key of stream entry ids (`<ms>-<seq>`)."""
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


def text_of(value: Any) -> str:
    """A Redis reply value as text, whether or not the client decodes responses."""
    return value.decode() if isinstance(value, bytes) else str(value)
