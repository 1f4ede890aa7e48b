"""qc-svc inspections: the history of decisions task-svc refused (`inspection.refusals`).

Revision ID: qc_0003
Revises: qc_0002
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql as pg

revision: str = "qc_0003"
down_revision: str | None = "qc_0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SCHEMA = "qc"


def upgrade() -> None:
    op.add_column(
        "inspection",
        sa.Column("refusals", pg.JSONB(), server_default=sa.text("'[]'::jsonb"), nullable=False),
        schema=SCHEMA,
    )


def downgrade() -> None:
    op.drop_column("inspection", "refusals", schema=SCHEMA)
