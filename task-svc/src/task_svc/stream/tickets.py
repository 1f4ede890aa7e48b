"""Stream tickets: how a browser's EventSource, which cannot send an Authorization header, opens
a project's stream without a long-lived bearer token in a URL.

A ticket is 32 random bytes (URL-safe base64), good for one connection to one project's stream
within its time to live. Redis keeps only its SHA-256, so a copy of Redis holds nothing usable,
and redeeming is one GETDEL: a second use finds nothing.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid

import redis.asyncio as aioredis

from servicekit.auth import Principal
from servicekit.errors import Unauthorized
from servicekit.jsonutil import dumps, loads


def _key(ticket: str) -> str:
    return "stream-ticket:" + hashlib.sha256(ticket.encode()).hexdigest()


async def issue(
    redis: aioredis.Redis, *, principal: Principal, project_id: uuid.UUID, ttl_seconds: int
) -> str:
    ticket = secrets.token_urlsafe(32)
    holder = {
        "sub": principal.sub,
        "org_id": str(principal.org),
        "roles": sorted(principal.roles),
        "project_id": str(project_id),
    }
    await redis.set(_key(ticket), dumps(holder), ex=ttl_seconds)
    return ticket


async def redeem(redis: aioredis.Redis, *, ticket: str, project_id: uuid.UUID) -> Principal:
    """The principal a ticket was issued to; 401 when it is unknown, used, expired, or for
    another project (also spent then: a ticket is tried once)."""
    raw = await redis.getdel(_key(ticket)) if len(ticket) <= 128 else None
    holder = loads(raw) if raw else None
    if not holder or holder.get("project_id") != str(project_id):
        raise Unauthorized(
            "the stream ticket is unknown, already used, expired or for another project: "
            f"POST /api/v1/projects/{project_id}/stream-tickets for a new one",
            code="STREAM_TICKET_INVALID",
        )
    return Principal(
        sub=holder["sub"], org_id=uuid.UUID(holder["org_id"]), roles=frozenset(holder["roles"])
    )
