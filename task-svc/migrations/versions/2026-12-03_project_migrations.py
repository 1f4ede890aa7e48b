"""Project migrations: stored plans, applied migrations with the snapshot they replaced, and
batch jobs with one item per project.

Revision ID: task_0006_project_migrations
Revises: task_0005_due_reminders
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "task_0006_project_migrations"
down_revision: str | None = "task_0005_due_reminders"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SCHEMA = "task"
UUID = postgresql.UUID(as_uuid=True)
JSONB = postgresql.JSONB()
NOW = sa.text("now()")


def upgrade() -> None:
    op.create_table(
        "migration_plans",
        sa.Column("id", UUID, nullable=False),
        sa.Column("org_id", UUID, nullable=False),
        sa.Column("project_id", UUID, nullable=False),
        sa.Column("from_version", sa.Integer(), nullable=False),
        sa.Column("to_version", sa.Integer(), nullable=False),
        sa.Column("rules", JSONB, nullable=False),
        sa.Column("target", JSONB, nullable=False),
        sa.Column("content", JSONB, nullable=False),
        sa.Column("project_row_version", sa.Integer(), nullable=False),
        sa.Column("task_versions", JSONB, nullable=False),
        sa.Column("blocking_conflicts", sa.Integer(), nullable=False),
        sa.Column("created_by", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=NOW),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("migration_id", UUID, nullable=True),
        sa.ForeignKeyConstraint(
            ["project_id"],
            [f"{SCHEMA}.projects.id"],
            name=op.f("fk_migration_plans_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_migration_plans")),
        schema=SCHEMA,
    )
    op.create_index(
        "ix_migration_plans_project_id", "migration_plans", ["project_id"], schema=SCHEMA
    )
    op.create_table(
        "project_migrations",
        sa.Column("id", UUID, nullable=False),
        sa.Column("org_id", UUID, nullable=False),
        sa.Column("project_id", UUID, nullable=False),
        sa.Column("plan_id", UUID, nullable=False),
        sa.Column("job_id", UUID, nullable=True),
        sa.Column("from_version", sa.Integer(), nullable=False),
        sa.Column("to_version", sa.Integer(), nullable=False),
        sa.Column("previous_snapshot", JSONB, nullable=False),
        sa.Column("previous_checksum", sa.Text(), nullable=False),
        sa.Column("counts", JSONB, nullable=False),
        sa.Column("applied_by", sa.Text(), nullable=False),
        sa.Column("applied_at", sa.DateTime(timezone=True), nullable=False, server_default=NOW),
        sa.ForeignKeyConstraint(
            ["project_id"],
            [f"{SCHEMA}.projects.id"],
            name=op.f("fk_project_migrations_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_project_migrations")),
        schema=SCHEMA,
    )
    op.create_index(
        "ix_project_migrations_project_id_applied_at",
        "project_migrations",
        ["project_id", "applied_at"],
        schema=SCHEMA,
    )
    op.create_table(
        "migration_jobs",
        sa.Column("id", UUID, nullable=False),
        sa.Column("org_id", UUID, nullable=False),
        sa.Column("template_id", UUID, nullable=False),
        sa.Column("to_version", sa.Integer(), nullable=False),
        sa.Column("from_versions", JSONB, nullable=False),
        sa.Column("rules", JSONB, nullable=False),
        sa.Column("dry_run", sa.Boolean(), nullable=False),
        sa.Column("target", JSONB, nullable=False),
        sa.Column("status", sa.Text(), nullable=False, server_default=sa.text("'running'")),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("created_by", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=NOW),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=NOW),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("claimed_by", sa.Text(), nullable=True),
        sa.Column("claimed_until", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status IN ('running', 'completed')", name=op.f("ck_migration_jobs_status_known")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_migration_jobs")),
        schema=SCHEMA,
    )
    op.create_index(
        "ix_migration_jobs_running",
        "migration_jobs",
        ["claimed_until"],
        schema=SCHEMA,
        postgresql_where=sa.text("status = 'running'"),
    )
    op.create_table(
        "migration_job_items",
        sa.Column("job_id", UUID, nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("project_id", UUID, nullable=False),
        sa.Column("from_version", sa.Integer(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False, server_default=sa.text("'pending'")),
        sa.Column("detail", JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status IN ('pending', 'migrated', 'planned', 'skipped', 'failed')",
            name=op.f("ck_migration_job_items_status_known"),
        ),
        sa.ForeignKeyConstraint(
            ["job_id"],
            [f"{SCHEMA}.migration_jobs.id"],
            name=op.f("fk_migration_job_items_job_id_migration_jobs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("job_id", "position", name=op.f("pk_migration_job_items")),
        schema=SCHEMA,
    )


def downgrade() -> None:
    op.drop_table("migration_job_items", schema=SCHEMA)
    op.drop_index("ix_migration_jobs_running", table_name="migration_jobs", schema=SCHEMA)
    op.drop_table("migration_jobs", schema=SCHEMA)
    op.drop_index(
        "ix_project_migrations_project_id_applied_at",
        table_name="project_migrations",
        schema=SCHEMA,
    )
    op.drop_table("project_migrations", schema=SCHEMA)
    op.drop_index("ix_migration_plans_project_id", table_name="migration_plans", schema=SCHEMA)
    op.drop_table("migration_plans", schema=SCHEMA)
