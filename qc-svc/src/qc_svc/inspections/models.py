"""Tables of the inspections domain: inspection, defect, and the command answers for replays."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from qc_svc.db import Base
from servicekit.idempotency import IdempotencyTable

STATUSES = ("pending", "claimed", "passed", "failed")
DECISIONS = ("accept", "reject")
SEVERITIES = ("minor", "major", "critical")
OUTCOMES = ("applied", "refused")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class Inspection(Base):
    """One QC round of one task, with the context reports group by copied in."""

    __tablename__ = "inspection"
    __table_args__ = (
        UniqueConstraint("task_id", "round"),
        CheckConstraint(_in("status", STATUSES), name="status_known"),
        CheckConstraint(f"decision IS NULL OR {_in('decision', DECISIONS)}", name="decision_known"),
        CheckConstraint(f"outcome IS NULL OR {_in('outcome', OUTCOMES)}", name="outcome_known"),
        CheckConstraint("round >= 1", name="round_positive"),
        CheckConstraint("row_version >= 1", name="row_version_positive"),
        Index("ix_inspection_org_id_created_at_id", "org_id", "created_at", "id"),
        Index("ix_inspection_org_id_status", "org_id", "status"),
        Index("ix_inspection_org_id_decided_at", "org_id", "decided_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    org_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    project_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    deliverable_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    task_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    task_title: Mapped[str] = mapped_column(Text)
    node_key: Mapped[str] = mapped_column(Text)
    template_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    template_version: Mapped[int | None] = mapped_column(Integer)
    assignee_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    round: Mapped[int] = mapped_column(SmallInteger)
    status: Mapped[str] = mapped_column(Text, server_default=text("'pending'"))
    inspector_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    claimed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    checklist: Mapped[list[dict[str, Any]]] = mapped_column(
        JSONB, server_default=text("'[]'::jsonb")
    )
    decision: Mapped[str | None] = mapped_column(Text)
    reason: Mapped[str | None] = mapped_column(Text)
    rework_from_task_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    outcome: Mapped[str | None] = mapped_column(Text)
    outcome_error: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    outcome_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Every decision task-svc refused, oldest first: the decision, why, and when.
    refusals: Mapped[list[dict[str, Any]]] = mapped_column(
        JSONB, server_default=text("'[]'::jsonb")
    )
    source_event_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    submitted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    row_version: Mapped[int] = mapped_column(Integer, server_default=text("1"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Defect(Base):
    """A defect found during an inspection."""

    __tablename__ = "defect"
    __table_args__ = (
        CheckConstraint(_in("severity", SEVERITIES), name="severity_known"),
        Index("ix_defect_org_id_code", "org_id", "code"),
    )

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    org_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    inspection_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("inspection.id", ondelete="CASCADE"), index=True
    )
    code: Mapped[str] = mapped_column(Text)
    severity: Mapped[str] = mapped_column(Text)
    description: Mapped[str] = mapped_column(Text)
    created_by: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class InspectionCommand(Base):
    """The answer of each successful command, by its idempotency key: what a retry gets back."""

    __tablename__ = "inspection_command"

    org_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    # The command's client_event_id, or its Idempotency-Key header.
    key: Mapped[str] = mapped_column(Text, primary_key=True)
    inspection_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("inspection.id", ondelete="CASCADE"), index=True
    )
    action: Mapped[str] = mapped_column(Text)
    request_hash: Mapped[str] = mapped_column(Text)
    status_code: Mapped[int] = mapped_column(SmallInteger)
    # The exact bytes of the first answer, so a replay is byte-for-byte the same body.
    response_body: Mapped[str] = mapped_column(Text)
    response_headers: Mapped[dict[str, str]] = mapped_column(
        JSONB, server_default=text("'{}'::jsonb")
    )
    actor_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


COMMAND_ANSWERS = IdempotencyTable(
    InspectionCommand.__table__,
    body_column="response_body",
    headers_column="response_headers",
    body_as_text=True,
    context_columns=("action", "inspection_id"),
)
