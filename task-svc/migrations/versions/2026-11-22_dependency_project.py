"""Dependencies carry their project, so a project's edges are one index range scan.

A dependency's project is its task's project. Inserts that name it (the bootstrap does) pay
nothing; an insert that leaves it out gets it filled from the task by a trigger.

Revision ID: task_0003
Revises: task_0002
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "task_0003"
down_revision: str | None = "task_0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SCHEMA = "task"


def upgrade() -> None:
    op.add_column(
        "task_dependencies", sa.Column("project_id", sa.UUID(), nullable=True), schema=SCHEMA
    )
    op.execute(
        "UPDATE task.task_dependencies d SET project_id = t.project_id "
        "FROM task.tasks t WHERE t.id = d.task_id"
    )
    op.alter_column("task_dependencies", "project_id", nullable=False, schema=SCHEMA)
    op.create_foreign_key(
        op.f("fk_task_dependencies_project_id_projects"),
        "task_dependencies",
        "projects",
        ["project_id"],
        ["id"],
        source_schema=SCHEMA,
        referent_schema=SCHEMA,
        ondelete="CASCADE",
    )
    op.create_index(
        op.f("ix_task_dependencies_project_id"),
        "task_dependencies",
        ["project_id"],
        schema=SCHEMA,
    )
    op.execute(
        """
        CREATE FUNCTION task.dependency_project() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            SELECT project_id INTO NEW.project_id FROM task.tasks WHERE id = NEW.task_id;
            RETURN NEW;
        END $$
        """
    )
    op.execute(
        """
        CREATE TRIGGER dependency_project BEFORE INSERT ON task.task_dependencies
        FOR EACH ROW WHEN (NEW.project_id IS NULL) EXECUTE FUNCTION task.dependency_project()
        """
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS dependency_project ON task.task_dependencies")
    op.execute("DROP FUNCTION IF EXISTS task.dependency_project()")
    op.drop_index(
        op.f("ix_task_dependencies_project_id"), table_name="task_dependencies", schema=SCHEMA
    )
    op.drop_constraint(
        op.f("fk_task_dependencies_project_id_projects"),
        "task_dependencies",
        type_="foreignkey",
        schema=SCHEMA,
    )
    op.drop_column("task_dependencies", "project_id", schema=SCHEMA)
