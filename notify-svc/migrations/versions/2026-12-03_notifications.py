"""notify-svc: e-mail notifications: contacts, per-org rules and settings, notifications (the
truth of each message to send) and their attempts.

Revision ID: notify_0003
Revises: notify_0002
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql as pg

revision: str = "notify_0003"
down_revision: str | None = "notify_0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SCHEMA = "notify"
TS = sa.DateTime(timezone=True)
UUID = pg.UUID(as_uuid=True)


def _ts(name: str) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(name, TS, nullable=False, server_default=sa.func.now())


def upgrade() -> None:
    op.create_table(
        "notification_contact",
        sa.Column("org_id", UUID, primary_key=True),
        sa.Column("user_id", UUID, primary_key=True),
        sa.Column("email", sa.Text, nullable=False),
        sa.Column("name", sa.Text, nullable=False, server_default=""),
        sa.Column("locale", sa.Text, nullable=False, server_default="en"),
        sa.Column("quiet", sa.Boolean, nullable=False, server_default=sa.text("false")),
        _ts("created_at"),
        _ts("updated_at"),
        schema=SCHEMA,
    )
    op.create_table(
        "notification_rule",
        sa.Column("org_id", UUID, primary_key=True),
        sa.Column("event_type", sa.Text, primary_key=True),
        sa.Column("enabled", sa.Boolean, nullable=False),
        sa.Column("recipients", pg.JSONB, nullable=False),
        _ts("updated_at"),
        schema=SCHEMA,
    )
    op.create_table(
        "notification_settings",
        sa.Column("org_id", UUID, primary_key=True),
        sa.Column("reminder_lead_minutes", sa.Integer, nullable=False, server_default="60"),
        sa.Column("overdue_notices", sa.Boolean, nullable=False, server_default=sa.text("true")),
        sa.Column("approvers_email", sa.Text, nullable=True),
        sa.Column("webhook_secret_encrypted", sa.Text, nullable=True),
        _ts("updated_at"),
        schema=SCHEMA,
    )
    op.create_table(
        "notification",
        sa.Column("id", UUID, primary_key=True),
        sa.Column("org_id", UUID, nullable=False),
        sa.Column("channel", sa.Text, nullable=False),
        sa.Column("rule", sa.Text, nullable=False),
        sa.Column("dedup_key", sa.Text, nullable=True),
        sa.Column("event_id", sa.Text, nullable=True),
        sa.Column("recipient_kind", sa.Text, nullable=False),
        sa.Column("recipient_user_id", UUID, nullable=True),
        sa.Column("to_address", sa.Text, nullable=True),
        sa.Column("url", sa.Text, nullable=True),
        sa.Column("context", pg.JSONB, nullable=False),
        sa.Column("status", sa.Text, nullable=False, server_default="queued"),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("max_attempts", sa.Integer, nullable=False, server_default="3"),
        sa.Column("next_attempt_at", TS, nullable=True, server_default=sa.func.now()),
        sa.Column("claimed_until", TS, nullable=True),
        sa.Column("enqueued_at", TS, nullable=True),
        sa.Column("handed_over_at", TS, nullable=True),
        sa.Column("last_error", sa.Text, nullable=True),
        sa.Column("sent_to", sa.Text, nullable=True),
        sa.Column("sent_at", TS, nullable=True),
        _ts("created_at"),
        _ts("updated_at"),
        sa.UniqueConstraint("org_id", "dedup_key"),
        sa.CheckConstraint(
            "status IN ('queued', 'sending', 'sent', 'failed', 'skipped')", name="status"
        ),
        sa.CheckConstraint("channel IN ('email', 'webhook')", name="channel"),
        schema=SCHEMA,
    )
    op.create_index(
        "ix_notification_due",
        "notification",
        ["next_attempt_at"],
        postgresql_where=sa.text("status = 'queued'"),
        schema=SCHEMA,
    )
    op.create_index(
        "ix_notification_claimed",
        "notification",
        ["claimed_until"],
        postgresql_where=sa.text("status = 'sending'"),
        schema=SCHEMA,
    )
    op.create_index(
        "ix_notification_org_status_created",
        "notification",
        ["org_id", "status", "created_at", "id"],
        schema=SCHEMA,
    )
    op.create_table(
        "notification_attempt",
        sa.Column("id", sa.BigInteger, sa.Identity(always=True), primary_key=True),
        sa.Column(
            "notification_id",
            UUID,
            sa.ForeignKey(f"{SCHEMA}.notification.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("number", sa.Integer, nullable=False),
        sa.Column("attempted_at", TS, nullable=False),
        sa.Column("duration_ms", sa.Integer, nullable=False),
        sa.Column("outcome", sa.Text, nullable=False),
        sa.Column("error", sa.Text, nullable=True),
        schema=SCHEMA,
    )
    op.create_index(
        "ix_notification_attempt_notification_id",
        "notification_attempt",
        ["notification_id"],
        schema=SCHEMA,
    )


def downgrade() -> None:
    for table in (
        "notification_attempt",
        "notification",
        "notification_settings",
        "notification_rule",
        "notification_contact",
    ):
        op.drop_table(table, schema=SCHEMA)
