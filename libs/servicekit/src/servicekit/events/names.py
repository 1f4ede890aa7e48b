"""Redis key names of the event backbone: one stream per producing service, plus per-group keys."""

from __future__ import annotations

import re

_IDENT = re.compile(r"^[a-z_][a-z0-9_]*$")


def quoted(schema: str) -> str:
    """A schema name checked and quoted for SQL text (it comes from settings, never a request)."""
    if not _IDENT.match(schema):
        raise ValueError(f"refusing an unusual schema name: {schema!r}")
    return f'"{schema}"'


def stream_for(producer: str, prefix: str = "events") -> str:
    """The stream a service publishes to, e.g. `events:task-svc`."""
    return f"{prefix}:{producer}"


def dead_letter_stream(group: str, prefix: str = "events") -> str:
    """Events a consumer group gave up on, with the error: `events:dead:<group>`."""
    return f"{prefix}:dead:{group}"


def redrive_stream(group: str, prefix: str = "events") -> str:
    """Re-driven dead letters, read by that group only: `events:redrive:<group>`."""
    return f"{prefix}:redrive:{group}"


def errors_hash(group: str, prefix: str = "events") -> str:
    """Last error per pending entry of a group, so whoever dead-letters it can say why."""
    return f"{prefix}:errors:{group}"
