"""task.qc_decision_refused: task-svc could not apply a decision; the inspection shows why."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.envelope import CloudEvent
from contracts.tasks import (
    TASK_QC_DECISION_REFUSED,
    TASK_SUBMITTED_FOR_QC,
    TaskQcDecisionRefusedV1,
    TaskSubmittedForQcV1,
)
from qc_svc.events.handlers import handlers, open_inspection_round, record_refused_decision
from qc_svc.inspections.models import Inspection
from servicekit.errors import AppError
from servicekit.testing.plugin import DEFAULT_ORG


def submitted(template_id: uuid.UUID | None = None) -> CloudEvent[TaskSubmittedForQcV1]:
    data = TaskSubmittedForQcV1(
        task_id=uuid.uuid4(),
        org_id=DEFAULT_ORG,
        project_id=uuid.uuid4(),
        deliverable_id=uuid.uuid4(),
        node_key="paint",
        row_version=4,
        occurred_at=datetime(2026, 11, 2, 9, 0, tzinfo=UTC),
        title="Paint",
        qc_checklist=[{"code": "PAINT-1", "text": "No runs", "required": True}],
        round=1,
        template_id=template_id,
        template_version=3 if template_id else None,
    )
    return CloudEvent[TaskSubmittedForQcV1](
        id=str(uuid.uuid4()),
        source="task-svc",
        type=TASK_SUBMITTED_FOR_QC,
        time=data.occurred_at,
        subject=str(data.task_id),
        data=data,
    )


def refused(
    inspection: Inspection, code: str = "REWORK_TASK_NOT_UPSTREAM"
) -> CloudEvent[TaskQcDecisionRefusedV1]:
    data = TaskQcDecisionRefusedV1(
        inspection_id=inspection.id,
        task_id=inspection.task_id,
        org_id=inspection.org_id,
        decision="failed",
        code=code,
        detail=f"task x is not upstream of the inspected task {inspection.task_id}",
        occurred_at=datetime.now(UTC),
    )
    return CloudEvent[TaskQcDecisionRefusedV1](
        id=str(uuid.uuid4()),
        source="task-svc",
        type=TASK_QC_DECISION_REFUSED,
        time=data.occurred_at,
        subject=str(data.task_id),
        data=data,
    )


async def inspection_of(session: AsyncSession, task_id: uuid.UUID) -> Inspection:
    found = await session.scalar(select(Inspection).where(Inspection.task_id == task_id))
    assert found is not None
    return found


def test_qcflow_refusal_handler_is_registered() -> None:
    registered = handlers.get(TASK_QC_DECISION_REFUSED)
    assert registered is not None
    assert registered.producer == "task-svc"
    assert registered.handler is record_refused_decision


async def test_qcflow_submission_keeps_the_pinned_template(session: AsyncSession) -> None:
    template_id = uuid.uuid4()
    event = submitted(template_id)
    await open_inspection_round(session, event)
    inspection = await inspection_of(session, event.data.task_id)
    assert (inspection.template_id, inspection.template_version) == (template_id, 3)


async def test_qcflow_refused_decision_shows_on_the_inspection_once(
    session: AsyncSession,
) -> None:
    event = submitted()
    await open_inspection_round(session, event)
    inspection = await inspection_of(session, event.data.task_id)
    inspection.status = "failed"
    inspection.decision = "reject"
    await session.flush()
    version = inspection.row_version

    refusal = refused(inspection)
    await record_refused_decision(session, refusal)
    await session.refresh(inspection)
    assert inspection.outcome == "refused"
    assert inspection.outcome_error == {
        "code": "REWORK_TASK_NOT_UPSTREAM",
        "detail": refusal.data.detail,
    }
    assert inspection.row_version == version + 1

    # Recorded again (a redelivery past the inbox): nothing changes.
    await record_refused_decision(session, refusal)
    await session.refresh(inspection)
    assert inspection.row_version == version + 1


async def test_qcflow_refusal_of_an_undecided_inspection_raises(session: AsyncSession) -> None:
    event = submitted()
    await open_inspection_round(session, event)
    inspection = await inspection_of(session, event.data.task_id)
    with pytest.raises(AppError) as err:
        await record_refused_decision(session, refused(inspection))
    assert err.value.code == "INSPECTION_NOT_DECIDED"
