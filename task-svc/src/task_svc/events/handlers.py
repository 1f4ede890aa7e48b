"""task-svc's event handlers: a QC decision from qc-svc is applied to the inspected task.

`qc.inspection.passed` becomes the system action `qc_accept` (in_qc -> done, with the usual
cascades) and `qc.inspection.failed` becomes `qc_reject` (in_qc -> rework; with
`rework_from_task_id`, the upstream task is reopened and the branch between re-blocked). Both go
through the same transition service as the API, inside the consumer's transaction (with the
event's inbox row), with `client_event_id = "qc:<event id>"`, so a redelivered decision is a
replay that changes nothing.

A decision the task cannot take (the named task is not upstream, the project is cancelled, the
task is not in QC, ...) is a business refusal: nothing is applied and a
`task.qc_decision_refused` event tells qc-svc why, which shows it on the inspection. Any other
failure (the task row is missing, the database is down) raises: the consumer retries the event
and, after its last attempt, dead-letters it with the error.
"""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime
from typing import Any, Literal

from sqlalchemy.ext.asyncio import AsyncSession

from contracts.envelope import Envelope
from contracts.qc import QcInspectionFailedV1, QcInspectionPassedV1
from contracts.tasks import TaskQcDecisionRefusedV1
from servicekit.errors import AppError
from servicekit.events import EventHandlers, emit
from task_svc.db import outbox
from task_svc.tasks import transitions
from task_svc.tasks.history import SOURCE

log = logging.getLogger("task_svc.events")

handlers = EventHandlers()

QC_SERVICE = transitions.Caller(
    actor="service:qc-svc", roles=frozenset({"service"}), user_id=None, system=True
)
# Problems that are not a verdict on the decision: raised, so the consumer retries the event and
# finally dead-letters it with the error.
NOT_A_REFUSAL: frozenset[str] = frozenset({"TASK_NOT_FOUND", "IDEMPOTENCY_KEY_REUSED"})


def client_event_id(event_id: str) -> str:
    """The idempotency key of the transition a decision event causes."""
    return f"qc:{event_id}"


@handlers.on(QcInspectionPassedV1)
async def apply_qc_passed(session: AsyncSession, event: Envelope[QcInspectionPassedV1]) -> None:
    data = event.data
    await _apply_decision(
        session,
        event_id=event.id,
        org_id=data.org_id,
        task_id=data.task_id,
        inspection_id=data.inspection_id,
        decision="passed",
        payload={"inspection_id": str(data.inspection_id)},
    )


@handlers.on(QcInspectionFailedV1)
async def apply_qc_failed(session: AsyncSession, event: Envelope[QcInspectionFailedV1]) -> None:
    data = event.data
    payload: dict[str, Any] = {
        "inspection_id": str(data.inspection_id),
        "defects": [d.model_dump(mode="json") for d in data.defects],
    }
    if data.reason.strip():
        payload["reason"] = data.reason
    if data.rework_from_task_id is not None:
        payload["rework_from_task_id"] = str(data.rework_from_task_id)
    await _apply_decision(
        session,
        event_id=event.id,
        org_id=data.org_id,
        task_id=data.task_id,
        inspection_id=data.inspection_id,
        decision="failed",
        payload=payload,
    )


async def _apply_decision(
    session: AsyncSession,
    *,
    event_id: str,
    org_id: uuid.UUID,
    task_id: uuid.UUID,
    inspection_id: uuid.UUID,
    decision: Literal["passed", "failed"],
    payload: dict[str, Any],
) -> None:
    action = "qc_accept" if decision == "passed" else "qc_reject"
    try:
        # The savepoint guarantees a refusal leaves nothing behind in the consumer's transaction.
        async with session.begin_nested():
            await transitions.apply_transition(
                session,
                org_id=org_id,
                task_id=task_id,
                action=action,
                payload=payload,
                expected=None,
                client_event_id=client_event_id(event_id),
                caller=QC_SERVICE,
            )
    except AppError as exc:
        if exc.code in NOT_A_REFUSAL:
            raise
        log.warning(
            "QC decision refused",
            extra={
                "inspection_id": str(inspection_id),
                "task_id": str(task_id),
                "code": exc.code,
                "detail": exc.detail,
            },
        )
        await emit(
            session,
            outbox,
            TaskQcDecisionRefusedV1(
                inspection_id=inspection_id,
                task_id=task_id,
                org_id=org_id,
                decision=decision,
                code=exc.code,
                detail=exc.detail,
                occurred_at=datetime.now(UTC),
            ),
            source=SOURCE,
            aggregate_type="task",
            aggregate_id=task_id,
        )
