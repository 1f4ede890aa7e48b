"""qc-svc inspections: command answers keyed by any idempotency key (a body's client_event_id or
an Idempotency-Key header), with the response headers kept for replays.

`inspection_command.client_event_id` (uuid) becomes `key` (text); `response_headers` (the ETag)
replaces `row_version`.

Revision ID: qc_0004
Revises: qc_0003
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql as pg

revision: str = "qc_0004"
down_revision: str | None = "qc_0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SCHEMA = "qc"
TABLE = "inspection_command"


def upgrade() -> None:
    op.alter_column(
        TABLE,
        "client_event_id",
        new_column_name="key",
        type_=sa.Text(),
        postgresql_using="client_event_id::text",
        schema=SCHEMA,
    )
    op.add_column(
        TABLE,
        sa.Column(
            "response_headers", pg.JSONB(), server_default=sa.text("'{}'::jsonb"), nullable=False
        ),
        schema=SCHEMA,
    )
    op.execute(
        "UPDATE qc.inspection_command "
        "SET response_headers = jsonb_build_object('ETag', '\"' || row_version || '\"')"
    )
    op.drop_column(TABLE, "row_version", schema=SCHEMA)


def downgrade() -> None:
    op.add_column(TABLE, sa.Column("row_version", sa.Integer(), nullable=True), schema=SCHEMA)
    op.execute(
        "UPDATE qc.inspection_command "
        "SET row_version = trim(both '\"' from response_headers->>'ETag')::int"
    )
    # Keys that are not UUIDs (Idempotency-Key headers) have no place in the old column.
    op.execute(
        "DELETE FROM qc.inspection_command WHERE row_version IS NULL OR key !~ "
        "'^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$'"
    )
    op.alter_column(TABLE, "row_version", nullable=False, schema=SCHEMA)
    op.drop_column(TABLE, "response_headers", schema=SCHEMA)
    op.alter_column(
        TABLE,
        "key",
        new_column_name="client_event_id",
        type_=pg.UUID(as_uuid=True),
        postgresql_using="key::uuid",
        schema=SCHEMA,
    )
