"""notify-svc: webhook endpoints, events stored once, deliveries, attempts, recover jobs and
idempotency keys.

Revision ID: notify_0002
Revises: notify_0001
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql as pg

revision: str = "notify_0002"
down_revision: str | None = "notify_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SCHEMA = "notify"
TS = sa.DateTime(timezone=True)


def _now() -> sa.Column:  # type: ignore[type-arg]
    return sa.Column("created_at", TS, nullable=False, server_default=sa.func.now())


def upgrade() -> None:
    op.create_table(
        "webhook_endpoint",
        sa.Column("id", pg.UUID(as_uuid=True), primary_key=True),
        sa.Column("org_id", pg.UUID(as_uuid=True), nullable=False),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("description", sa.Text, nullable=False, server_default=""),
        sa.Column("event_types", pg.ARRAY(sa.Text), nullable=False),
        sa.Column("rate_limit_per_second", sa.Integer, nullable=True),
        sa.Column("ordering", sa.Text, nullable=False, server_default="none"),
        sa.Column("active", sa.Boolean, nullable=False, server_default=sa.text("true")),
        sa.Column("disabled_reason", sa.Text, nullable=True),
        sa.Column("disabled_at", TS, nullable=True),
        sa.Column("secret_encrypted", sa.Text, nullable=False),
        sa.Column("previous_secret_encrypted", sa.Text, nullable=True),
        sa.Column("previous_secret_expires_at", TS, nullable=True),
        sa.Column("failing_since", TS, nullable=True),
        sa.Column("last_success_at", TS, nullable=True),
        sa.Column("row_version", sa.Integer, nullable=False, server_default="1"),
        _now(),
        sa.Column("updated_at", TS, nullable=False, server_default=sa.func.now()),
        sa.CheckConstraint("ordering IN ('none', 'per_subject')", name="ordering"),
        schema=SCHEMA,
    )
    op.create_index(
        "ix_webhook_endpoint_org_created",
        "webhook_endpoint",
        ["org_id", "created_at", "id"],
        schema=SCHEMA,
    )
    op.create_table(
        "webhook_event",
        sa.Column("id", pg.UUID(as_uuid=True), primary_key=True),
        sa.Column("org_id", pg.UUID(as_uuid=True), nullable=False),
        sa.Column("type", sa.Text, nullable=False),
        sa.Column("subject", sa.Text, nullable=True),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("occurred_at", TS, nullable=False),
        _now(),
        schema=SCHEMA,
    )
    _deliveries()
    op.create_table(
        "webhook_attempt",
        sa.Column("id", sa.BigInteger, sa.Identity(always=True), primary_key=True),
        sa.Column(
            "delivery_id",
            pg.UUID(as_uuid=True),
            sa.ForeignKey(f"{SCHEMA}.webhook_delivery.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("number", sa.Integer, nullable=False),
        sa.Column("attempted_at", TS, nullable=False),
        sa.Column("status_code", sa.Integer, nullable=True),
        sa.Column("duration_ms", sa.Integer, nullable=False),
        sa.Column("response_excerpt", sa.Text, nullable=True),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("next_attempt_at", TS, nullable=True),
        schema=SCHEMA,
    )
    op.create_index(
        "ix_webhook_attempt_delivery_id", "webhook_attempt", ["delivery_id"], schema=SCHEMA
    )
    op.create_table(
        "webhook_recover_job",
        sa.Column("id", pg.UUID(as_uuid=True), primary_key=True),
        sa.Column("org_id", pg.UUID(as_uuid=True), nullable=False),
        sa.Column(
            "endpoint_id",
            pg.UUID(as_uuid=True),
            sa.ForeignKey(f"{SCHEMA}.webhook_endpoint.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("since", TS, nullable=False),
        sa.Column("until", TS, nullable=False),
        sa.Column("status", sa.Text, nullable=False, server_default="running"),
        sa.Column("requeued", sa.Integer, nullable=False, server_default="0"),
        _now(),
        sa.Column("finished_at", TS, nullable=True),
        schema=SCHEMA,
    )
    op.create_table(
        "idempotency_key",
        sa.Column("org_id", pg.UUID(as_uuid=True), primary_key=True),
        sa.Column("key", sa.Text, primary_key=True),
        sa.Column("request_hash", sa.Text, nullable=False),
        sa.Column("status_code", sa.Integer, nullable=False),
        sa.Column("response_body", pg.JSONB, nullable=False),
        sa.Column("response_headers", pg.JSONB, nullable=False),
        _now(),
        schema=SCHEMA,
    )


def _deliveries() -> None:
    op.create_table(
        "webhook_delivery",
        sa.Column("id", pg.UUID(as_uuid=True), primary_key=True),
        sa.Column("seq", sa.BigInteger, sa.Identity(always=True), nullable=False),
        sa.Column("org_id", pg.UUID(as_uuid=True), nullable=False),
        sa.Column(
            "endpoint_id",
            pg.UUID(as_uuid=True),
            sa.ForeignKey(f"{SCHEMA}.webhook_endpoint.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column(
            "event_id",
            pg.UUID(as_uuid=True),
            sa.ForeignKey(f"{SCHEMA}.webhook_event.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("event_type", sa.Text, nullable=False),
        sa.Column("subject", sa.Text, nullable=True),
        sa.Column("status", sa.Text, nullable=False, server_default="pending"),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("next_attempt_at", TS, nullable=True, server_default=sa.func.now()),
        sa.Column("claimed_until", TS, nullable=True),
        sa.Column("enqueued_at", TS, nullable=True),
        sa.Column("last_status_code", sa.Integer, nullable=True),
        sa.Column("last_error", sa.Text, nullable=True),
        sa.Column("event_time", TS, nullable=False),
        sa.Column("delivered_at", TS, nullable=True),
        _now(),
        sa.Column("updated_at", TS, nullable=False, server_default=sa.func.now()),
        sa.UniqueConstraint("endpoint_id", "event_id"),
        sa.CheckConstraint(
            "status IN ('pending', 'delivering', 'succeeded', 'failed', 'dead')", name="status"
        ),
        schema=SCHEMA,
    )
    op.create_index(
        "ix_webhook_delivery_due",
        "webhook_delivery",
        ["next_attempt_at"],
        postgresql_where=sa.text("status IN ('pending', 'failed')"),
        schema=SCHEMA,
    )
    op.create_index(
        "ix_webhook_delivery_endpoint_due",
        "webhook_delivery",
        ["endpoint_id", "next_attempt_at"],
        postgresql_where=sa.text("status IN ('pending', 'failed')"),
        schema=SCHEMA,
    )
    op.create_index(
        "ix_webhook_delivery_claimed",
        "webhook_delivery",
        ["claimed_until"],
        postgresql_where=sa.text("status = 'delivering'"),
        schema=SCHEMA,
    )
    op.create_index(
        "ix_webhook_delivery_subject_open",
        "webhook_delivery",
        ["endpoint_id", "subject", "seq"],
        postgresql_where=sa.text("status IN ('pending', 'delivering', 'failed')"),
        schema=SCHEMA,
    )
    op.create_index(
        "ix_webhook_delivery_endpoint_created",
        "webhook_delivery",
        ["endpoint_id", "created_at", "id"],
        schema=SCHEMA,
    )
    op.create_index("ix_webhook_delivery_event_id", "webhook_delivery", ["event_id"], schema=SCHEMA)


def downgrade() -> None:
    for table in (
        "idempotency_key",
        "webhook_recover_job",
        "webhook_attempt",
        "webhook_delivery",
        "webhook_event",
        "webhook_endpoint",
    ):
        op.drop_table(table, schema=SCHEMA)
