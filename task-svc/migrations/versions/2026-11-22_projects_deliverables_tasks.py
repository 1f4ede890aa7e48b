"""task-svc domain tables: projects, org counters, deliverables, tasks, dependencies, events.

Revision ID: task_0002
Revises: task_0001
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "task_0002"
down_revision: str | None = "task_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "idempotency_keys",
        sa.Column("org_id", sa.UUID(), nullable=False),
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("request_hash", sa.Text(), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=False),
        sa.Column("response", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("org_id", "key", name=op.f("pk_idempotency_keys")),
        schema="task",
    )
    op.create_table(
        "org_counters",
        sa.Column("org_id", sa.UUID(), nullable=False),
        sa.Column("prefix", sa.Text(), server_default=sa.text("'DLV'"), nullable=False),
        sa.Column(
            "format", sa.Text(), server_default=sa.text("'{prefix}-{n:06d}'"), nullable=False
        ),
        sa.Column("next_value", sa.BigInteger(), server_default=sa.text("1"), nullable=False),
        sa.CheckConstraint("next_value >= 1", name=op.f("ck_org_counters_next_value_positive")),
        sa.PrimaryKeyConstraint("org_id", name=op.f("pk_org_counters")),
        schema="task",
    )
    op.create_table(
        "projects",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("org_id", sa.UUID(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("template_id", sa.UUID(), nullable=False),
        sa.Column("template_key", sa.Text(), nullable=False),
        sa.Column("template_version", sa.Integer(), nullable=False),
        sa.Column("template_checksum", sa.Text(), nullable=False),
        sa.Column("snapshot", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("status", sa.Text(), server_default=sa.text("'active'"), nullable=False),
        sa.Column("start_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("row_version", sa.Integer(), server_default=sa.text("1"), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("created_by", sa.Text(), nullable=False),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status IN ('active', 'on_hold', 'completed', 'cancelled')",
            name=op.f("ck_projects_status_known"),
        ),
        sa.CheckConstraint(
            "due_at IS NULL OR due_at >= start_at", name=op.f("ck_projects_due_after_start")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_projects")),
        schema="task",
    )
    op.create_index(
        "ix_projects_org_id_created_at_id",
        "projects",
        ["org_id", "created_at", "id"],
        unique=False,
        schema="task",
    )
    op.create_index(
        "ix_projects_org_id_status", "projects", ["org_id", "status"], unique=False, schema="task"
    )
    op.create_index(
        "ix_projects_org_id_template_id",
        "projects",
        ["org_id", "template_id"],
        unique=False,
        schema="task",
    )
    op.create_table(
        "deliverables",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("org_id", sa.UUID(), nullable=False),
        sa.Column("project_id", sa.UUID(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("serial", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), server_default=sa.text("'in_progress'"), nullable=False),
        sa.Column("row_version", sa.Integer(), server_default=sa.text("1"), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("signed_off_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("signed_off_by", sa.Text(), nullable=True),
        sa.CheckConstraint(
            "status IN ('in_progress', 'ready_for_signoff', 'signed_off')",
            name=op.f("ck_deliverables_status_known"),
        ),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["task.projects.id"],
            name=op.f("fk_deliverables_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_deliverables")),
        sa.UniqueConstraint("org_id", "serial", name=op.f("uq_deliverables_org_id_serial")),
        sa.UniqueConstraint(
            "project_id", "position", name=op.f("uq_deliverables_project_id_position")
        ),
        schema="task",
    )
    op.create_index(
        "ix_deliverables_project_id", "deliverables", ["project_id"], unique=False, schema="task"
    )
    op.create_table(
        "deliverable_signoffs",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("org_id", sa.UUID(), nullable=False),
        sa.Column("deliverable_id", sa.UUID(), nullable=False),
        sa.Column("decision", sa.Text(), nullable=False),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column(
            "reopen_task_ids",
            postgresql.ARRAY(sa.UUID()),
            server_default=sa.text("'{}'"),
            nullable=False,
        ),
        sa.Column("actor", sa.Text(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "decision IN ('approved', 'rejected')",
            name=op.f("ck_deliverable_signoffs_decision_known"),
        ),
        sa.ForeignKeyConstraint(
            ["deliverable_id"],
            ["task.deliverables.id"],
            name=op.f("fk_deliverable_signoffs_deliverable_id_deliverables"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_deliverable_signoffs")),
        schema="task",
    )
    op.create_index(
        "ix_deliverable_signoffs_deliverable_id",
        "deliverable_signoffs",
        ["deliverable_id"],
        unique=False,
        schema="task",
    )
    op.create_table(
        "tasks",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("org_id", sa.UUID(), nullable=False),
        sa.Column("project_id", sa.UUID(), nullable=False),
        sa.Column("deliverable_id", sa.UUID(), nullable=False),
        sa.Column("node_key", sa.Text(), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), server_default=sa.text("''"), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("work_kind", sa.Text(), nullable=False),
        sa.Column("priority", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("assigned_to", sa.UUID(), nullable=True),
        sa.Column("assigned_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("qc_required", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column(
            "qc_checklist",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'[]'::jsonb"),
            nullable=False,
        ),
        sa.Column("is_milestone", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("parent_id", sa.UUID(), nullable=True),
        sa.Column("open_blockers", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("estimate_hours", sa.Numeric(precision=10, scale=2), nullable=True),
        sa.Column("role_hint", sa.Text(), nullable=True),
        sa.Column("row_version", sa.Integer(), server_default=sa.text("1"), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "status IN ('blocked', 'ready', 'in_progress', 'on_hold', 'in_qc', 'rework', "
            "'done', 'cancelled')",
            name=op.f("ck_tasks_status_known"),
        ),
        sa.CheckConstraint(
            "work_kind IN ('work', 'qc', 'milestone')", name=op.f("ck_tasks_work_kind_known")
        ),
        sa.CheckConstraint("open_blockers >= 0", name=op.f("ck_tasks_open_blockers_not_negative")),
        sa.ForeignKeyConstraint(
            ["deliverable_id"],
            ["task.deliverables.id"],
            name=op.f("fk_tasks_deliverable_id_deliverables"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["parent_id"],
            ["task.tasks.id"],
            name=op.f("fk_tasks_parent_id_tasks"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["task.projects.id"],
            name=op.f("fk_tasks_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tasks")),
        sa.UniqueConstraint(
            "deliverable_id", "node_key", name=op.f("uq_tasks_deliverable_id_node_key")
        ),
        schema="task",
    )
    op.create_index(
        "ix_tasks_deliverable_id", "tasks", ["deliverable_id"], unique=False, schema="task"
    )
    op.create_index(
        "ix_tasks_org_id_assigned_to_id",
        "tasks",
        ["org_id", "assigned_to", "id"],
        unique=False,
        schema="task",
    )
    op.create_index(
        "ix_tasks_org_id_blocked",
        "tasks",
        ["org_id", "project_id"],
        unique=False,
        schema="task",
        postgresql_where=sa.text("open_blockers > 0"),
    )
    op.create_index(
        "ix_tasks_org_id_created_at_id",
        "tasks",
        ["org_id", "created_at", "id"],
        unique=False,
        schema="task",
    )
    op.create_index(
        "ix_tasks_org_id_due_at_open",
        "tasks",
        ["org_id", "due_at"],
        unique=False,
        schema="task",
        postgresql_where=sa.text("status NOT IN ('done', 'cancelled') AND due_at IS NOT NULL"),
    )
    op.create_index(
        "ix_tasks_org_id_kind", "tasks", ["org_id", "kind"], unique=False, schema="task"
    )
    op.create_index(
        "ix_tasks_org_id_milestones",
        "tasks",
        ["org_id", "project_id"],
        unique=False,
        schema="task",
        postgresql_where=sa.text("is_milestone"),
    )
    op.create_index(
        "ix_tasks_org_id_priority_id",
        "tasks",
        ["org_id", "priority", "id"],
        unique=False,
        schema="task",
    )
    op.create_index(
        "ix_tasks_org_id_project_id_id",
        "tasks",
        ["org_id", "project_id", "id"],
        unique=False,
        schema="task",
    )
    op.create_index(
        "ix_tasks_org_id_status_id",
        "tasks",
        ["org_id", "status", "id"],
        unique=False,
        schema="task",
    )
    op.create_index(
        "ix_tasks_parent_id",
        "tasks",
        ["parent_id"],
        unique=False,
        schema="task",
        postgresql_where=sa.text("parent_id IS NOT NULL"),
    )
    op.create_index(
        "ix_tasks_search",
        "tasks",
        [sa.literal_column("to_tsvector('simple', title || ' ' || description)")],
        unique=False,
        schema="task",
        postgresql_using="gin",
    )
    op.create_table(
        "task_dependencies",
        sa.Column("task_id", sa.UUID(), nullable=False),
        sa.Column("blocker_id", sa.UUID(), nullable=False),
        sa.CheckConstraint("task_id <> blocker_id", name=op.f("ck_task_dependencies_not_self")),
        sa.ForeignKeyConstraint(
            ["blocker_id"],
            ["task.tasks.id"],
            name=op.f("fk_task_dependencies_blocker_id_tasks"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["task_id"],
            ["task.tasks.id"],
            name=op.f("fk_task_dependencies_task_id_tasks"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("task_id", "blocker_id", name=op.f("pk_task_dependencies")),
        schema="task",
    )
    op.create_index(
        "ix_task_dependencies_blocker_id",
        "task_dependencies",
        ["blocker_id"],
        unique=False,
        schema="task",
    )
    op.create_table(
        "task_events",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("org_id", sa.UUID(), nullable=False),
        sa.Column("task_id", sa.UUID(), nullable=False),
        sa.Column("action", sa.Text(), nullable=False),
        sa.Column("from_status", sa.Text(), nullable=True),
        sa.Column("to_status", sa.Text(), nullable=False),
        sa.Column("actor", sa.Text(), nullable=False),
        sa.Column(
            "payload",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column("client_event_id", sa.Text(), nullable=True),
        sa.Column("row_version", sa.Integer(), nullable=False),
        sa.Column("request_id", sa.Text(), nullable=True),
        sa.Column("trace_id", sa.Text(), nullable=True),
        sa.Column("response", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["task_id"],
            ["task.tasks.id"],
            name=op.f("fk_task_events_task_id_tasks"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_task_events")),
        schema="task",
    )
    op.create_index(
        "ix_task_events_org_id_created_at",
        "task_events",
        ["org_id", "created_at"],
        unique=False,
        schema="task",
    )
    op.create_index(
        "ix_task_events_task_id_id", "task_events", ["task_id", "id"], unique=False, schema="task"
    )
    op.create_index(
        "uq_task_events_task_id_client_event_id",
        "task_events",
        ["task_id", "client_event_id"],
        unique=True,
        schema="task",
        postgresql_where=sa.text("client_event_id IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index(
        "uq_task_events_task_id_client_event_id",
        table_name="task_events",
        schema="task",
        postgresql_where=sa.text("client_event_id IS NOT NULL"),
    )
    op.drop_index("ix_task_events_task_id_id", table_name="task_events", schema="task")
    op.drop_index("ix_task_events_org_id_created_at", table_name="task_events", schema="task")
    op.drop_table("task_events", schema="task")
    op.drop_index("ix_task_dependencies_blocker_id", table_name="task_dependencies", schema="task")
    op.drop_table("task_dependencies", schema="task")
    op.drop_index("ix_tasks_search", table_name="tasks", schema="task", postgresql_using="gin")
    op.drop_index(
        "ix_tasks_parent_id",
        table_name="tasks",
        schema="task",
        postgresql_where=sa.text("parent_id IS NOT NULL"),
    )
    op.drop_index("ix_tasks_org_id_status_id", table_name="tasks", schema="task")
    op.drop_index("ix_tasks_org_id_project_id_id", table_name="tasks", schema="task")
    op.drop_index("ix_tasks_org_id_priority_id", table_name="tasks", schema="task")
    op.drop_index(
        "ix_tasks_org_id_milestones",
        table_name="tasks",
        schema="task",
        postgresql_where=sa.text("is_milestone"),
    )
    op.drop_index("ix_tasks_org_id_kind", table_name="tasks", schema="task")
    op.drop_index(
        "ix_tasks_org_id_due_at_open",
        table_name="tasks",
        schema="task",
        postgresql_where=sa.text("status NOT IN ('done', 'cancelled') AND due_at IS NOT NULL"),
    )
    op.drop_index("ix_tasks_org_id_created_at_id", table_name="tasks", schema="task")
    op.drop_index(
        "ix_tasks_org_id_blocked",
        table_name="tasks",
        schema="task",
        postgresql_where=sa.text("open_blockers > 0"),
    )
    op.drop_index("ix_tasks_org_id_assigned_to_id", table_name="tasks", schema="task")
    op.drop_index("ix_tasks_deliverable_id", table_name="tasks", schema="task")
    op.drop_table("tasks", schema="task")
    op.drop_index(
        "ix_deliverable_signoffs_deliverable_id", table_name="deliverable_signoffs", schema="task"
    )
    op.drop_table("deliverable_signoffs", schema="task")
    op.drop_index("ix_deliverables_project_id", table_name="deliverables", schema="task")
    op.drop_table("deliverables", schema="task")
    op.drop_index("ix_projects_org_id_template_id", table_name="projects", schema="task")
    op.drop_index("ix_projects_org_id_status", table_name="projects", schema="task")
    op.drop_index("ix_projects_org_id_created_at_id", table_name="projects", schema="task")
    op.drop_table("projects", schema="task")
    op.drop_table("org_counters", schema="task")
    op.drop_table("idempotency_keys", schema="task")
