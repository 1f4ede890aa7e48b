"""The CloudEvents 1.0 envelope every event travels in (JSON format, one object per event)."""

from __future__ import annotations

from datetime import datetime
from typing import Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field

DataT = TypeVar("DataT")

SPEC_VERSION = "1.0"


class CloudEvent(BaseModel, Generic[DataT]):
    """A CloudEvents 1.0 event whose `data` is a typed payload model.

    Besides the required and optional core attributes it carries the W3C `traceparent`
    (distributed tracing extension), `aggregatetype` and `sequence` (the producer's outbox
    order, increasing per aggregate).
    """

    model_config = ConfigDict(extra="ignore", frozen=True)

    id: str = Field(description="event id: the outbox row id, the consumers' idempotency key")
    source: str = Field(description="the producing service, e.g. `task-svc`")
    type: str = Field(description="`<entity>.<what_happened>`, e.g. `task.status_changed`")
    specversion: str = SPEC_VERSION
    time: datetime = Field(description="when the change was made (its transaction's time)")
    subject: str | None = Field(default=None, description="the aggregate's id")
    datacontenttype: str = "application/json"
    dataschema: str | None = Field(default=None, description="`urn:blueprint:event:<type>:v<n>`")
    data: DataT
    traceparent: str | None = None
    aggregatetype: str | None = None
    sequence: str | None = None


Envelope = CloudEvent

__all__ = ["SPEC_VERSION", "CloudEvent", "DataT", "Envelope"]
