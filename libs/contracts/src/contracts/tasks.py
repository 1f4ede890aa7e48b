"""Events task-svc publishes about projects, deliverables and tasks.

Project* and Deliverable* models come first; Task* models follow below them.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

PROJECT_CREATED = "project.created"
PROJECT_STATUS_CHANGED = "project.status_changed"
PROJECT_MIGRATED = "project.migrated"

ProjectStatus = Literal["active", "on_hold", "completed", "cancelled"]


class ProjectDeliverableV1(BaseModel):
    """A deliverable as listed in `project.created`."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    id: uuid.UUID
    name: str
    serial: str
    position: int = Field(ge=1)


class ProjectCreatedV1(BaseModel):
    """A project was started from a pinned template version; all its tasks exist.

    Task creation is recorded per task in task-svc's history, not as one event per task: this
    event carries the counts.
    """

    model_config = ConfigDict(frozen=True, extra="ignore")

    event_type: ClassVar[str] = PROJECT_CREATED
    schema_version: ClassVar[int] = 1

    project_id: uuid.UUID
    org_id: uuid.UUID
    name: str
    template_id: uuid.UUID
    template_key: str
    template_version: int = Field(ge=1)
    template_checksum: str
    start_at: datetime
    due_at: datetime | None = None
    created_by: str
    deliverables: list[ProjectDeliverableV1]
    task_count: int = Field(ge=0, description="tasks created over all deliverables")
    ready_count: int = Field(ge=0, description="of which ready to start at once")
    blocked_count: int = Field(ge=0, description="of which blocked by unresolved blockers")


class ProjectStatusChangedV1(BaseModel):
    """A project was put on hold, resumed or cancelled."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    event_type: ClassVar[str] = PROJECT_STATUS_CHANGED
    schema_version: ClassVar[int] = 1

    project_id: uuid.UUID
    org_id: uuid.UUID
    action: Literal["hold", "resume", "cancel"]
    from_status: ProjectStatus
    to_status: ProjectStatus
    reason: str | None = None
    actor: str
    row_version: int = Field(ge=1)


class ProjectMigratedV1(BaseModel):
    """A running project moved to another version of its template, in one transaction.

    Each task's own change is in task-svc's history (a `migrated` event with the fields before
    and after); this event carries the counts.
    """

    model_config = ConfigDict(frozen=True, extra="ignore")

    event_type: ClassVar[str] = PROJECT_MIGRATED
    schema_version: ClassVar[int] = 1

    project_id: uuid.UUID
    org_id: uuid.UUID
    migration_id: uuid.UUID
    plan_id: uuid.UUID
    template_id: uuid.UUID
    from_version: int = Field(ge=1)
    to_version: int = Field(ge=1)
    tasks_added: int = Field(ge=0)
    tasks_cancelled: int = Field(ge=0)
    tasks_updated: int = Field(ge=0, description="kept tasks whose fields or status changed")
    tasks_kept_as_orphans: int = Field(ge=0)
    status_changes: int = Field(ge=0, description="tasks whose status changed")
    actor: str
    row_version: int = Field(ge=1, description="the project's row_version after the migration")


# --- Task* models below ------------------------------------------------------------------------


TASK_STATUS_CHANGED = "task.status_changed"
TASK_UNBLOCKED = "task.unblocked"
TASK_SUBMITTED_FOR_QC = "task.submitted_for_qc"
TASK_ASSIGNED = "task.assigned"
TASK_QC_DECISION_REFUSED = "task.qc_decision_refused"
DELIVERABLE_READY_FOR_SIGNOFF = "deliverable.ready_for_signoff"
DELIVERABLE_SIGNED_OFF = "deliverable.signed_off"
PROJECT_COMPLETED = "project.completed"


class _TaskEventV1(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    schema_version: ClassVar[int] = 1

    task_id: uuid.UUID
    org_id: uuid.UUID
    project_id: uuid.UUID
    deliverable_id: uuid.UUID
    node_key: str
    row_version: int = Field(ge=1, description="the task's row_version after the change")
    occurred_at: datetime


class TaskStatusChangedV1(_TaskEventV1):
    """A task moved from one status to another through an action of the state machine."""

    event_type: ClassVar[str] = TASK_STATUS_CHANGED

    action: str
    from_status: str
    to_status: str
    actor: str = Field(description="a user id, or 'system' / 'service:<name>' for system actions")
    assigned_to: uuid.UUID | None = None
    payload: dict[str, Any] = Field(default_factory=dict, description="the action's payload")


class TaskUnblockedV1(_TaskEventV1):
    """The last open blocker of a task was resolved: it is ready to start."""

    event_type: ClassVar[str] = TASK_UNBLOCKED

    resolved_blocker_id: uuid.UUID = Field(description="the blocker whose resolution freed it")
    assigned_to: uuid.UUID | None = None


class TaskSubmittedForQcV1(_TaskEventV1):
    """Work on a task that needs QC was completed: an inspection round should start."""

    event_type: ClassVar[str] = TASK_SUBMITTED_FOR_QC

    title: str
    qc_checklist: list[dict[str, Any]] = Field(default_factory=list)
    round: int = Field(ge=1, description="1 for the first submission, +1 after each QC reject")
    assignee_id: uuid.UUID | None = Field(default=None, description="who completed the work")
    note: str | None = None
    template_id: uuid.UUID | None = Field(
        default=None, description="the template the task's project is pinned to"
    )
    template_version: int | None = Field(
        default=None, ge=1, description="the pinned template version"
    )


class TaskAssignedV1(_TaskEventV1):
    """A task was assigned, or unassigned (`assigned_to` is null)."""

    event_type: ClassVar[str] = TASK_ASSIGNED

    assigned_to: uuid.UUID | None
    previous_assignee: uuid.UUID | None = None
    actor: str


class TaskQcDecisionRefusedV1(BaseModel):
    """task-svc could not apply a QC decision to the task and changed nothing.

    For example a reject whose `rework_from_task_id` is not upstream of the inspected task, or a
    decision on a task of a cancelled project. The inspection returns to its inspector
    (`claimed`), showing `outcome: refused` with `outcome_error: {code, detail}` and the
    `refusals` history, so the inspector can decide again.
    """

    model_config = ConfigDict(frozen=True, extra="ignore")

    event_type: ClassVar[str] = TASK_QC_DECISION_REFUSED
    schema_version: ClassVar[int] = 1

    inspection_id: uuid.UUID
    task_id: uuid.UUID
    org_id: uuid.UUID
    decision: Literal["passed", "failed"] = Field(description="the decision that was refused")
    code: str = Field(description="a stable problem code, e.g. REWORK_TASK_NOT_UPSTREAM")
    detail: str = Field(description="what is wrong, in words")
    occurred_at: datetime


class DeliverableReadyForSignoffV1(BaseModel):
    """Every task of a deliverable is resolved: it waits for an approver's sign-off."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    event_type: ClassVar[str] = DELIVERABLE_READY_FOR_SIGNOFF
    schema_version: ClassVar[int] = 1

    deliverable_id: uuid.UUID
    org_id: uuid.UUID
    project_id: uuid.UUID
    serial: str
    row_version: int = Field(ge=1)
    occurred_at: datetime


class DeliverableSignedOffV1(BaseModel):
    """An approver decided on a deliverable: approved (signed off) or rejected (tasks reopened)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    event_type: ClassVar[str] = DELIVERABLE_SIGNED_OFF
    schema_version: ClassVar[int] = 1

    deliverable_id: uuid.UUID
    org_id: uuid.UUID
    project_id: uuid.UUID
    serial: str
    decision: Literal["approved", "rejected"]
    comment: str | None = None
    reopen_task_ids: list[uuid.UUID] = Field(default_factory=list)
    actor: str
    row_version: int = Field(ge=1)
    occurred_at: datetime


class ProjectCompletedV1(BaseModel):
    """Every deliverable of a project is signed off: the project is completed."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    event_type: ClassVar[str] = PROJECT_COMPLETED
    schema_version: ClassVar[int] = 1

    project_id: uuid.UUID
    org_id: uuid.UUID
    row_version: int = Field(ge=1)
    completed_at: datetime


__all__ = [
    "DELIVERABLE_READY_FOR_SIGNOFF",
    "DELIVERABLE_SIGNED_OFF",
    "PROJECT_COMPLETED",
    "PROJECT_CREATED",
    "PROJECT_MIGRATED",
    "PROJECT_STATUS_CHANGED",
    "TASK_ASSIGNED",
    "TASK_QC_DECISION_REFUSED",
    "TASK_STATUS_CHANGED",
    "TASK_SUBMITTED_FOR_QC",
    "TASK_UNBLOCKED",
    "DeliverableReadyForSignoffV1",
    "DeliverableSignedOffV1",
    "ProjectCompletedV1",
    "ProjectCreatedV1",
    "ProjectDeliverableV1",
    "ProjectMigratedV1",
    "ProjectStatusChangedV1",
    "TaskAssignedV1",
    "TaskQcDecisionRefusedV1",
    "TaskStatusChangedV1",
    "TaskSubmittedForQcV1",
    "TaskUnblockedV1",
]
