"""`Idempotency-Key` for creating POSTs: the same key again replays the first answer.

A row per (org_id, key) stores a hash of the request (method, path, body) and the response
(status and body), written in the same transaction as the change. An advisory transaction lock on
(org, key) makes a concurrent duplicate wait for the first and then replay it. The same key with
a different request is refused with 422 IDEMPOTENCY_KEY_REUSED.

Usage in a router: `return await run_idempotent(session, ..., create=lambda: service.create(...))`.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from fastapi import Request, Response
from sqlalchemy import DateTime, Integer, Text, func, select, text
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from servicekit.errors import BadRequest, Unprocessable
from servicekit.jsonutil import FastJSONResponse, dumps, loads
from template_svc.db import Base

MAX_KEY_LENGTH = 200
REPLAY_HEADER = "Idempotent-Replayed"


class IdempotencyRecord(Base):
    __tablename__ = "idempotency_key"

    org_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    key: Mapped[str] = mapped_column(Text, primary_key=True)
    request_hash: Mapped[str] = mapped_column(Text, nullable=False)
    status_code: Mapped[int] = mapped_column(Integer, nullable=False)
    response_body: Mapped[Any] = mapped_column(JSONB, nullable=False)
    response_headers: Mapped[dict[str, str]] = mapped_column(JSONB, nullable=False)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now()
    )


async def request_fingerprint(request: Request) -> str:
    body = await request.body()
    h = hashlib.sha256()
    h.update(request.method.encode())
    h.update(b"\0")
    h.update(request.url.path.encode())
    h.update(b"\0")
    h.update(body)
    return h.hexdigest()


async def run_idempotent(
    session: AsyncSession,
    *,
    org_id: uuid.UUID,
    key: str | None,
    fingerprint: str,
    create: Callable[[], Awaitable[tuple[Any, dict[str, str]]]],
    status_code: int = 201,
) -> Response:
    """Run `create` once per key; `create` returns (JSON-able body, response headers)."""
    if key is None:
        body, headers = await create()
        return FastJSONResponse(body, status_code=status_code, headers=headers)
    if not key or len(key) > MAX_KEY_LENGTH:
        raise BadRequest(
            f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} characters",
            code="IDEMPOTENCY_KEY_INVALID",
        )
    await session.execute(
        text("SELECT pg_advisory_xact_lock(hashtextextended(:k, 0))"), {"k": f"{org_id}:{key}"}
    )
    found = await session.scalar(
        select(IdempotencyRecord).where(
            IdempotencyRecord.org_id == org_id, IdempotencyRecord.key == key
        )
    )
    if found is not None:
        if found.request_hash != fingerprint:
            raise Unprocessable(
                "this Idempotency-Key was used for a different request; use a new key",
                code="IDEMPOTENCY_KEY_REUSED",
            )
        return Response(
            dumps(found.response_body),
            status_code=found.status_code,
            media_type="application/json",
            headers={**found.response_headers, REPLAY_HEADER: "true"},
        )
    body, headers = await create()
    plain = loads(dumps(body))
    await session.execute(
        pg_insert(IdempotencyRecord).values(
            org_id=org_id,
            key=key,
            request_hash=fingerprint,
            status_code=status_code,
            response_body=plain,
            response_headers=headers,
        )
    )
    return FastJSONResponse(plain, status_code=status_code, headers=headers)
