"""Events qc-svc publishes about inspections: created, passed, failed, reopened.

task-svc consumes `qc.inspection.passed` (system action `qc_accept`) and `qc.inspection.failed`
(system action `qc_reject`, optionally reopening an upstream task named by
`rework_from_task_id`). When task-svc refuses a decision, the inspection goes back to its
inspector (`qc.inspection.reopened`) to be decided again.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

QC_INSPECTION_CREATED = "qc.inspection.created"
QC_INSPECTION_PASSED = "qc.inspection.passed"
QC_INSPECTION_FAILED = "qc.inspection.failed"
QC_INSPECTION_REOPENED = "qc.inspection.reopened"


class DefectSeverity(StrEnum):
    minor = "minor"
    major = "major"
    critical = "critical"


class DefectV1(BaseModel):
    """A defect recorded by the inspector."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    code: str
    severity: DefectSeverity
    description: str


class _InspectionEventV1(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    schema_version: ClassVar[int] = 1

    inspection_id: uuid.UUID
    org_id: uuid.UUID
    project_id: uuid.UUID
    deliverable_id: uuid.UUID
    task_id: uuid.UUID
    node_key: str
    round: int = Field(ge=1, description="1 for the first inspection of the task, +1 per rework")


class QcInspectionCreatedV1(_InspectionEventV1):
    """An inspection is waiting for an inspector (a task was submitted for QC)."""

    event_type: ClassVar[str] = QC_INSPECTION_CREATED

    assignee_id: uuid.UUID | None = Field(
        default=None, description="the operator who completed the inspected task"
    )
    created_at: datetime


class QcInspectionPassedV1(_InspectionEventV1):
    """The inspector accepted the work: task-svc applies `qc_accept` (task -> done)."""

    event_type: ClassVar[str] = QC_INSPECTION_PASSED

    inspector_id: uuid.UUID
    reason: str | None = None
    decided_at: datetime


class QcInspectionFailedV1(_InspectionEventV1):
    """The inspector rejected the work: task-svc applies `qc_reject` (task -> rework).

    With `rework_from_task_id`, that upstream task of the same deliverable is reopened to rework
    and the tasks on the paths between it and the inspected task are re-blocked.
    """

    event_type: ClassVar[str] = QC_INSPECTION_FAILED

    inspector_id: uuid.UUID
    reason: str
    failed_items: list[str] = Field(
        default_factory=list, description="codes of the checklist items that failed"
    )
    defects: list[DefectV1] = Field(default_factory=list)
    rework_from_task_id: uuid.UUID | None = None
    decided_at: datetime


class QcInspectionReopenedV1(_InspectionEventV1):
    """task-svc refused the inspection's decision and applied nothing: the inspection is back
    with its inspector (status `claimed`, results and defects kept) to be decided again.

    The refusal (`code`, `detail`) is shown on the inspection; the task is still in QC. A new
    decision is published as a new `qc.inspection.passed` / `qc.inspection.failed` event.
    """

    event_type: ClassVar[str] = QC_INSPECTION_REOPENED

    inspector_id: uuid.UUID | None = Field(
        default=None, description="the inspector the inspection is back with"
    )
    refused_decision: Literal["accept", "reject"] = Field(
        description="the decision task-svc refused"
    )
    rework_from_task_id: uuid.UUID | None = Field(
        default=None, description="the upstream task the refused reject named, if any"
    )
    code: str = Field(description="a stable problem code, e.g. REWORK_TASK_NOT_UPSTREAM")
    detail: str = Field(description="why it was refused, in words")
    refused_at: datetime = Field(description="when task-svc refused the decision")
    refusals: int = Field(ge=1, description="how many decisions of this inspection were refused")
    reopened_at: datetime


__all__ = [
    "QC_INSPECTION_CREATED",
    "QC_INSPECTION_FAILED",
    "QC_INSPECTION_PASSED",
    "QC_INSPECTION_REOPENED",
    "DefectSeverity",
    "DefectV1",
    "QcInspectionCreatedV1",
    "QcInspectionFailedV1",
    "QcInspectionPassedV1",
    "QcInspectionReopenedV1",
]
