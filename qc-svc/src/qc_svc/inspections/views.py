"""An inspection as the API shows it: the row with its defects, and its response model."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from qc_svc.inspections import rules
from qc_svc.inspections.models import Defect, Inspection
from qc_svc.inspections.rules import Decision, Status
from qc_svc.inspections.schemas import InspectionRead

REFUSAL_READ_FIELDS = (
    "decision",
    "reason",
    "rework_from_task_id",
    "decided_at",
    "code",
    "detail",
    "refused_at",
    "reopened_at",
)


@dataclass(frozen=True)
class InspectionView:
    """An inspection and its defects (oldest first): what reads and commands return."""

    inspection: Inspection
    defects: Sequence[Defect]

    @property
    def row_version(self) -> int:
        return self.inspection.row_version


def to_read(view: InspectionView) -> InspectionRead:
    inspection = view.inspection
    return InspectionRead(
        id=inspection.id,
        org_id=inspection.org_id,
        project_id=inspection.project_id,
        deliverable_id=inspection.deliverable_id,
        task_id=inspection.task_id,
        task_title=inspection.task_title,
        node_key=inspection.node_key,
        template_id=inspection.template_id,
        template_version=inspection.template_version,
        assignee_id=inspection.assignee_id,
        round=inspection.round,
        status=Status(inspection.status),
        inspector_id=inspection.inspector_id,
        claimed_at=inspection.claimed_at,
        checklist=inspection.checklist,
        defects=[_defect_read(d) for d in view.defects],
        decision=Decision(inspection.decision) if inspection.decision else None,
        reason=inspection.reason,
        rework_from_task_id=inspection.rework_from_task_id,
        decided_at=inspection.decided_at,
        outcome=inspection.outcome,
        outcome_error=inspection.outcome_error,
        outcome_at=inspection.outcome_at,
        refusals=[_refusal_read(r) for r in inspection.refusals],
        allowed_actions=[c.value for c in rules.allowed_commands(Status(inspection.status))],
        row_version=inspection.row_version,
        created_at=inspection.created_at,
        updated_at=inspection.updated_at,
    )


def _defect_read(defect: Defect) -> dict[str, Any]:
    return {
        "id": defect.id,
        "code": defect.code,
        "severity": defect.severity,
        "description": defect.description,
        "created_by": defect.created_by,
        "created_at": defect.created_at,
    }


def _refusal_read(entry: Mapping[str, Any]) -> dict[str, Any]:
    return {k: entry.get(k) for k in REFUSAL_READ_FIELDS}
