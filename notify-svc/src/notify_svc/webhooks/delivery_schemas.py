"""Bodies of the delivery routes: deliveries, their attempts, replay, test, recover jobs."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from servicekit.pagination import CursorPage

DeliveryStatus = Literal["pending", "delivering", "succeeded", "failed", "dead"]

DELIVERY_EXAMPLE: dict[str, Any] = {
    "id": "8e2d4c6a-0b1f-4e3d-9c5b-7a6f5e4d3c2b",
    "endpoint_id": "3d9a7c4e-1f2b-4c5d-8e6f-7a8b9c0d1e2f",
    "event_id": "1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d",
    "event_type": "task.status_changed",
    "subject": "6f5e4d3c-2b1a-4098-8765-43210fedcba9",
    "status": "failed",
    "attempts": 2,
    "next_attempt_at": "2026-12-01T09:20:05Z",
    "last_status_code": 500,
    "last_error": None,
    "created_at": "2026-12-01T09:15:00Z",
    "delivered_at": None,
    "updated_at": "2026-12-01T09:15:05Z",
}
ATTEMPT_EXAMPLE: dict[str, Any] = {
    "number": 2,
    "attempted_at": "2026-12-01T09:15:05Z",
    "status_code": 500,
    "duration_ms": 42,
    "response_excerpt": '{"error": "database unavailable"}',
    "error": None,
    "next_attempt_at": "2026-12-01T09:20:05Z",
}


class DeliveryRead(BaseModel):
    model_config = ConfigDict(
        from_attributes=True, json_schema_extra={"examples": [DELIVERY_EXAMPLE]}
    )

    id: uuid.UUID
    endpoint_id: uuid.UUID
    event_id: uuid.UUID = Field(description="also the `webhook-id` header of every attempt")
    event_type: str
    subject: str | None
    status: DeliveryStatus
    attempts: int
    next_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None
    updated_at: datetime


class AttemptRead(BaseModel):
    model_config = ConfigDict(
        from_attributes=True, json_schema_extra={"examples": [ATTEMPT_EXAMPLE]}
    )

    number: int
    attempted_at: datetime
    status_code: int | None
    duration_ms: int
    response_excerpt: str | None = Field(description="the first KiB of the answer")
    error: str | None
    next_attempt_at: datetime | None


class DeliveryDetail(DeliveryRead):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{**DELIVERY_EXAMPLE, "history": [ATTEMPT_EXAMPLE]}]}
    )

    history: list[AttemptRead] = Field(description="every attempt, oldest first")


class DeliveryPage(CursorPage[DeliveryRead]):
    pass


class RecoverRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"since": "2026-12-01T00:00:00Z", "until": "2026-12-02T00:00:00Z"}]
        },
    )

    since: datetime
    until: datetime | None = Field(default=None, description="default: now")

    @model_validator(mode="after")
    def _window(self) -> RecoverRequest:
        if self.since.tzinfo is None or (self.until is not None and self.until.tzinfo is None):
            raise ValueError("since and until need a time zone, e.g. 2026-12-01T00:00:00Z")
        if self.until is not None and self.until <= self.since:
            raise ValueError("until must be after since")
        return self


class RecoverJobRead(BaseModel):
    model_config = ConfigDict(
        from_attributes=True,
        json_schema_extra={
            "examples": [
                {
                    "id": "4b3a2c1d-0e9f-4a8b-7c6d-5e4f3a2b1c0d",
                    "endpoint_id": "3d9a7c4e-1f2b-4c5d-8e6f-7a8b9c0d1e2f",
                    "since": "2026-12-01T00:00:00Z",
                    "until": "2026-12-02T00:00:00Z",
                    "status": "running",
                    "requeued": 1000,
                    "created_at": "2026-12-02T08:00:00Z",
                    "finished_at": None,
                }
            ]
        },
    )

    id: uuid.UUID
    endpoint_id: uuid.UUID
    since: datetime
    until: datetime
    status: Literal["running", "done"]
    requeued: int = Field(description="failed and dead deliveries sent again so far")
    created_at: datetime
    finished_at: datetime | None
