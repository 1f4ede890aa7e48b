"""task-svc initial schema: the outbox and inbox every service has.

Revision ID: task_0001
Revises:
Create Date: 2026-11-22
"""

from collections.abc import Sequence

from alembic import op

from servicekit.migration_ops import create_outbox_and_inbox, drop_outbox_and_inbox

revision: str = "task_0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SCHEMA = "task"


def upgrade() -> None:
    create_outbox_and_inbox(op, SCHEMA)


def downgrade() -> None:
    drop_outbox_and_inbox(op, SCHEMA)
