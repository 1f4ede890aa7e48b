"""template-svc: templates, their versions (frozen once published), idempotency keys.

Revision ID: template_0002
Revises: template_0001
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql as pg

revision: str = "template_0002"
down_revision: str | None = "template_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SCHEMA = "template"

# A published (or deprecated) version's graph and identity never change, and it is never
# deleted: the database refuses it whoever asks. The only change left is published ->
# deprecated (with its who/when and row_version).
GUARD_FUNCTION = f"""
CREATE OR REPLACE FUNCTION "{SCHEMA}".template_version_guard() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        IF OLD.status <> 'draft' THEN
            RAISE EXCEPTION 'template version % of template % is %: it cannot be deleted',
                OLD.version, OLD.template_id, OLD.status
                USING ERRCODE = 'BP001';
        END IF;
        RETURN OLD;
    END IF;
    IF OLD.status <> 'draft' AND (
        NEW.graph IS DISTINCT FROM OLD.graph
        OR NEW.checksum IS DISTINCT FROM OLD.checksum
        OR NEW.node_count IS DISTINCT FROM OLD.node_count
        OR NEW.edge_count IS DISTINCT FROM OLD.edge_count
        OR NEW.changelog IS DISTINCT FROM OLD.changelog
        OR NEW.version IS DISTINCT FROM OLD.version
        OR NEW.template_id IS DISTINCT FROM OLD.template_id
        OR NEW.org_id IS DISTINCT FROM OLD.org_id
        OR NEW.published_at IS DISTINCT FROM OLD.published_at
        OR NEW.published_by IS DISTINCT FROM OLD.published_by
        OR NEW.created_at IS DISTINCT FROM OLD.created_at
        OR NEW.created_by IS DISTINCT FROM OLD.created_by
        OR NEW.cloned_from IS DISTINCT FROM OLD.cloned_from
        OR NEW.status = 'draft'
        OR (OLD.status = 'deprecated' AND NEW.status <> 'deprecated')
    ) THEN
        RAISE EXCEPTION 'template version % of template % is %: it cannot be changed',
            OLD.version, OLD.template_id, OLD.status
            USING ERRCODE = 'BP001';
    END IF;
    RETURN NEW;
END $$;
"""

GUARD_TRIGGER = f"""
CREATE TRIGGER template_version_guard
BEFORE UPDATE OR DELETE ON "{SCHEMA}".template_version
FOR EACH ROW EXECUTE FUNCTION "{SCHEMA}".template_version_guard();
"""


def upgrade() -> None:
    op.create_table(
        "template",
        sa.Column("id", pg.UUID(as_uuid=True), nullable=False),
        sa.Column("org_id", pg.UUID(as_uuid=True), nullable=False),
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("archived_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("archived_by", pg.UUID(as_uuid=True), nullable=True),
        sa.Column("row_version", sa.Integer(), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column("created_by", pg.UUID(as_uuid=True), nullable=False),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column("updated_by", pg.UUID(as_uuid=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_template")),
        sa.UniqueConstraint("org_id", "key", name=op.f("uq_template_org_id_key")),
        schema=SCHEMA,
    )
    op.create_table(
        "template_version",
        sa.Column("id", pg.UUID(as_uuid=True), nullable=False),
        sa.Column("template_id", pg.UUID(as_uuid=True), nullable=False),
        sa.Column("org_id", pg.UUID(as_uuid=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("changelog", sa.Text(), nullable=False),
        sa.Column("graph", pg.JSONB(), nullable=False),
        sa.Column("node_count", sa.Integer(), nullable=False),
        sa.Column("edge_count", sa.Integer(), nullable=False),
        sa.Column("checksum", sa.Text(), nullable=True),
        sa.Column("cloned_from", sa.Integer(), nullable=True),
        sa.Column("row_version", sa.Integer(), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column("created_by", pg.UUID(as_uuid=True), nullable=False),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column("updated_by", pg.UUID(as_uuid=True), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("published_by", pg.UUID(as_uuid=True), nullable=True),
        sa.Column("deprecated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("deprecated_by", pg.UUID(as_uuid=True), nullable=True),
        sa.CheckConstraint(
            "status IN ('draft', 'published', 'deprecated')",
            name=op.f("ck_template_version_status_known"),
        ),
        sa.CheckConstraint(
            "status = 'draft' OR (checksum IS NOT NULL AND published_at IS NOT NULL "
            "AND published_by IS NOT NULL)",
            name=op.f("ck_template_version_published_is_complete"),
        ),
        sa.CheckConstraint("version >= 1", name=op.f("ck_template_version_version_positive")),
        sa.ForeignKeyConstraint(
            ["template_id"],
            [f"{SCHEMA}.template.id"],
            name=op.f("fk_template_version_template_id_template"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_template_version")),
        sa.UniqueConstraint(
            "template_id", "version", name=op.f("uq_template_version_template_id_version")
        ),
        schema=SCHEMA,
    )
    op.create_index(
        op.f("ix_template_version_org_id"), "template_version", ["org_id"], schema=SCHEMA
    )
    op.create_table(
        "idempotency_key",
        sa.Column("org_id", pg.UUID(as_uuid=True), nullable=False),
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("request_hash", sa.Text(), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=False),
        sa.Column("response_body", pg.JSONB(), nullable=False),
        sa.Column("response_headers", pg.JSONB(), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.PrimaryKeyConstraint("org_id", "key", name=op.f("pk_idempotency_key")),
        schema=SCHEMA,
    )
    op.execute(GUARD_FUNCTION)
    op.execute(GUARD_TRIGGER)


def downgrade() -> None:
    op.execute(f'DROP TRIGGER IF EXISTS template_version_guard ON "{SCHEMA}".template_version')
    op.execute(f'DROP FUNCTION IF EXISTS "{SCHEMA}".template_version_guard()')
    op.drop_table("idempotency_key", schema=SCHEMA)
    op.drop_index(op.f("ix_template_version_org_id"), table_name="template_version", schema=SCHEMA)
    op.drop_table("template_version", schema=SCHEMA)
    op.drop_table("template", schema=SCHEMA)
