"""An index of open tasks by due date, across orgs, for notify-svc's deadline reminders.

`GET /internal/tasks/due` reads the open tasks due in a window (the next hour, the last day)
for every org at once; `ix_tasks_org_id_due_at_open` leads with the org and cannot serve it.

Revision ID: task_0005_due_reminders
Revises: task_0004
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "task_0005_due_reminders"
down_revision: str | None = "task_0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SCHEMA = "task"


def upgrade() -> None:
    op.create_index(
        "ix_tasks_due_at_open",
        "tasks",
        ["due_at"],
        unique=False,
        schema=SCHEMA,
        postgresql_where=sa.text("status NOT IN ('done', 'cancelled') AND due_at IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_tasks_due_at_open", table_name="tasks", schema=SCHEMA)
