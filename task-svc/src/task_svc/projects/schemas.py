"""Request and response schemas of projects."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema, field_validator

from servicekit.bounds import INT4_MAX
from servicekit.pagination import CursorPage

MAX_NAME = 200
MAX_DELIVERABLE_NAME = 200
# A ceiling no setting can raise: the per-deployment limit (settings.max_deliverables) is checked
# by the service on the count, before any list of that size is built.
DELIVERABLES_CEILING = 10_000
_DELIVERABLES_SCHEMA: dict[str, Any] = {
    "anyOf": [
        {"type": "integer", "minimum": 1, "maximum": DELIVERABLES_CEILING},
        {
            "type": "array",
            "items": {"type": "string", "minLength": 1, "maxLength": MAX_DELIVERABLE_NAME},
            "minItems": 1,
            "maxItems": DELIVERABLES_CEILING,
        },
    ]
}

PROJECT_CREATE_EXAMPLE: dict[str, Any] = {
    "name": "Cabinets for ACME, order 4711",
    "template_id": "0b6f8a8e-5d7c-4f1e-9a63-2c1d0e9b7a10",
    "template_version": 3,
    "deliverables": 3,
    "start_at": "2026-12-01T08:00:00Z",
    "due_at": "2026-12-20T17:00:00Z",
}


class ProjectCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                PROJECT_CREATE_EXAMPLE,
                {**PROJECT_CREATE_EXAMPLE, "deliverables": ["Left cabinet", "Right cabinet"]},
            ]
        },
    )

    name: str = Field(min_length=1, max_length=MAX_NAME)
    template_id: uuid.UUID
    template_version: int | None = Field(
        default=None,
        ge=1,
        le=INT4_MAX,
        description="the version to pin; default: the latest published one",
    )
    allow_deprecated: bool = Field(
        default=False, description="start from a deprecated version anyway"
    )
    deliverables: Annotated[int | list[str], WithJsonSchema(_DELIVERABLES_SCHEMA)] = Field(
        description=(
            "how many deliverables (named '#1', '#2', ...) or their names, in order; at most "
            "the deployment's limit (200 by default)"
        )
    )
    start_at: datetime
    due_at: datetime | None = None

    @field_validator("name")
    @classmethod
    def _strip_name(cls, value: str) -> str:
        value = value.strip()
        if not value:
            raise ValueError("name must not be blank")
        return value

    @field_validator("deliverables")
    @classmethod
    def _deliverables(cls, value: int | list[str]) -> int | list[str]:
        count = value if isinstance(value, int) else len(value)
        if not 1 <= count <= DELIVERABLES_CEILING:
            raise ValueError(f"give 1 to {DELIVERABLES_CEILING} deliverables, got {count}")
        if isinstance(value, int):
            return value
        names = [n.strip() for n in value]
        for i, n in enumerate(names):
            if not n or len(n) > MAX_DELIVERABLE_NAME:
                raise ValueError(
                    f"deliverable name [{i}] must be 1-{MAX_DELIVERABLE_NAME} characters"
                )
        return names

    @field_validator("start_at", "due_at")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("give a time zone, e.g. 2026-12-01T08:00:00Z")
        return value

    @property
    def deliverable_count(self) -> int:
        """How many deliverables were asked for, without building their names."""
        if isinstance(self.deliverables, int):
            return self.deliverables
        return len(self.deliverables)

    def deliverable_names(self) -> list[str]:
        if isinstance(self.deliverables, int):
            return [f"#{i}" for i in range(1, self.deliverables + 1)]
        return list(self.deliverables)


class ProjectStatusChange(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"expected_row_version": 1, "reason": "customer paused the order"}]
        },
    )

    expected_row_version: int | None = Field(
        default=None, ge=1, le=INT4_MAX, description='or send If-Match: "<row_version>"'
    )
    reason: str | None = Field(default=None, max_length=2000)


class StatusCounts(BaseModel):
    blocked: int = 0
    ready: int = 0
    in_progress: int = 0
    on_hold: int = 0
    in_qc: int = 0
    rework: int = 0
    done: int = 0
    cancelled: int = 0


class DeliverableSummary(BaseModel):
    id: uuid.UUID
    name: str
    position: int
    serial: str
    status: str
    row_version: int
    task_counts: StatusCounts
    progress: float = Field(description="resolved tasks / tasks, 0..1")


class TemplateRef(BaseModel):
    id: uuid.UUID
    key: str
    version: int
    checksum: str


class ProjectRead(BaseModel):
    id: uuid.UUID
    org_id: uuid.UUID
    name: str
    status: str
    template: TemplateRef
    start_at: datetime
    due_at: datetime | None
    row_version: int
    created_at: datetime
    created_by: str
    updated_at: datetime
    completed_at: datetime | None
    task_count: int
    task_counts: StatusCounts
    deliverables: list[DeliverableSummary]
    snapshot: dict[str, Any] | None = Field(
        default=None, description="the frozen template graph (with ?include_snapshot=true)"
    )


class ProjectListItem(BaseModel):
    id: uuid.UUID
    name: str
    status: str
    template: TemplateRef
    start_at: datetime
    due_at: datetime | None
    row_version: int
    created_at: datetime
    updated_at: datetime


class ProjectPage(CursorPage[ProjectListItem]):
    pass


class TaskBrief(BaseModel):
    id: uuid.UUID
    title: str
    status: str


class BlockedTask(BaseModel):
    id: uuid.UUID
    title: str
    deliverable_id: uuid.UUID
    blocked_by: list[TaskBrief]


class OverdueTask(BaseModel):
    id: uuid.UUID
    title: str
    status: str
    deliverable_id: uuid.UUID
    assigned_to: uuid.UUID | None
    due_at: datetime


class Workload(BaseModel):
    assigned_to: uuid.UUID | None = Field(description="null: unassigned open work")
    open_tasks: int
    in_progress: int
    remaining_hours: float


class Progress(BaseModel):
    by_count: float = Field(description="resolved tasks / all tasks, 0..1")
    by_estimate: float = Field(description="estimate hours of resolved tasks / all hours, 0..1")
    resolved: int
    total: int
    resolved_hours: float
    total_hours: float


class DeliverableProgress(BaseModel):
    id: uuid.UUID
    name: str
    serial: str
    status: str
    progress: Progress


class CriticalPathStep(BaseModel):
    id: uuid.UUID
    title: str
    status: str
    deliverable_id: uuid.UUID
    estimate_hours: float
    finish_after_hours: float = Field(description="hours from now until this step can finish")


class CriticalPathRead(BaseModel):
    steps: list[CriticalPathStep]
    remaining_hours: float
    estimated_finish: datetime | None
    as_of: datetime


class Dashboard(BaseModel):
    project_id: uuid.UUID
    status: str
    due_at: datetime | None
    counts: StatusCounts
    progress: Progress
    deliverables: list[DeliverableProgress]
    blocked: list[BlockedTask]
    overdue: list[OverdueTask]
    workload: list[Workload]
    critical_path: CriticalPathRead
    late: bool | None = Field(
        description="the estimated finish is after the project's due date (null: no due date)"
    )


class GraphNode(BaseModel):
    id: uuid.UUID
    deliverable_id: uuid.UUID
    node_key: str
    title: str
    status: str
    is_milestone: bool
    assigned_to: uuid.UUID | None


class GraphEdge(BaseModel):
    blocker: uuid.UUID
    dependent: uuid.UUID


class ProjectGraph(BaseModel):
    project_id: uuid.UUID
    nodes: list[GraphNode]
    edges: list[GraphEdge]
