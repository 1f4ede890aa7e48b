"""Response schemas of deliverable reads."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel

from task_svc.projects.schemas import Progress, StatusCounts


class SignoffRead(BaseModel):
    id: uuid.UUID
    decision: str
    comment: str | None
    reopen_task_ids: list[uuid.UUID]
    actor: str
    created_at: datetime


class DeliverableRead(BaseModel):
    id: uuid.UUID
    project_id: uuid.UUID
    name: str
    position: int
    serial: str
    status: str
    row_version: int
    created_at: datetime
    updated_at: datetime
    signed_off_at: datetime | None
    signed_off_by: str | None
    task_counts: StatusCounts
    progress: Progress
    signoffs: list[SignoffRead]
