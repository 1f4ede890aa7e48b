"""`Idempotency-Key` for creating POSTs: the same key again replays the first answer.

Each service keeps its own table (in its own schema) with the columns `org_id`, `key`,
`request_hash`, `status_code` and a JSONB column for the response body (optionally one for
response headers); `IdempotencyTable` says which. A row is written in the same transaction as
the change. A transaction-scoped advisory lock on (org, key) makes a concurrent duplicate wait for
the first and then replay it. The same key with a different request is refused with 422
`IDEMPOTENCY_KEY_REUSED`; a key that is empty or too long with 400 `IDEMPOTENCY_KEY_INVALID`.

Usage: `answer = await run_idempotent(session, TABLE, org_id=..., key=..., req_hash=...,
create=...)`, then `answer.response()` (adds `Idempotent-Replayed: true` to a replay). A service
that must do slow work before creating (a call to another service) may `find_answer` first,
without the lock, to replay early.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, cast

from fastapi import Request, Response
from sqlalchemy import FromClause, Table, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from servicekit.errors import BadRequest, Unprocessable
from servicekit.jsonutil import FastJSONResponse, dumps, loads

MAX_KEY_LENGTH = 200
REPLAY_HEADER = "Idempotent-Replayed"


@dataclass(frozen=True)
class IdempotencyTable:
    """A service's table of stored answers and the names of its response columns."""

    table: FromClause
    body_column: str = "response"
    headers_column: str | None = None


@dataclass(frozen=True)
class Answer:
    """The answer of a creating request: made now, or replayed from the stored one."""

    status_code: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)
    replayed: bool = False

    def response(self, headers: Mapping[str, str] | None = None) -> Response:
        """This answer as a JSON response; `headers` are added to the stored ones."""
        out = {**self.headers, **(headers or {})}
        if self.replayed:
            out[REPLAY_HEADER] = "true"
        return FastJSONResponse(self.body, status_code=self.status_code, headers=out)


def check_key(key: str | None) -> str | None:
    """The key without surrounding blanks; None without a header; 400 when empty or too long."""
    if key is None:
        return None
    key = key.strip()
    if not key or len(key) > MAX_KEY_LENGTH:
        raise BadRequest(
            f"the Idempotency-Key header must be 1-{MAX_KEY_LENGTH} characters",
            code="IDEMPOTENCY_KEY_INVALID",
            errors=[
                {
                    "in": "header",
                    "field": "Idempotency-Key",
                    "message": f"1-{MAX_KEY_LENGTH} characters",
                }
            ],
        )
    return key


def request_hash(scope: str, body: bytes) -> str:
    """What makes two requests "the same": the route (`scope`) and the body."""
    return hashlib.sha256(scope.encode() + b"\n" + body).hexdigest()


async def request_fingerprint(request: Request) -> str:
    """`request_hash` of the method, the path and the raw body of a request."""
    return request_hash(f"{request.method} {request.url.path}", await request.body())


async def lock_key(session: AsyncSession, *, org_id: uuid.UUID, key: str) -> None:
    """Serialise requests with the same key until this transaction ends."""
    await session.execute(
        select(func.pg_advisory_xact_lock(func.hashtextextended(f"{org_id}:{key}", 0)))
    )


async def find_answer(
    session: AsyncSession, store: IdempotencyTable, *, org_id: uuid.UUID, key: str, req_hash: str
) -> Answer | None:
    """The stored answer of this key, None if there is none; 422 if it was another request."""
    c = store.table.c
    columns = [c.request_hash, c.status_code, c[store.body_column]]
    if store.headers_column is not None:
        columns.append(c[store.headers_column])
    row = (
        await session.execute(select(*columns).where(c.org_id == org_id, c.key == key))
    ).one_or_none()
    if row is None:
        return None
    if row[0] != req_hash:
        raise Unprocessable(
            "this Idempotency-Key was already used for a different request; use a new key for "
            "a different request",
            code="IDEMPOTENCY_KEY_REUSED",
        )
    headers = dict(row[3]) if store.headers_column is not None else {}
    return Answer(row[1], row[2], headers, replayed=True)


async def store_answer(
    session: AsyncSession,
    store: IdempotencyTable,
    *,
    org_id: uuid.UUID,
    key: str,
    req_hash: str,
    answer: Answer,
) -> None:
    values: dict[str, Any] = {
        "org_id": org_id,
        "key": key,
        "request_hash": req_hash,
        "status_code": answer.status_code,
        store.body_column: answer.body,
    }
    if store.headers_column is not None:
        values[store.headers_column] = answer.headers
    # A mapped class's `__table__` is typed as a FromClause; it is a Table.
    await session.execute(insert(cast(Table, store.table)).values(**values))


async def run_idempotent(
    session: AsyncSession,
    store: IdempotencyTable,
    *,
    org_id: uuid.UUID,
    key: str | None,
    req_hash: str,
    create: Callable[[], Awaitable[tuple[Any, dict[str, str]]]],
    status_code: int = 201,
) -> Answer:
    """Run `create` once per key; `create` returns (JSON-able body, response headers)."""
    checked = check_key(key)
    if checked is None:
        body, headers = await create()
        return Answer(status_code, body, headers)
    await lock_key(session, org_id=org_id, key=checked)
    stored = await find_answer(session, store, org_id=org_id, key=checked, req_hash=req_hash)
    if stored is not None:
        return stored
    body, headers = await create()
    answer = Answer(status_code, loads(dumps(body)), headers)
    await store_answer(session, store, org_id=org_id, key=checked, req_hash=req_hash, answer=answer)
    return answer


__all__ = [
    "MAX_KEY_LENGTH",
    "REPLAY_HEADER",
    "Answer",
    "IdempotencyTable",
    "check_key",
    "find_answer",
    "lock_key",
    "request_fingerprint",
    "request_hash",
    "run_idempotent",
    "store_answer",
]
