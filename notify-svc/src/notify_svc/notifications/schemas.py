"""Request and response bodies of /api/v1/notifications: contacts, rules, settings and jobs."""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from notify_svc.notifications.rules import check_address
from servicekit.pagination import CursorPage

RecipientKind = Literal["assignee", "planner", "approvers", "address"]
JobStatus = Literal["queued", "sending", "sent", "failed", "skipped"]
MAX_PAYLOAD_BYTES = 64 * 1024
EXAMPLE_USER = "7c1e2d3f-4a5b-4c6d-8e9f-0a1b2c3d4e5f"
EXAMPLE_JOB = "5b4a3c2d-1e0f-4a9b-8c7d-6e5f4a3b2c1d"


class ContactUpdate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"email": "ada@example.com", "name": "Ada Byron", "locale": "en", "quiet": False}
            ]
        },
    )

    email: str = Field(min_length=3, max_length=254, description="where this user's mail goes")
    name: str = Field(default="", max_length=200)
    locale: str = Field(default="en", min_length=2, max_length=16, pattern=r"^[A-Za-z_-]+$")
    quiet: bool = Field(default=False, description="true: send this user no e-mail at all")

    _email = field_validator("email")(check_address)


class ContactRead(BaseModel):
    model_config = ConfigDict(
        from_attributes=True,
        json_schema_extra={
            "examples": [
                {
                    "user_id": EXAMPLE_USER,
                    "email": "ada@example.com",
                    "name": "Ada Byron",
                    "locale": "en",
                    "quiet": False,
                    "updated_at": "2026-12-03T08:00:00Z",
                }
            ]
        },
    )

    user_id: uuid.UUID
    email: str
    name: str
    locale: str
    quiet: bool
    updated_at: datetime


class Recipient(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: RecipientKind = Field(
        description="assignee: the task's assignee; planner: who started the project; "
        "approvers: the org's approvers_email (settings); address: a fixed address"
    )
    address: str | None = Field(default=None, max_length=254, description="for kind=address")

    @model_validator(mode="after")
    def _address(self) -> Recipient:
        if self.kind == "address":
            if not self.address:
                raise ValueError("kind 'address' needs an address, e.g. qa@example.com")
            check_address(self.address)
        elif self.address is not None:
            raise ValueError(f"kind {self.kind!r} takes no address (use kind 'address')")
        return self


class RuleUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    event_type: str = Field(min_length=1, max_length=100)
    enabled: bool = True
    recipients: list[Recipient] = Field(default_factory=list, max_length=20)


class RulesUpdate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "rules": [
                        {
                            "event_type": "qc.inspection.failed",
                            "enabled": True,
                            "recipients": [
                                {"kind": "assignee"},
                                {"kind": "address", "address": "quality@example.com"},
                            ],
                        }
                    ]
                }
            ]
        },
    )

    rules: list[RuleUpdate] = Field(
        max_length=20, description="the rules to set; event types not listed keep their rule"
    )


class RuleRead(BaseModel):
    event_type: str
    description: str
    enabled: bool
    recipients: list[Recipient]
    is_default: bool = Field(description="true while the org has not changed this rule")


class RuleList(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "items": [
                        {
                            "event_type": "task.assigned",
                            "description": "a task was assigned to someone",
                            "enabled": True,
                            "recipients": [{"kind": "assignee", "address": None}],
                            "is_default": True,
                        }
                    ]
                }
            ]
        }
    )

    items: list[RuleRead]


class SettingsUpdate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "reminder_lead_minutes": 60,
                    "overdue_notices": True,
                    "approvers_email": "approvers@example.com",
                }
            ]
        },
    )

    reminder_lead_minutes: int = Field(
        default=60, ge=1, le=7 * 24 * 60, description="remind this long before a due date"
    )
    overdue_notices: bool = Field(default=True, description="one notice when a task is overdue")
    approvers_email: str | None = Field(
        default=None, max_length=254, description="where deliverables ready for sign-off go"
    )

    @field_validator("approvers_email")
    @classmethod
    def _approvers(cls, value: str | None) -> str | None:
        return None if value is None else check_address(value)


class SettingsRead(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "reminder_lead_minutes": 60,
                    "overdue_notices": True,
                    "approvers_email": "approvers@example.com",
                    "webhook_secret_set": True,
                    "updated_at": "2026-12-03T08:00:00Z",
                }
            ]
        }
    )

    reminder_lead_minutes: int
    overdue_notices: bool
    approvers_email: str | None
    webhook_secret_set: bool = Field(description="one-off webhook jobs can be signed")
    updated_at: datetime | None


class WebhookSecret(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSwHo5mF4zdsBM="}]
        }
    )

    secret: str = Field(description="signs one-off webhook jobs; shown this once")


class EmailJobCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "to": "ops@example.com",
                    "subject": "Line 2 stops at 14:00",
                    "body": "Maintenance on line 2 from 14:00 to 15:00.",
                }
            ]
        },
    )

    to: str | None = Field(default=None, max_length=254, description="an e-mail address")
    to_user: uuid.UUID | None = Field(
        default=None, description="or a user id with a contact (instead of `to`)"
    )
    subject: str = Field(min_length=1, max_length=200)
    body: str = Field(min_length=1, max_length=100_000, description="plain text")

    @field_validator("to")
    @classmethod
    def _to(cls, value: str | None) -> str | None:
        return None if value is None else check_address(value)

    @model_validator(mode="after")
    def _one_recipient(self) -> EmailJobCreate:
        if (self.to is None) == (self.to_user is None):
            raise ValueError("send exactly one of `to` (an address) and `to_user` (a user id)")
        return self


class WebhookJobCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "url": "https://erp.example.com/hooks/blueprint",
                    "payload": {"kind": "shift_report", "line": 2, "units": 418},
                }
            ]
        },
    )

    url: str = Field(min_length=1, max_length=2000, description="http(s) URL to POST to")
    payload: dict[str, Any] = Field(description="the JSON object to POST (at most 64 KiB)")

    @field_validator("payload")
    @classmethod
    def _size(cls, value: dict[str, Any]) -> dict[str, Any]:
        if len(json.dumps(value, separators=(",", ":"))) > MAX_PAYLOAD_BYTES:
            raise ValueError(f"the payload is larger than {MAX_PAYLOAD_BYTES} bytes as JSON")
        return value


class JobAccepted(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"job_id": EXAMPLE_JOB, "status": "queued"}]}
    )

    job_id: uuid.UUID
    status: JobStatus


class AttemptRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    number: int
    attempted_at: datetime
    duration_ms: int
    outcome: Literal["sent", "error", "skipped"]
    error: str | None


JOB_EXAMPLE: dict[str, Any] = {
    "id": EXAMPLE_JOB,
    "channel": "email",
    "rule": "adhoc",
    "status": "failed",
    "attempts": 3,
    "max_attempts": 3,
    "last_error": "SMTPResponseException: (451, 'try again later')",
    "to": "ops@example.com",
    "url": None,
    "sent_to": None,
    "next_attempt_at": None,
    "created_at": "2026-12-03T08:00:00Z",
    "updated_at": "2026-12-03T08:05:00Z",
    "sent_at": None,
}


class JobRead(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [JOB_EXAMPLE]})

    id: uuid.UUID
    channel: Literal["email", "webhook"]
    rule: str = Field(description="adhoc, an event type, deadline.reminder or deadline.overdue")
    status: JobStatus
    attempts: int
    max_attempts: int
    last_error: str | None
    to: str | None = Field(description="the fixed address, if the job has one")
    url: str | None
    sent_to: str | None = Field(description="where it went, once sent")
    next_attempt_at: datetime | None
    created_at: datetime
    updated_at: datetime
    sent_at: datetime | None


class JobDetail(JobRead):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    **JOB_EXAMPLE,
                    "history": [
                        {
                            "number": 1,
                            "attempted_at": "2026-12-03T08:00:01Z",
                            "duration_ms": 12,
                            "outcome": "error",
                            "error": "SMTPResponseException: (451, 'try again later')",
                        }
                    ],
                }
            ]
        }
    )

    history: list[AttemptRead] = Field(description="every attempt, oldest first")


class JobPage(CursorPage[JobRead]):
    pass
