"""qc-svc's event handlers: a task submitted for QC opens an inspection round; a decision
task-svc could not apply returns its inspection to the inspector, to be decided again.

Each handler runs inside the consumer's transaction with the event's inbox row; creation is also
idempotent on (task, round), so a redelivery after a crash never makes a second inspection, and
the same refusal recorded twice (by its event id) changes nothing.
"""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from contracts.envelope import Envelope
from contracts.tasks import TaskQcDecisionRefusedV1, TaskSubmittedForQcV1
from qc_svc.inspections import intake
from servicekit.events import EventHandlers

handlers = EventHandlers()


def _event_uuid(event_id: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(event_id)
    except ValueError:
        return None


@handlers.on(TaskSubmittedForQcV1, producer="task-svc")
async def open_inspection_round(
    session: AsyncSession, event: Envelope[TaskSubmittedForQcV1]
) -> None:
    data = event.data
    await intake.create_inspection_from_submission(
        session,
        org_id=data.org_id,
        task_id=data.task_id,
        project_id=data.project_id,
        deliverable_id=data.deliverable_id,
        node_key=data.node_key,
        title=data.title,
        qc_checklist=data.qc_checklist,
        round=data.round,
        assignee_id=data.assignee_id,
        template_id=data.template_id,
        template_version=data.template_version,
        submitted_at=data.occurred_at,
        source_event_id=_event_uuid(event.id),
    )


# The longest refusal detail an inspection keeps.
MAX_DETAIL = 4000


@handlers.on(TaskQcDecisionRefusedV1, producer="task-svc")
async def record_refused_decision(
    session: AsyncSession, event: Envelope[TaskQcDecisionRefusedV1]
) -> None:
    data = event.data
    await intake.reopen_after_refusal(
        session,
        org_id=data.org_id,
        inspection_id=data.inspection_id,
        refused_decision=data.decision,
        code=data.code,
        detail=data.detail[:MAX_DETAIL],
        refused_at=data.occurred_at,
        refusal_id=event.id,
    )
