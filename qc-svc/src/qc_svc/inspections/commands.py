"""The inspector's commands: claim, record results, add or remove a defect, decide.

Each command locks the inspection, checks the expected row version (a stale one changes nothing:
409, or 412 for a stale If-Match), the status and who may act, applies its change, bumps the row
version and returns the inspection. Idempotency (the same key replays the first answer) is the
router's: servicekit's `run_command` around the call.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from qc_svc.inspections import repository as repo
from qc_svc.inspections import rules
from qc_svc.inspections.decisions import check_decision
from qc_svc.inspections.models import Defect, Inspection
from qc_svc.inspections.publish import decision_event, publish
from qc_svc.inspections.reads import get_or_404, view_of
from qc_svc.inspections.rules import Command, Decision, ResultEntry, Severity, Status
from qc_svc.inspections.views import InspectionView
from servicekit.auth import Principal
from servicekit.conditional import ExpectedVersion, check_version
from servicekit.errors import Conflict, Forbidden, NotFound, Unprocessable

Apply = Callable[[Inspection, datetime], Awaitable[None]]


async def _run(
    session: AsyncSession,
    *,
    principal: Principal,
    inspection_id: uuid.UUID,
    command: Command,
    expected: ExpectedVersion,
    apply: Apply,
    inspector_only: bool = True,
) -> InspectionView:
    """Lock, check (version, status, actor), apply, bump the version."""
    inspection = await get_or_404(session, principal.org, inspection_id, for_update=True)
    check_version(
        expected,
        current_row_version=inspection.row_version,
        current_status=inspection.status,
        what=f"inspection {inspection_id}",
    )
    status = Status(inspection.status)
    if not rules.is_allowed(command, status):
        allowed = sorted(s.value for s in rules.ALLOWED_FROM[command])
        raise Conflict(
            f"cannot {command.value.replace('_', ' ')}: the inspection is {status.value}; "
            f"this needs it to be {' or '.join(allowed)}",
            code="INSPECTION_STATUS_CONFLICT",
            current_status=status.value,
            allowed_statuses=allowed,
        )
    if inspector_only and inspection.inspector_id != principal.user_id:
        raise Forbidden(
            f"only the inspector who claimed this inspection ({inspection.inspector_id}) may "
            f"{command.value.replace('_', ' ')}",
            code="NOT_THE_INSPECTOR",
            inspector_id=str(inspection.inspector_id),
        )
    now = datetime.now(UTC)
    await apply(inspection, now)
    inspection.row_version = inspection.row_version + 1
    inspection.updated_at = now
    await session.flush()
    return await view_of(session, inspection)


async def claim(
    session: AsyncSession,
    *,
    principal: Principal,
    inspection_id: uuid.UUID,
    expected: ExpectedVersion,
) -> InspectionView:
    """A pending inspection becomes the caller's."""

    async def apply(inspection: Inspection, now: datetime) -> None:
        inspection.status = Status.claimed.value
        inspection.inspector_id = principal.user_id
        inspection.claimed_at = now

    return await _run(
        session,
        principal=principal,
        inspection_id=inspection_id,
        command=Command.claim,
        expected=expected,
        apply=apply,
        inspector_only=False,
    )


async def record_results(
    session: AsyncSession,
    *,
    principal: Principal,
    inspection_id: uuid.UUID,
    expected: ExpectedVersion,
    results: Sequence[ResultEntry],
) -> InspectionView:
    """Answer checklist items; items not named keep their answer."""
    codes = [e.code for e in results]
    repeated = sorted({c for c in codes if codes.count(c) > 1})
    if repeated:
        raise Unprocessable(
            f"each checklist item may be answered once per request; repeated: "
            f"{', '.join(repeated)}",
            code="CHECKLIST_ITEM_REPEATED",
            items=repeated,
        )

    async def apply(inspection: Inspection, now: datetime) -> None:
        unknown = rules.unknown_codes(inspection.checklist, results)
        if unknown:
            known = [i["code"] for i in inspection.checklist]
            raise Unprocessable(
                f"not on this inspection's checklist: {', '.join(unknown)}; "
                f"its items are: {', '.join(known) or '(none)'}",
                code="CHECKLIST_ITEM_UNKNOWN",
                unknown_items=unknown,
                known_items=known,
            )
        inspection.checklist = rules.merge_results(inspection.checklist, results)

    return await _run(
        session,
        principal=principal,
        inspection_id=inspection_id,
        command=Command.record_results,
        expected=expected,
        apply=apply,
    )


async def add_defect(
    session: AsyncSession,
    *,
    principal: Principal,
    inspection_id: uuid.UUID,
    expected: ExpectedVersion,
    code: str,
    severity: Severity,
    description: str,
) -> InspectionView:
    async def apply(inspection: Inspection, now: datetime) -> None:
        session.add(
            Defect(
                id=uuid.uuid4(),
                org_id=inspection.org_id,
                inspection_id=inspection.id,
                code=code,
                severity=severity.value,
                description=description,
                created_by=principal.user_id,
                created_at=now,
            )
        )

    return await _run(
        session,
        principal=principal,
        inspection_id=inspection_id,
        command=Command.add_defect,
        expected=expected,
        apply=apply,
    )


async def remove_defect(
    session: AsyncSession,
    *,
    principal: Principal,
    inspection_id: uuid.UUID,
    expected: ExpectedVersion,
    defect_id: uuid.UUID,
) -> InspectionView:
    """Withdraw a defect recorded by mistake."""

    async def apply(inspection: Inspection, now: datetime) -> None:
        defect = await repo.get_defect(session, inspection_id=inspection.id, defect_id=defect_id)
        if defect is None:
            raise NotFound(
                f"inspection {inspection_id} has no defect {defect_id}", code="DEFECT_NOT_FOUND"
            )
        await session.delete(defect)

    return await _run(
        session,
        principal=principal,
        inspection_id=inspection_id,
        command=Command.remove_defect,
        expected=expected,
        apply=apply,
    )


async def decide(
    session: AsyncSession,
    *,
    principal: Principal,
    inspection_id: uuid.UUID,
    expected: ExpectedVersion,
    decision: Decision,
    reason: str | None,
    rework_from_task_id: uuid.UUID | None,
) -> InspectionView:
    """Accept or reject, after the guards; the decision leaves as an outbox event."""
    if decision is Decision.accept and rework_from_task_id is not None:
        raise Unprocessable(
            "rework_from_task_id only goes with decision 'reject'; remove it to accept",
            code="REWORK_TASK_ON_ACCEPT",
        )
    reason = (reason or "").strip() or None

    async def apply(inspection: Inspection, now: datetime) -> None:
        defects = (await repo.defects_of(session, [inspection.id]))[inspection.id]
        check_decision(inspection, defects, decision, reason, rework_from_task_id)
        inspection.status = rules.next_status(
            Command.decide, Status(inspection.status), decision
        ).value
        inspection.decision = decision.value
        inspection.reason = reason
        inspection.rework_from_task_id = rework_from_task_id
        inspection.decided_at = now
        # A new decision: whatever task-svc refused before is history (kept in `refusals`).
        inspection.outcome = None
        inspection.outcome_error = None
        inspection.outcome_at = None
        await publish(session, inspection, decision_event(inspection, defects))

    return await _run(
        session,
        principal=principal,
        inspection_id=inspection_id,
        command=Command.decide,
        expected=expected,
        apply=apply,
    )
