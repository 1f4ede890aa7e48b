"""`Idempotency-Key` for creating POSTs: the same key replays the stored answer.

The same key with a different body is refused (422). Requests with the same key are serialised
with a transaction-scoped advisory lock, so two concurrent ones cannot both create.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from servicekit.errors import BadRequest, Unprocessable
from task_svc.projects.models import IdempotencyKey

MAX_KEY_LENGTH = 200


@dataclass(frozen=True)
class StoredAnswer:
    status_code: int
    body: dict[str, Any]


def request_hash(scope: str, canonical_body: bytes) -> str:
    return hashlib.sha256(scope.encode() + b"\n" + canonical_body).hexdigest()


def check_key(key: str) -> str:
    key = key.strip()
    if not key or len(key) > MAX_KEY_LENGTH:
        raise BadRequest(
            f"the Idempotency-Key header must be 1-{MAX_KEY_LENGTH} characters",
            code="IDEMPOTENCY_KEY_INVALID",
            errors=[{"in": "header", "field": "Idempotency-Key", "message": "1-200 characters"}],
        )
    return key


async def lock_key(session: AsyncSession, *, org_id: uuid.UUID, key: str) -> None:
    await session.execute(
        select(func.pg_advisory_xact_lock(func.hashtextextended(f"{org_id}:{key}", 0)))
    )


async def find_answer(
    session: AsyncSession, *, org_id: uuid.UUID, key: str, req_hash: str
) -> StoredAnswer | None:
    row = (
        await session.execute(
            select(IdempotencyKey.request_hash, IdempotencyKey.status_code, IdempotencyKey.response)
            .where(IdempotencyKey.org_id == org_id, IdempotencyKey.key == key)
        )
    ).one_or_none()
    if row is None:
        return None
    if row.request_hash != req_hash:
        raise Unprocessable(
            "this Idempotency-Key was already used with a different request body; use a new "
            "key for a different request",
            code="IDEMPOTENCY_KEY_REUSED",
        )
    return StoredAnswer(row.status_code, row.response)


async def store_answer(
    session: AsyncSession,
    *,
    org_id: uuid.UUID,
    key: str,
    req_hash: str,
    status_code: int,
    body: dict[str, Any],
) -> None:
    await session.execute(
        insert(IdempotencyKey).values(
            org_id=org_id, key=key, request_hash=req_hash, status_code=status_code, response=body
        )
    )


__all__ = ["StoredAnswer", "check_key", "find_answer", "lock_key", "request_hash", "store_answer"]
