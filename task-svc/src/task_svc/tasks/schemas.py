"""Response schemas of task reads."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field


class TaskRef(BaseModel):
    """A neighbour of a task in the graph."""

    id: uuid.UUID
    title: str
    status: str


class TaskListItem(BaseModel):
    id: uuid.UUID
    project_id: uuid.UUID
    deliverable_id: uuid.UUID
    node_key: str
    title: str
    kind: str
    work_kind: str
    priority: int
    status: str
    assigned_to: uuid.UUID | None
    due_at: datetime | None
    is_milestone: bool
    qc_required: bool
    open_blockers: int
    estimate_hours: float | None
    row_version: int
    created_at: datetime
    updated_at: datetime


class TaskRead(TaskListItem):
    description: str
    assigned_at: datetime | None
    started_at: datetime | None
    completed_at: datetime | None
    qc_checklist: list[dict[str, Any]]
    parent_id: uuid.UUID | None
    role_hint: str | None
    blockers: list[TaskRef] = Field(description="tasks this one waits for")
    dependents: list[TaskRef] = Field(description="tasks waiting for this one")
    allowed_actions: list[str] = Field(
        description="actions the caller may do now (from the state machine's table)"
    )


class TaskPage(BaseModel):
    items: list[TaskListItem]
    next_cursor: str | None
