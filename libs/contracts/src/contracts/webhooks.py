"""Events notify-svc publishes about webhook endpoints, and the test event it sends on request."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field

WEBHOOK_ENDPOINT_DISABLED = "webhook.endpoint.disabled"
WEBHOOK_TEST = "webhook.test"


class WebhookEndpointDisabledV1(BaseModel):
    """A webhook endpoint was disabled by the platform: it answered 410 Gone, or it kept failing
    without a success for the failure window. Nothing is sent to it until it is re-enabled."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    event_type: ClassVar[str] = WEBHOOK_ENDPOINT_DISABLED
    schema_version: ClassVar[int] = 1

    endpoint_id: uuid.UUID
    org_id: uuid.UUID
    url: str
    reason: str = Field(description="why, e.g. 'the endpoint answered 410 Gone'")
    disabled_at: datetime


class WebhookTestV1(BaseModel):
    """A test event, sent to one endpoint on request (`POST .../endpoints/{id}/test`)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    event_type: ClassVar[str] = WEBHOOK_TEST
    schema_version: ClassVar[int] = 1

    endpoint_id: uuid.UUID
    org_id: uuid.UUID
    message: str = "This is a test event from Blueprint."
    sent_at: datetime


__all__ = [
    "WEBHOOK_ENDPOINT_DISABLED",
    "WEBHOOK_TEST",
    "WebhookEndpointDisabledV1",
    "WebhookTestV1",
]
