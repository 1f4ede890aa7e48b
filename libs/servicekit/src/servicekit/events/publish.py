"""Writing a typed event into the outbox of the current unit of work."""

from __future__ import annotations

import uuid
from typing import Any

from pydantic import BaseModel
from sqlalchemy import Table
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.registry import dataschema_for, event_type_of, schema_version_of
from servicekit.outbox import add_event


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
    """Add `payload` (a contracts model) as an event; published only if the transaction commits.

    Write it after taking the aggregate's row lock, so that one aggregate's events get
    increasing outbox sequence numbers in commit order.
    """
    event_type = event_type_of(type(payload))
    if event_type is None:
        raise ValueError(f"{type(payload).__name__} has no `event_type` class variable")
    return await add_event(
        session,
        outbox,
        type=event_type,
        source=source,
        aggregate_type=aggregate_type,
        aggregate_id=aggregate_id,
        payload=payload.model_dump(mode="json"),
        event_id=event_id,
        headers={"dataschema": dataschema_for(event_type, schema_version_of(type(payload)))},
    )
