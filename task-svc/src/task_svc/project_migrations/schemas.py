"""Request and response schemas of project migrations: plans, applied migrations, batch jobs."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from servicekit.bounds import INT4_MAX
from servicekit.pagination import CursorPage

NODE_KEY = Field(min_length=1, max_length=100, pattern=r"^[a-z0-9][a-z0-9_.-]*$")

RULES_EXAMPLE: dict[str, Any] = {
    "rename": {"weld": "weld-frame"},
    "removed_started": "keep_as_orphan",
    "blocker_added_to_started": "keep",
    "added_behind_started": "open",
    "update_finished": False,
}


class MigrationRules(BaseModel):
    """How every conflict is settled. Left out, a conflict is reported and blocks the apply."""

    model_config = ConfigDict(extra="forbid")

    rename: dict[str, str] = Field(
        default_factory=dict,
        max_length=1000,
        description="old node key -> new node key: the task (and its history) is kept",
    )
    removed_started: Literal["refuse", "cancel", "keep_as_orphan"] = Field(
        default="refuse",
        description="a removed node whose task is started or done: cancel it, keep it outside "
        "the graph (no blockers, no dependents), or refuse",
    )
    blocker_added_to_started: Literal["refuse", "keep", "reopen"] = Field(
        default="refuse",
        description="a started or done task that would wait for a new unresolved blocker: keep "
        "it where it is (a blocker_added event says so), send it back to rework, or refuse",
    )
    added_behind_started: Literal["open", "done"] = Field(
        default="open",
        description="a new node in front of work already started: open (ready or blocked, from "
        "its blockers) or taken as done",
    )
    update_finished: bool = Field(
        default=False, description="apply changed node fields to done and cancelled tasks too"
    )


class MigrationPlanCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"to_version": 2, "rules": RULES_EXAMPLE}]},
    )

    to_version: int = Field(ge=1, le=INT4_MAX, description="the template version to move to")
    rules: MigrationRules = Field(default_factory=MigrationRules)


class FieldChange(BaseModel):
    field: str
    before: Any = Field(alias="from")
    after: Any = Field(alias="to")

    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)


class KeptTask(BaseModel):
    task_id: uuid.UUID
    node_key: str
    renamed_from: str | None = None
    status: str
    changes: list[FieldChange] = Field(description="node fields that change on this task")
    held_back: list[str] = Field(description="changed node fields not applied (finished task)")
    open_qc_round_keeps_checklist: bool = False


class AddedTask(BaseModel):
    node_key: str
    status: str = Field(description="its status once created (ready, blocked or done)")
    open_blockers: int
    reason: str


class RemovedTask(BaseModel):
    task_id: uuid.UUID
    node_key: str
    status: str
    outcome: Literal["cancel", "keep_as_orphan", "already_cancelled", "conflict"]


class Edge(BaseModel):
    blocker: str
    dependent: str


class StatusChange(BaseModel):
    task_id: uuid.UUID | None = Field(description="null for a task the migration creates")
    node_key: str
    before: str | None = Field(alias="from")
    after: str = Field(alias="to")
    reason: str

    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)


class BlockersChange(BaseModel):
    task_id: uuid.UUID
    node_key: str
    before: int = Field(alias="from")
    after: int = Field(alias="to")

    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)


class MigrationConflict(BaseModel):
    code: str
    deliverable_id: uuid.UUID
    node_key: str
    task_id: uuid.UUID | None
    status: str | None
    message: str
    settle_with: dict[str, list[str]] = Field(description="rule -> the values that settle it")


class DeliverableMigration(BaseModel):
    deliverable_id: uuid.UUID
    name: str
    serial: str
    status: str
    status_after: str
    untouched: bool = Field(description="signed off: the migration does not touch it")
    kept: list[KeptTask] = Field(description="kept tasks whose node fields or key change")
    added: list[AddedTask]
    removed: list[RemovedTask]
    edges_added: list[Edge]
    edges_removed: list[Edge]
    open_blockers: list[BlockersChange]
    status_changes: list[StatusChange]


class GraphChanges(BaseModel):
    nodes_added: list[str]
    nodes_removed: list[str]
    nodes_changed: dict[str, list[str]]
    edges_added: list[Edge]
    edges_removed: list[Edge]
    renamed: dict[str, str]


class MigrationCounts(BaseModel):
    tasks_added: int = 0
    tasks_cancelled: int = 0
    tasks_updated: int = 0
    tasks_kept_as_orphans: int = 0
    status_changes: int = 0


class MigrationPlanRead(BaseModel):
    id: uuid.UUID
    project_id: uuid.UUID
    template_id: uuid.UUID
    from_version: int
    to_version: int
    rules: MigrationRules
    project_row_version: int
    created_at: datetime
    created_by: str
    expires_at: datetime
    state: Literal["open", "applied", "expired"]
    migration_id: uuid.UUID | None = None
    changes_anything: bool
    counts: MigrationCounts
    graph: GraphChanges
    deliverables: list[DeliverableMigration]
    blocking_conflicts: list[MigrationConflict]


class MigrationApply(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"plan_id": "5a0c7e3e-1b7d-4a57-9f2c-6f0d3e2a1b4c", "expected_row_version": 4}
            ]
        },
    )

    plan_id: uuid.UUID
    expected_row_version: int | None = Field(
        default=None,
        ge=1,
        le=INT4_MAX,
        description="the project's row_version the plan was made from (or send If-Match)",
    )


class MigrationRead(BaseModel):
    id: uuid.UUID
    project_id: uuid.UUID
    plan_id: uuid.UUID
    job_id: uuid.UUID | None
    from_version: int
    to_version: int
    counts: MigrationCounts
    applied_by: str
    applied_at: datetime
    project_row_version: int | None = Field(
        default=None, description="the project's row_version after it (in the apply answer)"
    )
    previous_snapshot: dict[str, Any] | None = Field(
        default=None, description="the snapshot it replaced (with include_snapshot=true)"
    )


class MigrationPage(CursorPage[MigrationRead]):
    pass


class MigrationJobCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"from_versions": [1, 2], "rules": RULES_EXAMPLE, "dry_run": True}]
        },
    )

    from_versions: list[Annotated[int, Field(ge=1, le=INT4_MAX)]] = Field(
        min_length=1, max_length=100, description="projects pinned to these versions move"
    )
    rules: MigrationRules = Field(default_factory=MigrationRules)
    dry_run: bool = Field(default=False, description="plan every project, change none")


class MigrationJobItemRead(BaseModel):
    position: int
    project_id: uuid.UUID
    from_version: int
    status: Literal["pending", "migrated", "planned", "skipped", "failed"]
    detail: dict[str, Any]
    finished_at: datetime | None


class MigrationJobRead(BaseModel):
    id: uuid.UUID
    template_id: uuid.UUID
    to_version: int
    from_versions: list[int]
    rules: MigrationRules
    dry_run: bool
    status: Literal["running", "completed"]
    total: int
    processed: int
    counts: dict[str, int] = Field(description="items by status")
    created_by: str
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None
    items: list[MigrationJobItemRead]
