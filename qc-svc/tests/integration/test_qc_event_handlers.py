"""The task.submitted_for_qc handler: one inspection per (task, round), however often delivered."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.envelope import CloudEvent
from contracts.tasks import TASK_SUBMITTED_FOR_QC, TaskSubmittedForQcV1
from qc_svc.events.handlers import handlers, open_inspection_round
from qc_svc.inspections.models import Inspection
from servicekit.testing.plugin import DEFAULT_ORG


def envelope(round: int = 1, task_id: uuid.UUID | None = None) -> CloudEvent[TaskSubmittedForQcV1]:
    data = TaskSubmittedForQcV1(
        task_id=task_id or uuid.uuid4(),
        org_id=DEFAULT_ORG,
        project_id=uuid.uuid4(),
        deliverable_id=uuid.uuid4(),
        node_key="weld-frame",
        row_version=5,
        occurred_at=datetime(2026, 3, 2, 9, 0, tzinfo=UTC),
        title="Weld the frame",
        qc_checklist=[{"code": "WELD-01", "text": "Seams are continuous", "required": True}],
        round=round,
        assignee_id=uuid.uuid4(),
    )
    return CloudEvent[TaskSubmittedForQcV1](
        id=str(uuid.uuid4()),
        source="task-svc",
        type=TASK_SUBMITTED_FOR_QC,
        time=data.occurred_at,
        subject=str(data.task_id),
        data=data,
    )


def test_the_handler_is_registered_for_task_submitted_for_qc() -> None:
    registered = handlers.get(TASK_SUBMITTED_FOR_QC)
    assert registered is not None
    assert registered.producer == "task-svc"
    assert registered.handler is open_inspection_round


async def test_a_redelivered_submission_makes_one_inspection(session: AsyncSession) -> None:
    event = envelope()
    await open_inspection_round(session, event)
    await open_inspection_round(session, event)
    rows = list(
        await session.scalars(select(Inspection).where(Inspection.task_id == event.data.task_id))
    )
    assert len(rows) == 1
    inspection = rows[0]
    assert (inspection.status, inspection.round) == ("pending", 1)
    assert inspection.node_key == "weld-frame"
    assert inspection.assignee_id == event.data.assignee_id
    assert inspection.source_event_id == uuid.UUID(event.id)
    assert inspection.submitted_at == event.data.occurred_at
    assert inspection.checklist[0]["code"] == "WELD-01"


async def test_the_next_round_after_a_rework_opens_a_new_inspection(session: AsyncSession) -> None:
    first = envelope()
    await open_inspection_round(session, first)
    await open_inspection_round(session, envelope(round=2, task_id=first.data.task_id))
    count = await session.scalar(
        select(func.count()).select_from(Inspection).where(Inspection.task_id == first.data.task_id)
    )
    assert count == 2
