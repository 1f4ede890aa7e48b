"""Event type filters of endpoints: `task.status_changed`, `task.*`, `qc.*` or `*`.

`prefix.*` matches every type that starts with `prefix.` (so `qc.*` matches
`qc.inspection.failed`); `*` matches every type. The same rule is the SQL of `MATCH_SQL`, used
when the consumer fans an event out to endpoints.
"""

from __future__ import annotations

from functools import cache

from contracts.registry import all_events

# :event_type matches endpoint e's filters (e.event_types, a text[]).
MATCH_SQL = (
    "(:event_type = ANY(e.event_types) OR '*' = ANY(e.event_types) OR EXISTS ("
    "SELECT 1 FROM unnest(e.event_types) AS p(pattern) WHERE right(p.pattern, 2) = '.*' "
    "AND left(:event_type, length(p.pattern) - 1) = left(p.pattern, length(p.pattern) - 1)))"
)


def matches(pattern: str, event_type: str) -> bool:
    if pattern == "*":
        return True
    if pattern.endswith(".*"):
        return event_type.startswith(pattern[:-1])
    return pattern == event_type


@cache
def catalogue_types() -> tuple[str, ...]:
    """Every event type a subscriber can receive."""
    return tuple(sorted({spec.event_type for spec in all_events()}))


def unknown_patterns(patterns: list[str]) -> list[str]:
    """The patterns that match no event type of the catalogue."""
    types = catalogue_types()
    return [p for p in patterns if not any(matches(p, t) for t in types)]
