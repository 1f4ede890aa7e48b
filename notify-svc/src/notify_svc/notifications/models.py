"""Notification tables: contacts, per-org rules and settings, notifications and their attempts.

A `notification` row is the truth of one message to send (an e-mail, or an ad-hoc webhook): it
exists before any Celery message, Celery carries only its id, and beat re-drives it from here.
`dedup_key` (unique per org) makes a notification idempotent per (rule, event, recipient): a
repeated event or a second reminder scan inserts nothing.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from notify_svc.db import Base

STATUSES = ("queued", "sending", "sent", "failed", "skipped")


def _now() -> Any:
    return mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())


class Contact(Base):
    """How to reach a user (users live in the identity provider; this is all notify-svc keeps)."""

    __tablename__ = "notification_contact"

    org_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    email: Mapped[str] = mapped_column(Text, nullable=False)
    name: Mapped[str] = mapped_column(Text, nullable=False, server_default="")
    locale: Mapped[str] = mapped_column(Text, nullable=False, server_default="en")
    quiet: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=text("false"))
    created_at: Mapped[datetime] = _now()
    updated_at: Mapped[datetime] = _now()


class Rule(Base):
    """An org's rule for one event type; an event type without a row follows the default."""

    __tablename__ = "notification_rule"

    org_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    event_type: Mapped[str] = mapped_column(Text, primary_key=True)
    enabled: Mapped[bool] = mapped_column(Boolean, nullable=False)
    recipients: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, nullable=False)
    updated_at: Mapped[datetime] = _now()


class OrgSettings(Base):
    __tablename__ = "notification_settings"

    org_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    reminder_lead_minutes: Mapped[int] = mapped_column(Integer, nullable=False, server_default="60")
    overdue_notices: Mapped[bool] = mapped_column(
        Boolean, nullable=False, server_default=text("true")
    )
    approvers_email: Mapped[str | None] = mapped_column(Text, nullable=True)
    webhook_secret_encrypted: Mapped[str | None] = mapped_column(Text, nullable=True)
    updated_at: Mapped[datetime] = _now()


class Notification(Base):
    __tablename__ = "notification"
    __table_args__ = (
        UniqueConstraint("org_id", "dedup_key"),
        CheckConstraint(
            "status IN ('queued', 'sending', 'sent', 'failed', 'skipped')", name="status"
        ),
        CheckConstraint("channel IN ('email', 'webhook')", name="channel"),
        Index("ix_notification_due", "next_attempt_at", postgresql_where=text("status = 'queued'")),
        Index(
            "ix_notification_claimed",
            "claimed_until",
            postgresql_where=text("status = 'sending'"),
        ),
        Index("ix_notification_org_status_created", "org_id", "status", "created_at", "id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    org_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    channel: Mapped[str] = mapped_column(Text, nullable=False)
    # What asked for it: an event type, deadline.reminder / deadline.overdue, or adhoc.
    rule: Mapped[str] = mapped_column(Text, nullable=False)
    dedup_key: Mapped[str | None] = mapped_column(Text, nullable=True)
    event_id: Mapped[str | None] = mapped_column(Text, nullable=True)
    # Who: a user (resolved to a contact when sent), a role of the task (assignee, planner,
    # approvers), or a fixed address / URL.
    recipient_kind: Mapped[str] = mapped_column(Text, nullable=False)
    recipient_user_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True), nullable=True)
    to_address: Mapped[str | None] = mapped_column(Text, nullable=True)
    url: Mapped[str | None] = mapped_column(Text, nullable=True)
    # The template's variables (task id, due date, subject and body of an ad-hoc mail...).
    context: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False)
    status: Mapped[str] = mapped_column(Text, nullable=False, server_default="queued")
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    max_attempts: Mapped[int] = mapped_column(Integer, nullable=False, server_default="3")
    next_attempt_at: Mapped[datetime | None] = mapped_column(
        DateTime(timezone=True), nullable=True, server_default=func.now()
    )
    claimed_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    enqueued_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    # Set (committed) right before a mail goes to the SMTP server: a worker lost after it may
    # have delivered the mail, so the notification is failed, not sent again.
    handed_over_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    sent_to: Mapped[str | None] = mapped_column(Text, nullable=True)
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    created_at: Mapped[datetime] = _now()
    updated_at: Mapped[datetime] = _now()


class NotificationAttempt(Base):
    __tablename__ = "notification_attempt"

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    notification_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True),
        ForeignKey("notification.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    )
    number: Mapped[int] = mapped_column(Integer, nullable=False)
    attempted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    duration_ms: Mapped[int] = mapped_column(Integer, nullable=False)
    outcome: Mapped[str] = mapped_column(Text, nullable=False)  # sent | error | skipped
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
