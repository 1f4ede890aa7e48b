"""Inspections changed by events from task-svc: a round opened by `task.submitted_for_qc`, and a
decision task-svc refused (`task.qc_decision_refused`) returning the inspection to its inspector.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from contracts.qc import QcInspectionCreatedV1, QcInspectionReopenedV1
from qc_svc.inspections import repository as repo
from qc_svc.inspections import rules
from qc_svc.inspections.models import Inspection
from qc_svc.inspections.publish import inspection_fields, publish
from qc_svc.inspections.reads import get_or_404
from qc_svc.inspections.rules import Decision, Status
from servicekit.errors import Conflict, Unprocessable

log = logging.getLogger("qc_svc.inspections")


async def create_inspection_from_submission(
    session: AsyncSession,
    *,
    org_id: uuid.UUID,
    task_id: uuid.UUID,
    project_id: uuid.UUID,
    deliverable_id: uuid.UUID,
    node_key: str,
    title: str,
    qc_checklist: Sequence[Mapping[str, Any]],
    round: int,
    assignee_id: uuid.UUID | None,
    template_id: uuid.UUID | None = None,
    template_version: int | None = None,
    submitted_at: datetime | None = None,
    source_event_id: uuid.UUID | None = None,
) -> tuple[Inspection, bool]:
    """The inspection of `task_id` for `round`, created if absent: (inspection, created).

    Idempotent on (task_id, round): the same submission delivered twice creates one inspection
    and one `qc.inspection.created` event.
    """
    if round < 1:
        raise Unprocessable(
            f"round must be 1 or more, got {round}", code="ROUND_INVALID", round=round
        )
    now = datetime.now(UTC)
    inspection = await repo.insert_if_absent(
        session,
        {
            "id": uuid.uuid4(),
            "org_id": org_id,
            "project_id": project_id,
            "deliverable_id": deliverable_id,
            "task_id": task_id,
            "task_title": title,
            "node_key": node_key,
            "template_id": template_id,
            "template_version": template_version,
            "assignee_id": assignee_id,
            "round": round,
            "status": Status.pending.value,
            "checklist": rules.copy_checklist(qc_checklist),
            "submitted_at": submitted_at,
            "source_event_id": source_event_id,
            "row_version": 1,
            "created_at": now,
            "updated_at": now,
        },
    )
    if inspection is None:
        return await _existing_round(session, org_id=org_id, task_id=task_id, round=round), False
    await publish(session, inspection, _created_event(inspection))
    return inspection, True


def _created_event(inspection: Inspection) -> QcInspectionCreatedV1:
    return QcInspectionCreatedV1(
        **inspection_fields(inspection),
        assignee_id=inspection.assignee_id,
        created_at=inspection.created_at,
    )


async def _existing_round(
    session: AsyncSession, *, org_id: uuid.UUID, task_id: uuid.UUID, round: int
) -> Inspection:
    existing = await repo.get_by_task_round(session, org_id=org_id, task_id=task_id, round=round)
    if existing is None:
        raise Conflict(
            f"task {task_id} round {round} has an inspection in another org",
            code="INSPECTION_ORG_MISMATCH",
        )
    return existing


async def reopen_after_refusal(
    session: AsyncSession,
    *,
    org_id: uuid.UUID,
    inspection_id: uuid.UUID,
    refused_decision: str,
    code: str,
    detail: str,
    refused_at: datetime,
    refusal_id: str | None = None,
) -> Inspection:
    """task-svc refused the decision `refused_decision` (`passed` / `failed`) and applied nothing:
    the inspection goes back to its inspector to be decided again.

    Status `claimed` by the same inspector, results and defects kept, the refused decision moved
    into `refusals` (with code, detail, when), `outcome: refused`, row_version bumped, and
    `qc.inspection.reopened` published. Called by the `task.qc_decision_refused` handler.

    A refusal already recorded (same `refusal_id`) or of a decision that is no longer the
    inspection's current one changes nothing; a refusal of an inspection that was never decided
    is an error (the event is retried, then dead-lettered).
    """
    inspection = await get_or_404(session, org_id, inspection_id, for_update=True)
    if not _refusal_applies(inspection, refused_decision, code, refusal_id):
        return inspection
    assert inspection.decision is not None and inspection.decided_at is not None
    now = datetime.now(UTC)
    event = _reopened_event(inspection, code=code, detail=detail, refused_at=refused_at, now=now)
    entry: dict[str, Any] = {
        "decision": inspection.decision,
        "reason": inspection.reason,
        "rework_from_task_id": (
            str(inspection.rework_from_task_id) if inspection.rework_from_task_id else None
        ),
        "decided_at": inspection.decided_at.isoformat(),
        "code": code,
        "detail": detail,
        "refused_at": refused_at.isoformat(),
        "reopened_at": now.isoformat(),
        "refusal_id": refusal_id,
    }
    inspection.refusals = [*inspection.refusals, entry]
    inspection.status = rules.status_after_refusal(Status(inspection.status)).value
    inspection.decision = None
    inspection.reason = None
    inspection.rework_from_task_id = None
    inspection.decided_at = None
    inspection.outcome = "refused"
    inspection.outcome_error = {"code": code, "detail": detail}
    inspection.outcome_at = refused_at
    inspection.row_version = inspection.row_version + 1
    inspection.updated_at = now
    await session.flush()
    await publish(session, inspection, event)
    return inspection


def _refusal_applies(
    inspection: Inspection, refused_decision: str, code: str, refusal_id: str | None
) -> bool:
    """Whether this refusal reopens the inspection: False for one already recorded or of a
    decision that is no longer current; 409 for an inspection that was never decided."""
    if refusal_id is not None and refusal_id in {r.get("refusal_id") for r in inspection.refusals}:
        return False
    status = Status(inspection.status)
    try:
        refused: Status | None = Status(refused_decision)
    except ValueError:
        refused = None
    if refused is not None and rules.refusal_applies(status, refused):
        return True
    if status not in rules.DECIDED and not inspection.refusals:
        raise Conflict(
            f"inspection {inspection.id} is {status.value}: it has no decision to refuse",
            code="INSPECTION_NOT_DECIDED",
            current_status=status.value,
        )
    log.warning(
        "refusal of a decision that is no longer current ignored",
        extra={
            "inspection_id": str(inspection.id),
            "status": status.value,
            "refused_decision": refused_decision,
            "code": code,
        },
    )
    return False


def _reopened_event(
    inspection: Inspection, *, code: str, detail: str, refused_at: datetime, now: datetime
) -> QcInspectionReopenedV1:
    return QcInspectionReopenedV1(
        **inspection_fields(inspection),
        inspector_id=inspection.inspector_id,
        refused_decision="accept" if inspection.decision == Decision.accept.value else "reject",
        rework_from_task_id=inspection.rework_from_task_id,
        code=code,
        detail=detail,
        refused_at=refused_at,
        refusals=len(inspection.refusals) + 1,
        reopened_at=now,
    )
