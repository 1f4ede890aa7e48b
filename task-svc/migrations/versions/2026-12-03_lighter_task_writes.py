"""Two indexes every transition wrote and no query reads.

A transition's UPDATE of its task is never a HOT update (status and assignee are indexed), so it
adds an entry to every index of `tasks`, and each event row to every index of `task_events`:

- `ix_tasks_deliverable_id` repeats the leading column of `uq_tasks_deliverable_id_node_key`,
  which serves every lookup by deliverable as well;
- `ix_task_events_org_id_created_at` serves no query (history is read per task, through
  `ix_task_events_task_id_id`).

Revision ID: task_0004
Revises: task_0003
Create Date: 2026-12-03
"""

from collections.abc import Sequence

from alembic import op

revision: str = "task_0004"
down_revision: str | None = "task_0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SCHEMA = "task"


def upgrade() -> None:
    op.drop_index("ix_tasks_deliverable_id", table_name="tasks", schema=SCHEMA)
    op.drop_index("ix_task_events_org_id_created_at", table_name="task_events", schema=SCHEMA)


def downgrade() -> None:
    op.create_index(
        "ix_task_events_org_id_created_at",
        "task_events",
        ["org_id", "created_at"],
        unique=False,
        schema=SCHEMA,
    )
    op.create_index(
        "ix_tasks_deliverable_id", "tasks", ["deliverable_id"], unique=False, schema=SCHEMA
    )
