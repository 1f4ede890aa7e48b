"""The transactional outbox and the consumer inbox: tables, and `emit`, the one way to write an
event.

An event is written in the same transaction as the change it describes; a relay publishes
committed rows later. An INSERT fires `NOTIFY <schema>_outbox` so the relay wakes at once.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel
from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Identity,
    Index,
    MetaData,
    Table,
    Text,
    func,
    insert,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.registry import dataschema_for, event_type_of, schema_version_of
from servicekit.context import current_traceparent, request_id_var


def outbox_table(metadata: MetaData) -> Table:
    return Table(
        "outbox",
        metadata,
        Column("id", UUID(as_uuid=True), primary_key=True),
        Column("seq", BigInteger, Identity(always=True), nullable=False, unique=True),
        Column("type", Text, nullable=False),
        Column("source", Text, nullable=False),
        Column("aggregate_type", Text, nullable=False),
        Column("aggregate_id", Text, nullable=False),
        Column("payload", JSONB, nullable=False),
        Column("headers", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
        Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        Column("published_at", DateTime(timezone=True), nullable=True),
        Index("ix_outbox_pending", "seq", postgresql_where=text("published_at IS NULL")),
        Index(
            "ix_outbox_published_at",
            "published_at",
            postgresql_where=text("published_at IS NOT NULL"),
        ),
    )


def inbox_table(metadata: MetaData) -> Table:
    return Table(
        "inbox",
        metadata,
        Column("event_id", UUID(as_uuid=True), primary_key=True),
        Column("event_type", Text, nullable=False),
        Column("source", Text, nullable=False),
        Column("received_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    )


def notify_channel(schema: str) -> str:
    return f"{schema}_outbox"


def create_outbox_sql(schema: str) -> list[str]:
    """DDL for the NOTIFY trigger (tables come from the metadata in the first migration)."""
    channel = notify_channel(schema)
    return [
        f"""
        CREATE OR REPLACE FUNCTION "{schema}".outbox_notify() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify('{channel}', '');
            RETURN NULL;
        END $$;
        """,
        f"""
        CREATE TRIGGER outbox_notify AFTER INSERT ON "{schema}".outbox
        FOR EACH STATEMENT EXECUTE FUNCTION "{schema}".outbox_notify();
        """,
    ]


def drop_outbox_sql(schema: str) -> list[str]:
    return [
        f'DROP TRIGGER IF EXISTS outbox_notify ON "{schema}".outbox',
        f'DROP FUNCTION IF EXISTS "{schema}".outbox_notify()',
    ]


def event_headers() -> dict[str, str]:
    """What travels with an event so its handling joins the request's trace and logs."""
    headers: dict[str, str] = {}
    traceparent = current_traceparent()
    if traceparent:
        headers["traceparent"] = traceparent
    rid = request_id_var.get()
    if rid:
        headers["request_id"] = rid
    return headers


async def emit(
    session: AsyncSession,
    outbox: Table,
    payload: BaseModel,
    *,
    source: str,
    aggregate_type: str,
    aggregate_id: Any,
    event_id: uuid.UUID | None = None,
) -> uuid.UUID:
    """Add `payload` (a libs/contracts model) as an event of this unit of work; it is published
    only if the transaction commits. The event carries its contract's `dataschema`, the trace
    and the request id; `aggregate_id` becomes the CloudEvents `subject`.

    Write it after taking the aggregate's row lock, so that one aggregate's events get
    increasing outbox sequence numbers in commit order.
    """
    event_type = event_type_of(type(payload))
    if event_type is None:
        raise ValueError(f"{type(payload).__name__} has no `event_type` class variable")
    eid = event_id or uuid.uuid4()
    headers = event_headers()
    headers["dataschema"] = dataschema_for(event_type, schema_version_of(type(payload)))
    await session.execute(
        insert(outbox).values(
            id=eid,
            type=event_type,
            source=source,
            aggregate_type=aggregate_type,
            aggregate_id=str(aggregate_id),
            payload=payload.model_dump(mode="json"),
            headers=headers,
        )
    )
    return eid


@dataclass(frozen=True, slots=True)
class OutboxEvent:
    """A contracts model as the outbox row `emit` writes, for callers inserting many in one
    statement: `payload` is the model's JSON; `dataschema` joins the headers of `event_headers`."""

    id: uuid.UUID
    type: str
    aggregate_type: str
    aggregate_id: str
    payload: str
    dataschema: str


def outbox_event(model: BaseModel, *, aggregate_type: str, aggregate_id: Any) -> OutboxEvent:
    """The outbox row of `model` (a contracts model with `event_type`), typed and versioned as
    `emit` writes it."""
    cls = type(model)
    event_type = event_type_of(cls)
    if event_type is None:
        raise ValueError(f"{cls.__name__} has no `event_type` class variable")
    return OutboxEvent(
        id=uuid.uuid4(),
        type=event_type,
        aggregate_type=aggregate_type,
        aggregate_id=str(aggregate_id),
        payload=model.model_dump_json(),
        dataschema=dataschema_for(event_type, schema_version_of(cls)),
    )
