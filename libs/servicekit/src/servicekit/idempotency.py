"""Idempotent commands and creating POSTs: the same key again replays the first answer.

A client names a request with a key: `client_event_id` in the body or an `Idempotency-Key`
header (either; both sent must agree). The rules are plain functions, so any storage can apply
them:

- `command_key(client_event_id, idempotency_key)`: the key; 400 `IDEMPOTENCY_KEY_INVALID` when
  empty or longer than 200 characters, 400 `IDEMPOTENCY_KEY_MISMATCH` when body and header differ
  (`required_command_key`: 422 when a command that needs one has neither);
- `fingerprint(scope, request)`: what makes two requests "the same" (the route or command, and the
  request's arguments as canonical JSON), as a short hash;
- `replay(stored, key=, request_hash=)`: the stored answer, marked replayed, when the request is
  the same; otherwise 409 `IDEMPOTENCY_KEY_REUSED`. A replay does nothing else.

Storage is the service's own table, written in the same transaction as the change. With the
columns `org_id`, `key`, `request_hash`, `status_code` and a response body (JSONB, or text to
replay the exact bytes), optionally response headers and columns of the service's own,
`IdempotencyTable` describes it and `run_command` does the rest: a transaction-scoped advisory
lock on (table, org, key) makes a concurrent duplicate wait for the first and then replay it.
A service whose answers live elsewhere (task-svc keeps them on its task events, under a unique
index on `client_event_id`) reads its stored row itself and applies `replay`.

Creating POSTs: `answer = await run_idempotent(session, TABLE, org_id=..., key=..., req_hash=...,
create=...)`, then `answer.response()` (adds `Idempotent-Replayed: true` to a replay). A service
that must do slow work before creating may `find_answer` first, without the lock, to replay early.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, cast

import orjson
from fastapi import Request, Response
from sqlalchemy import FromClause, Table, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from servicekit.errors import BadRequest, Conflict, Unprocessable
from servicekit.jsonutil import FastJSONResponse, dumps, loads

MAX_KEY_LENGTH = 200
REPLAY_HEADER = "Idempotent-Replayed"
KEY_REUSED = "IDEMPOTENCY_KEY_REUSED"
HEADER = "Idempotency-Key"
BODY_FIELD = "client_event_id"


# --- the rules (no I/O) -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CommandKey:
    """A request's idempotency key and where the client sent it (`client_event_id` in the body
    or the `Idempotency-Key` header), so a refusal names the right one."""

    value: str
    field: str = HEADER


@dataclass(frozen=True)
class Answer:
    """The answer of a request: made now, or replayed from the stored one.

    `body` is JSON-able, or the exact bytes of a JSON body to send as they are.
    """

    status_code: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)
    replayed: bool = False

    def response(self, headers: Mapping[str, str] | None = None) -> Response:
        """This answer as a JSON response; `headers` are added to the stored ones."""
        out = {**self.headers, **(headers or {})}
        if self.replayed:
            out[REPLAY_HEADER] = "true"
        if isinstance(self.body, bytes):
            return Response(
                self.body, status_code=self.status_code, media_type="application/json", headers=out
            )
        return FastJSONResponse(self.body, status_code=self.status_code, headers=out)


@dataclass(frozen=True)
class StoredAnswer:
    """What a service stored for a key: the request's hash and its answer. `context` says what
    the key was used for (e.g. `{"original_action": "add_defect"}`), shown in a 409."""

    request_hash: str
    status_code: int
    body: Any
    headers: Mapping[str, str] = field(default_factory=dict)
    context: Mapping[str, Any] = field(default_factory=dict)


def check_key(key: str | None, *, field: str = HEADER) -> str | None:
    """The key without surrounding blanks; None without one; 400 when empty or too long."""
    if key is None:
        return None
    key = key.strip()
    if not key or len(key) > MAX_KEY_LENGTH:
        where = "header" if field == HEADER else "body"
        raise BadRequest(
            f"{field} must be 1-{MAX_KEY_LENGTH} characters",
            code="IDEMPOTENCY_KEY_INVALID",
            errors=[{"in": where, "field": field, "message": f"1-{MAX_KEY_LENGTH} characters"}],
        )
    return key


def command_key(
    client_event_id: str | uuid.UUID | None, idempotency_key: str | None
) -> CommandKey | None:
    """The key of a command from the body's `client_event_id` or the `Idempotency-Key` header;
    None when neither was sent; 400 when both were and they differ."""
    header = check_key(idempotency_key)
    if client_event_id is None:
        return CommandKey(header) if header is not None else None
    body = check_key(str(client_event_id), field=BODY_FIELD)
    assert body is not None
    if header is not None and header != body:
        raise BadRequest(
            f"client_event_id ({body}) and the Idempotency-Key header ({header}) disagree: "
            "send one of them",
            code="IDEMPOTENCY_KEY_MISMATCH",
            errors=[
                {"in": "header", "field": HEADER, "message": "disagrees with the body"},
                {"in": "body", "field": BODY_FIELD, "message": f"disagrees with {HEADER}"},
            ],
        )
    return CommandKey(body, BODY_FIELD)


def required_command_key(
    client_event_id: str | uuid.UUID | None, idempotency_key: str | None, *, where: str = "body"
) -> CommandKey:
    """`command_key` for a command that must carry a key: 422 when neither was sent (a field of
    the request is missing). `where` says where `client_event_id` goes: body or query."""
    key = command_key(client_event_id, idempotency_key)
    if key is None:
        raise Unprocessable(
            f"invalid fields: {BODY_FIELD} (required: your id for this command, so a retry "
            f"cannot apply it twice; or send an {HEADER} header)",
            code="VALIDATION_FAILED",
            title="Request is not valid",
            errors=[
                {
                    "in": where,
                    "field": BODY_FIELD,
                    "message": f"required field is missing (or send an {HEADER} header)",
                    "type": "missing",
                }
            ],
        )
    return key


def fingerprint(scope: str, request: Any) -> str:
    """What makes two requests "the same": `scope` (the route or command and its target) and the
    request's arguments (JSON-able; key order does not matter)."""
    raw = orjson.dumps(request, default=_json_default, option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(scope.encode() + b"\n" + raw).hexdigest()


def _json_default(value: Any) -> Any:
    return loads(dumps(value))


def request_hash(scope: str, body: bytes) -> str:
    """`fingerprint` of a raw request body: the route (`scope`) and the body's bytes."""
    return hashlib.sha256(scope.encode() + b"\n" + body).hexdigest()


async def request_fingerprint(request: Request) -> str:
    """`request_hash` of the method, the path and the raw body of a request."""
    return request_hash(f"{request.method} {request.url.path}", await request.body())


def key_reused(key: CommandKey, context: Mapping[str, Any] | None = None) -> Conflict:
    """409: the key was already used for another request."""
    extra: dict[str, Any] = {
        "client_event_id" if key.field == BODY_FIELD else "idempotency_key": key.value,
        **(context or {}),
    }
    return Conflict(
        f"{key.field} {key.value!r} was already used for a different request; use a new "
        f"{key.field} for a new request",
        code=KEY_REUSED,
        **extra,
    )


def replay(stored: StoredAnswer, *, key: CommandKey, request_hash: str) -> Answer:
    """The stored answer of `key` for the same request (marked replayed); 409 for another."""
    if stored.request_hash != request_hash:
        raise key_reused(key, stored.context)
    return Answer(stored.status_code, stored.body, dict(stored.headers), replayed=True)


# --- storage in the service's own table ---------------------------------------------------------


@dataclass(frozen=True)
class IdempotencyTable:
    """A service's table of stored answers and the names of its response columns.

    `body_as_text`: the body column is text holding the exact bytes of the first answer.
    `context_columns`: service columns written with the answer and shown in a 409 as
    `original_<name>`.
    """

    table: FromClause
    body_column: str = "response"
    headers_column: str | None = None
    body_as_text: bool = False
    context_columns: tuple[str, ...] = ()


async def lock_key(
    session: AsyncSession, *, org_id: uuid.UUID, key: str, table: FromClause | None = None
) -> None:
    """Serialise requests with the same key until this transaction ends."""
    name = f"{getattr(table, 'fullname', '')}:{org_id}:{key}"
    await session.execute(select(func.pg_advisory_xact_lock(func.hashtextextended(name, 0))))


async def stored_answer(
    session: AsyncSession, store: IdempotencyTable, *, org_id: uuid.UUID, key: str
) -> StoredAnswer | None:
    """The stored answer of a key, None if there is none."""
    c = store.table.c
    columns = [c.request_hash, c.status_code, c[store.body_column]]
    columns += [c[name] for name in store.context_columns]
    if store.headers_column is not None:
        columns.append(c[store.headers_column])
    row = (
        await session.execute(select(*columns).where(c.org_id == org_id, c.key == key))
    ).one_or_none()
    if row is None:
        return None
    context = {f"original_{n}": _plain(row[3 + i]) for i, n in enumerate(store.context_columns)}
    headers = dict(row[-1]) if store.headers_column is not None else {}
    body = row[2].encode() if store.body_as_text else row[2]
    return StoredAnswer(row[0], row[1], body, headers, context)


def _plain(value: Any) -> Any:
    return str(value) if isinstance(value, uuid.UUID) else value


async def find_answer(
    session: AsyncSession, store: IdempotencyTable, *, org_id: uuid.UUID, key: str, req_hash: str
) -> Answer | None:
    """The stored answer of this `Idempotency-Key`, None if there is none; 409 if it was another
    request."""
    stored = await stored_answer(session, store, org_id=org_id, key=key)
    if stored is None:
        return None
    return replay(stored, key=CommandKey(key), request_hash=req_hash)


async def store_answer(
    session: AsyncSession,
    store: IdempotencyTable,
    *,
    org_id: uuid.UUID,
    key: str,
    req_hash: str,
    answer: Answer,
    values: Mapping[str, Any] | None = None,
) -> None:
    """Write the answer of `key`; `values` fill the service's own columns."""
    row: dict[str, Any] = {
        **(values or {}),
        "org_id": org_id,
        "key": key,
        "request_hash": req_hash,
        "status_code": answer.status_code,
        store.body_column: answer.body,
    }
    if store.headers_column is not None:
        row[store.headers_column] = answer.headers
    # A mapped class's `__table__` is typed as a FromClause; it is a Table.
    await session.execute(insert(cast(Table, store.table)).values(**row))


async def run_command(
    session: AsyncSession,
    store: IdempotencyTable,
    *,
    org_id: uuid.UUID,
    key: CommandKey | None,
    request_hash: str,
    run: Callable[[], Awaitable[Answer]],
    values: Mapping[str, Any] | None = None,
) -> Answer:
    """Run `run` once per key: the same key again replays its answer, another request is a 409.

    Without a key, `run` simply runs. A refusal raised by `run` is not stored (it changed
    nothing, so sending the request again is harmless). `values` fill the service's columns.
    """
    if key is None:
        return await run()
    await lock_key(session, org_id=org_id, key=key.value, table=store.table)
    stored = await stored_answer(session, store, org_id=org_id, key=key.value)
    if stored is not None:
        return replay(stored, key=key, request_hash=request_hash)
    answer = await run()
    raw = answer.body if isinstance(answer.body, bytes) else dumps(answer.body)
    body = raw if store.body_as_text else loads(raw)
    await store_answer(
        session,
        store,
        org_id=org_id,
        key=key.value,
        req_hash=request_hash,
        answer=Answer(
            answer.status_code, raw.decode() if store.body_as_text else body, answer.headers
        ),
        values=values,
    )
    return Answer(answer.status_code, body, answer.headers)


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
    """`run_command` for a creating POST: `create` returns (JSON-able body, response headers)."""

    async def run() -> Answer:
        body, headers = await create()
        return Answer(status_code, body, headers)

    checked = check_key(key)
    return await run_command(
        session,
        store,
        org_id=org_id,
        key=CommandKey(checked) if checked is not None else None,
        request_hash=req_hash,
        run=run,
    )


__all__ = [
    "KEY_REUSED",
    "MAX_KEY_LENGTH",
    "REPLAY_HEADER",
    "Answer",
    "CommandKey",
    "IdempotencyTable",
    "StoredAnswer",
    "check_key",
    "command_key",
    "find_answer",
    "fingerprint",
    "key_reused",
    "lock_key",
    "replay",
    "request_fingerprint",
    "request_hash",
    "required_command_key",
    "run_command",
    "run_idempotent",
    "stored_answer",
]
