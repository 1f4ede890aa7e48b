"""Tables of tasks, their dependencies and their append-only event history."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    Numeric,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from task_svc.db import Base


class Task(Base):
    __tablename__ = "tasks"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    org_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    project_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("projects.id", ondelete="CASCADE"), nullable=False
    )
    deliverable_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("deliverables.id", ondelete="CASCADE"), nullable=False
    )
    node_key: Mapped[str] = mapped_column(Text, nullable=False)
    title: Mapped[str] = mapped_column(Text, nullable=False)
    description: Mapped[str] = mapped_column(Text, nullable=False, server_default=text("''"))
    kind: Mapped[str] = mapped_column(Text, nullable=False)
    work_kind: Mapped[str] = mapped_column(Text, nullable=False)
    priority: Mapped[int] = mapped_column(Integer, nullable=False, server_default=text("0"))
    status: Mapped[str] = mapped_column(Text, nullable=False)
    assigned_to: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True), nullable=True)
    assigned_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    due_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    qc_required: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=text("false"))
    qc_checklist: Mapped[list[dict[str, Any]]] = mapped_column(
        JSONB, nullable=False, server_default=text("'[]'::jsonb")
    )
    is_milestone: Mapped[bool] = mapped_column(
        Boolean, nullable=False, server_default=text("false")
    )
    parent_id: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), ForeignKey("tasks.id", ondelete="CASCADE"), nullable=True
    )
    open_blockers: Mapped[int] = mapped_column(Integer, nullable=False, server_default=text("0"))
    estimate_hours: Mapped[Decimal | None] = mapped_column(Numeric(10, 2), nullable=True)
    role_hint: Mapped[str | None] = mapped_column(Text, nullable=True)
    row_version: Mapped[int] = mapped_column(Integer, nullable=False, server_default=text("1"))
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now()
    )
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now()
    )

    __table_args__ = (
        UniqueConstraint("deliverable_id", "node_key"),
        CheckConstraint("open_blockers >= 0", name="open_blockers_not_negative"),
        CheckConstraint(
            "status IN ('blocked', 'ready', 'in_progress', 'on_hold', 'in_qc', 'rework', "
            "'done', 'cancelled')",
            name="status_known",
        ),
        CheckConstraint("work_kind IN ('work', 'qc', 'milestone')", name="work_kind_known"),
        # One index per list filter; every one leads with org_id except the FK walks (a
        # transition writes to every one of them: none without a query that reads it). The
        # unique (deliverable_id, node_key) serves lookups by deliverable.
        Index("ix_tasks_org_id_project_id_id", "org_id", "project_id", "id"),
        Index("ix_tasks_org_id_status_id", "org_id", "status", "id"),
        Index("ix_tasks_org_id_assigned_to_id", "org_id", "assigned_to", "id"),
        Index("ix_tasks_org_id_kind", "org_id", "kind"),
        Index("ix_tasks_org_id_created_at_id", "org_id", "created_at", "id"),
        Index("ix_tasks_org_id_priority_id", "org_id", "priority", "id"),
        Index(
            "ix_tasks_org_id_due_at_open",
            "org_id",
            "due_at",
            postgresql_where=text("status NOT IN ('done', 'cancelled') AND due_at IS NOT NULL"),
        ),
        # Deadline reminders read open tasks due in a window across every org (GET
        # /internal/tasks/due); the org-led index above cannot serve a read without an org.
        Index(
            "ix_tasks_due_at_open",
            "due_at",
            postgresql_where=text("status NOT IN ('done', 'cancelled') AND due_at IS NOT NULL"),
        ),
        Index(
            "ix_tasks_org_id_milestones",
            "org_id",
            "project_id",
            postgresql_where=text("is_milestone"),
        ),
        Index(
            "ix_tasks_org_id_blocked",
            "org_id",
            "project_id",
            postgresql_where=text("open_blockers > 0"),
        ),
        Index("ix_tasks_parent_id", "parent_id", postgresql_where=text("parent_id IS NOT NULL")),
        Index(
            "ix_tasks_search",
            text("to_tsvector('simple', title || ' ' || description)"),
            postgresql_using="gin",
        ),
    )


class TaskDependency(Base):
    """`task_id` waits for `blocker_id`."""

    __tablename__ = "task_dependencies"

    task_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("tasks.id", ondelete="CASCADE"), primary_key=True
    )
    blocker_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("tasks.id", ondelete="CASCADE"), primary_key=True
    )
    # The task's project, so a project's edges are one index range scan (filled from the task
    # by a trigger when an insert leaves it out).
    project_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("projects.id", ondelete="CASCADE"), nullable=False
    )

    __table_args__ = (
        CheckConstraint("task_id <> blocker_id", name="not_self"),
        Index("ix_task_dependencies_blocker_id", "blocker_id"),
        Index("ix_task_dependencies_project_id", "project_id"),
    )


class TaskEvent(Base):
    """One entry of a task's append-only history (creation is action 'create')."""

    __tablename__ = "task_events"

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    org_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    task_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("tasks.id", ondelete="CASCADE"), nullable=False
    )
    action: Mapped[str] = mapped_column(Text, nullable=False)
    from_status: Mapped[str | None] = mapped_column(Text, nullable=True)
    to_status: Mapped[str] = mapped_column(Text, nullable=False)
    actor: Mapped[str] = mapped_column(Text, nullable=False)
    payload: Mapped[dict[str, Any]] = mapped_column(
        JSONB, nullable=False, server_default=text("'{}'::jsonb")
    )
    client_event_id: Mapped[str | None] = mapped_column(Text, nullable=True)
    row_version: Mapped[int] = mapped_column(Integer, nullable=False)
    request_id: Mapped[str | None] = mapped_column(Text, nullable=True)
    trace_id: Mapped[str | None] = mapped_column(Text, nullable=True)
    response: Mapped[dict[str, Any] | None] = mapped_column(JSONB, nullable=True)
    status_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now()
    )

    __table_args__ = (
        Index("ix_task_events_task_id_id", "task_id", "id"),
        Index(
            "uq_task_events_task_id_client_event_id",
            "task_id",
            "client_event_id",
            unique=True,
            postgresql_where=text("client_event_id IS NOT NULL"),
        ),
    )
