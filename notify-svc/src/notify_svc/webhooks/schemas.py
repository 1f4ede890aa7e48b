"""Request and response bodies of /api/v1/webhooks/endpoints and /event-types."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from servicekit.bounds import INT4_MAX
from servicekit.pagination import CursorPage

EVENT_PATTERN = r"^(\*|[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*(\.\*)?)$"
EventPattern = Field(min_length=1, max_length=200, pattern=EVENT_PATTERN)

EXAMPLE_ENDPOINT_ID = "3d9a7c4e-1f2b-4c5d-8e6f-7a8b9c0d1e2f"
EXAMPLE_ORG_ID = "0b6f4e52-3a1d-4c8e-9f2a-6d5e4c3b2a19"
EXAMPLE_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSwHo5mF4zdsBM="  # noqa: S105 - an example

ENDPOINT_CREATE_EXAMPLE: dict[str, Any] = {
    "url": "https://erp.example.com/hooks/blueprint",
    "description": "ERP: task progress and QC failures",
    "event_types": ["task.*", "qc.inspection.failed"],
    "rate_limit_per_second": 20,
    "ordering": "per_subject",
}
ENDPOINT_READ_EXAMPLE: dict[str, Any] = {
    "id": EXAMPLE_ENDPOINT_ID,
    "org_id": EXAMPLE_ORG_ID,
    **ENDPOINT_CREATE_EXAMPLE,
    "active": True,
    "disabled_reason": None,
    "disabled_at": None,
    "failing_since": None,
    "last_success_at": None,
    "previous_secret_expires_at": None,
    "row_version": 1,
    "created_at": "2026-12-01T09:15:00Z",
    "updated_at": "2026-12-01T09:15:00Z",
}


class EndpointCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [ENDPOINT_CREATE_EXAMPLE]}
    )

    url: str = Field(
        min_length=1, max_length=2000, description="http(s) URL the events are POSTed to"
    )
    description: str = Field(default="", max_length=500)
    event_types: list[str] = Field(
        min_length=1,
        max_length=50,
        description="event types or patterns: `task.status_changed`, `task.*`, `*`",
    )
    rate_limit_per_second: int | None = Field(
        default=None, ge=1, le=10_000, description="most attempts per second to this endpoint"
    )
    ordering: Literal["none", "per_subject"] = Field(
        default="none",
        description="per_subject: one subject's events (e.g. one task's) are delivered strictly "
        "in order; a later one waits while an earlier one is pending retry",
    )


class EndpointUpdate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"active": True, "event_types": ["task.*"]}]},
    )

    url: str | None = Field(default=None, min_length=1, max_length=2000)
    description: str | None = Field(default=None, max_length=500)
    event_types: list[str] | None = Field(default=None, min_length=1, max_length=50)
    active: bool | None = Field(
        default=None, description="false pauses deliveries; true re-enables a disabled endpoint"
    )
    rate_limit_per_second: int | None = Field(default=None, ge=1, le=10_000)
    ordering: Literal["none", "per_subject"] | None = None
    expected_row_version: int | None = Field(
        default=None, ge=1, le=INT4_MAX, description='or an If-Match: "<row_version>" header'
    )


class EndpointRead(BaseModel):
    model_config = ConfigDict(
        from_attributes=True, json_schema_extra={"examples": [ENDPOINT_READ_EXAMPLE]}
    )

    id: uuid.UUID
    org_id: uuid.UUID
    url: str
    description: str
    event_types: list[str]
    rate_limit_per_second: int | None
    ordering: str
    active: bool
    disabled_reason: str | None
    disabled_at: datetime | None
    failing_since: datetime | None
    last_success_at: datetime | None
    previous_secret_expires_at: datetime | None = Field(
        description="until then the rotated-out secret signs too"
    )
    row_version: int
    created_at: datetime
    updated_at: datetime


class EndpointCreated(EndpointRead):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{**ENDPOINT_READ_EXAMPLE, "secret": EXAMPLE_SECRET}]}
    )

    secret: str = Field(description="the signing secret; shown this once, store it now")


class EndpointPage(CursorPage[EndpointRead]):
    pass


class RotateSecret(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"grace_period_seconds": 86400}]}
    )

    grace_period_seconds: int | None = Field(
        default=None,
        ge=0,
        le=7 * 24 * 3600,
        description="how long the old secret keeps signing too (default 24 h; 0: stop now)",
    )


class SecretRotated(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "endpoint_id": EXAMPLE_ENDPOINT_ID,
                    "secret": EXAMPLE_SECRET,
                    "previous_secret_expires_at": "2026-12-02T09:15:00Z",
                    "row_version": 2,
                }
            ]
        }
    )

    endpoint_id: uuid.UUID
    secret: str = Field(description="the new signing secret; shown this once")
    previous_secret_expires_at: datetime | None
    row_version: int


class EventTypeRead(BaseModel):
    type: str
    version: int
    producer: str
    description: str
    schema_: dict[str, Any] = Field(alias="schema", description="JSON Schema of `data`")

    model_config = ConfigDict(populate_by_name=True)


class EventTypeList(BaseModel):
    items: list[EventTypeRead]
