"""Indexes of the per-endpoint due query: the dispatcher reads each active endpoint's busy rows
and its first due rows instead of ranking every due row.

- `ix_webhook_delivery_endpoint_open` (endpoint, next_attempt_at, seq) over open rows replaces
  `ix_webhook_delivery_endpoint_due` (endpoint, next_attempt_at) over pending and failed ones:
  it hands out an endpoint's due rows in delivery order (expired claims included) and stops at
  its free slots; the claims' per-endpoint scans use it as they used the old one.
- `ix_webhook_delivery_endpoint_busy` (endpoint) over rows being attempted or handed out: the
  in-flight count of one endpoint without reading its backlog.

Revision ID: notify_0004
Revises: notify_0003
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "notify_0004"
down_revision: str | None = "notify_0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SCHEMA = "notify"


def upgrade() -> None:
    op.create_index(
        "ix_webhook_delivery_endpoint_open",
        "webhook_delivery",
        ["endpoint_id", "next_attempt_at", "seq"],
        postgresql_where=sa.text("status IN ('pending', 'failed', 'delivering')"),
        schema=SCHEMA,
    )
    op.create_index(
        "ix_webhook_delivery_endpoint_busy",
        "webhook_delivery",
        ["endpoint_id"],
        postgresql_where=sa.text("status = 'delivering' OR enqueued_at IS NOT NULL"),
        schema=SCHEMA,
    )
    op.drop_index("ix_webhook_delivery_endpoint_due", table_name="webhook_delivery", schema=SCHEMA)


def downgrade() -> None:
    op.create_index(
        "ix_webhook_delivery_endpoint_due",
        "webhook_delivery",
        ["endpoint_id", "next_attempt_at"],
        postgresql_where=sa.text("status IN ('pending', 'failed')"),
        schema=SCHEMA,
    )
    op.drop_index("ix_webhook_delivery_endpoint_busy", table_name="webhook_delivery", schema=SCHEMA)
    op.drop_index("ix_webhook_delivery_endpoint_open", table_name="webhook_delivery", schema=SCHEMA)
