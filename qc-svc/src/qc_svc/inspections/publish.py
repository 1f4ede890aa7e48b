"""The events of inspections, written to qc-svc's outbox with servicekit's `emit` (each carries
its contract's `dataschema`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.qc import DefectSeverity, DefectV1, QcInspectionFailedV1, QcInspectionPassedV1
from qc_svc.db import outbox
from qc_svc.inspections import rules
from qc_svc.inspections.models import Defect, Inspection
from qc_svc.inspections.rules import Status
from servicekit.outbox import emit

SOURCE = "qc-svc"
AGGREGATE = "inspection"


async def publish(session: AsyncSession, inspection: Inspection, payload: BaseModel) -> None:
    """Add `payload` (a contracts.qc model) about `inspection` to this transaction's outbox."""
    await emit(
        session,
        outbox,
        payload,
        source=SOURCE,
        aggregate_type=AGGREGATE,
        aggregate_id=inspection.id,
    )


def inspection_fields(inspection: Inspection) -> dict[str, Any]:
    """The fields every inspection event starts with."""
    return {
        "inspection_id": inspection.id,
        "org_id": inspection.org_id,
        "project_id": inspection.project_id,
        "deliverable_id": inspection.deliverable_id,
        "task_id": inspection.task_id,
        "node_key": inspection.node_key,
        "round": inspection.round,
    }


def decision_event(
    inspection: Inspection, defects: Sequence[Defect]
) -> QcInspectionPassedV1 | QcInspectionFailedV1:
    """`qc.inspection.passed` or `.failed` for a decided inspection."""
    assert inspection.inspector_id is not None and inspection.decided_at is not None
    common: dict[str, Any] = {
        **inspection_fields(inspection),
        "inspector_id": inspection.inspector_id,
        "decided_at": inspection.decided_at,
    }
    if inspection.status == Status.passed.value:
        return QcInspectionPassedV1(reason=inspection.reason, **common)
    return QcInspectionFailedV1(
        reason=inspection.reason or "",
        failed_items=rules.failed_items(inspection.checklist),
        defects=[
            DefectV1(code=d.code, severity=DefectSeverity(d.severity), description=d.description)
            for d in defects
        ],
        rework_from_task_id=inspection.rework_from_task_id,
        **common,
    )
