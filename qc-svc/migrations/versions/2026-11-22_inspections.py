"""qc-svc inspections: inspection, defect, and the command log used for idempotent replays.

Revision ID: qc_0002
Revises: qc_0001
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql as pg

revision: str = "qc_0002"
down_revision: str | None = "qc_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SCHEMA = "qc"
UUID = pg.UUID(as_uuid=True)
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "inspection",
        sa.Column("id", UUID, nullable=False),
        sa.Column("org_id", UUID, nullable=False),
        sa.Column("project_id", UUID, nullable=False),
        sa.Column("deliverable_id", UUID, nullable=False),
        sa.Column("task_id", UUID, nullable=False),
        sa.Column("task_title", sa.Text(), nullable=False),
        sa.Column("node_key", sa.Text(), nullable=False),
        sa.Column("template_id", UUID, nullable=True),
        sa.Column("template_version", sa.Integer(), nullable=True),
        sa.Column("assignee_id", UUID, nullable=True),
        sa.Column("round", sa.SmallInteger(), nullable=False),
        sa.Column("status", sa.Text(), server_default=sa.text("'pending'"), nullable=False),
        sa.Column("inspector_id", UUID, nullable=True),
        sa.Column("claimed_at", TS, nullable=True),
        sa.Column("checklist", pg.JSONB(), server_default=sa.text("'[]'::jsonb"), nullable=False),
        sa.Column("decision", sa.Text(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("rework_from_task_id", UUID, nullable=True),
        sa.Column("decided_at", TS, nullable=True),
        sa.Column("outcome", sa.Text(), nullable=True),
        sa.Column("outcome_error", pg.JSONB(), nullable=True),
        sa.Column("outcome_at", TS, nullable=True),
        sa.Column("source_event_id", UUID, nullable=True),
        sa.Column("submitted_at", TS, nullable=True),
        sa.Column("row_version", sa.Integer(), server_default=sa.text("1"), nullable=False),
        sa.Column("created_at", TS, server_default=sa.func.now(), nullable=False),
        sa.Column("updated_at", TS, server_default=sa.func.now(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inspection")),
        sa.UniqueConstraint("task_id", "round", name=op.f("uq_inspection_task_id_round")),
        sa.CheckConstraint(
            "status IN ('pending', 'claimed', 'passed', 'failed')",
            name=op.f("ck_inspection_status_known"),
        ),
        sa.CheckConstraint(
            "decision IS NULL OR decision IN ('accept', 'reject')",
            name=op.f("ck_inspection_decision_known"),
        ),
        sa.CheckConstraint(
            "outcome IS NULL OR outcome IN ('applied', 'refused')",
            name=op.f("ck_inspection_outcome_known"),
        ),
        sa.CheckConstraint("round >= 1", name=op.f("ck_inspection_round_positive")),
        sa.CheckConstraint("row_version >= 1", name=op.f("ck_inspection_row_version_positive")),
        schema=SCHEMA,
    )
    op.create_index(
        "ix_inspection_org_id_created_at_id",
        "inspection",
        ["org_id", "created_at", "id"],
        schema=SCHEMA,
    )
    op.create_index(
        "ix_inspection_org_id_status", "inspection", ["org_id", "status"], schema=SCHEMA
    )
    op.create_index(
        "ix_inspection_org_id_decided_at", "inspection", ["org_id", "decided_at"], schema=SCHEMA
    )

    op.create_table(
        "defect",
        sa.Column("id", UUID, nullable=False),
        sa.Column("org_id", UUID, nullable=False),
        sa.Column("inspection_id", UUID, nullable=False),
        sa.Column("code", sa.Text(), nullable=False),
        sa.Column("severity", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("created_by", UUID, nullable=False),
        sa.Column("created_at", TS, server_default=sa.func.now(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_defect")),
        sa.ForeignKeyConstraint(
            ["inspection_id"],
            [f"{SCHEMA}.inspection.id"],
            name=op.f("fk_defect_inspection_id_inspection"),
            ondelete="CASCADE",
        ),
        sa.CheckConstraint(
            "severity IN ('minor', 'major', 'critical')", name=op.f("ck_defect_severity_known")
        ),
        schema=SCHEMA,
    )
    op.create_index("ix_defect_inspection_id", "defect", ["inspection_id"], schema=SCHEMA)
    op.create_index("ix_defect_org_id_code", "defect", ["org_id", "code"], schema=SCHEMA)

    op.create_table(
        "inspection_command",
        sa.Column("org_id", UUID, nullable=False),
        sa.Column("client_event_id", UUID, nullable=False),
        sa.Column("inspection_id", UUID, nullable=False),
        sa.Column("action", sa.Text(), nullable=False),
        sa.Column("request_hash", sa.Text(), nullable=False),
        sa.Column("status_code", sa.SmallInteger(), nullable=False),
        sa.Column("response_body", sa.Text(), nullable=False),
        sa.Column("row_version", sa.Integer(), nullable=False),
        sa.Column("actor_id", UUID, nullable=False),
        sa.Column("created_at", TS, server_default=sa.func.now(), nullable=False),
        sa.PrimaryKeyConstraint("org_id", "client_event_id", name=op.f("pk_inspection_command")),
        sa.ForeignKeyConstraint(
            ["inspection_id"],
            [f"{SCHEMA}.inspection.id"],
            name=op.f("fk_inspection_command_inspection_id_inspection"),
            ondelete="CASCADE",
        ),
        schema=SCHEMA,
    )
    op.create_index(
        "ix_inspection_command_inspection_id",
        "inspection_command",
        ["inspection_id"],
        schema=SCHEMA,
    )


def downgrade() -> None:
    op.drop_table("inspection_command", schema=SCHEMA)
    op.drop_table("defect", schema=SCHEMA)
    op.drop_table("inspection", schema=SCHEMA)
