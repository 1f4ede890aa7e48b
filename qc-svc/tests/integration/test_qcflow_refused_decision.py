"""task.qc_decision_refused: task-svc could not apply a decision; the inspection goes back to its
inspector (claimed, results and defects kept), shows why, and can be decided again."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, Literal

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.envelope import CloudEvent
from contracts.qc import QcInspectionReopenedV1
from contracts.tasks import (
    TASK_QC_DECISION_REFUSED,
    TASK_SUBMITTED_FOR_QC,
    TaskQcDecisionRefusedV1,
    TaskSubmittedForQcV1,
)
from qc_svc.db import outbox
from qc_svc.events.handlers import handlers, open_inspection_round, record_refused_decision
from qc_svc.inspections import commands, reads
from qc_svc.inspections.models import Inspection
from qc_svc.inspections.rules import Decision, Result, ResultEntry, Severity
from qc_svc.inspections.views import to_read
from servicekit.auth import Principal
from servicekit.conditional import ExpectedVersion
from servicekit.errors import AppError
from servicekit.testing.plugin import DEFAULT_ORG

INSPECTOR = Principal(
    sub="00000000-0000-4000-8000-0000000000c7", org_id=DEFAULT_ORG, roles=frozenset({"inspector"})
)


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
    inspection: Inspection,
    code: str = "REWORK_TASK_NOT_UPSTREAM",
    decision: Literal["passed", "failed"] = "failed",
) -> CloudEvent[TaskQcDecisionRefusedV1]:
    data = TaskQcDecisionRefusedV1(
        inspection_id=inspection.id,
        task_id=inspection.task_id,
        org_id=inspection.org_id,
        decision=decision,
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


async def events_of(session: AsyncSession, inspection_id: uuid.UUID) -> list[tuple[str, Any]]:
    rows = await session.execute(
        select(outbox.c.id, outbox.c.type, outbox.c.payload)
        .where(outbox.c.aggregate_id == str(inspection_id))
        .order_by(outbox.c.seq)
    )
    return [(r.type, {**r.payload, "_event_id": str(r.id)}) for r in rows]


def cmd(version: int, inspection_id: uuid.UUID) -> dict[str, Any]:
    """The arguments every command takes: who, which inspection, at which row version."""
    return {
        "principal": INSPECTOR,
        "inspection_id": inspection_id,
        "expected": ExpectedVersion(version),
    }


async def rejected_naming(session: AsyncSession, upstream: uuid.UUID | None) -> Inspection:
    """An inspection claimed, with a failed item and a defect, rejected (naming `upstream`)."""
    event = submitted()
    await open_inspection_round(session, event)
    inspection = await inspection_of(session, event.data.task_id)
    iid = inspection.id
    await commands.claim(session, **cmd(1, iid))
    await commands.record_results(
        session, **cmd(2, iid), results=[ResultEntry("PAINT-1", Result.failed)]
    )
    await commands.add_defect(
        session, **cmd(3, iid), code="RUN", severity=Severity.major, description="runs"
    )
    await commands.decide(
        session,
        **cmd(4, iid),
        decision=Decision.reject,
        reason="repaint",
        rework_from_task_id=upstream,
    )
    await session.refresh(inspection)
    assert (inspection.status, inspection.row_version) == ("failed", 5)
    return inspection


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


async def test_qcflow_a_refused_reject_goes_back_to_the_inspector_once(
    session: AsyncSession,
) -> None:
    upstream = uuid.uuid4()
    inspection = await rejected_naming(session, upstream)
    decided_at = inspection.decided_at
    assert decided_at is not None

    refusal = refused(inspection)
    await record_refused_decision(session, refusal)
    await session.refresh(inspection)
    assert inspection.status == "claimed"
    assert inspection.inspector_id == INSPECTOR.user_id
    assert inspection.row_version == 6
    # Results and defects are kept; the refused decision moved into the history.
    assert inspection.checklist[0]["result"] == "fail"
    view = await reads.get_inspection(session, principal=INSPECTOR, inspection_id=inspection.id)
    shown = to_read(view).model_dump(mode="json")
    assert [d["code"] for d in shown["defects"]] == ["RUN"]
    assert (shown["decision"], shown["reason"], shown["decided_at"]) == (None, None, None)
    assert shown["rework_from_task_id"] is None
    assert shown["outcome"] == "refused"
    assert shown["outcome_error"] == {
        "code": "REWORK_TASK_NOT_UPSTREAM",
        "detail": refusal.data.detail,
    }
    assert shown["outcome_at"] is not None
    assert shown["allowed_actions"] == ["record_results", "add_defect", "remove_defect", "decide"]
    (entry,) = shown["refusals"]
    assert entry["decision"] == "reject"
    assert entry["reason"] == "repaint"
    assert entry["rework_from_task_id"] == str(upstream)
    assert datetime.fromisoformat(entry["decided_at"]) == decided_at
    assert entry["code"] == "REWORK_TASK_NOT_UPSTREAM"
    assert datetime.fromisoformat(entry["refused_at"]) == refusal.data.occurred_at

    events = await events_of(session, inspection.id)
    assert [t for t, _ in events] == [
        "qc.inspection.created",
        "qc.inspection.failed",
        "qc.inspection.reopened",
    ]
    reopened = QcInspectionReopenedV1.model_validate(events[2][1])
    assert reopened.refused_decision == "reject"
    assert reopened.rework_from_task_id == upstream
    assert (reopened.code, reopened.refusals) == ("REWORK_TASK_NOT_UPSTREAM", 1)
    assert reopened.inspector_id == INSPECTOR.user_id

    # Delivered again (past the inbox): nothing changes, no second event.
    await record_refused_decision(session, refusal)
    await session.refresh(inspection)
    assert inspection.row_version == 6
    assert len(inspection.refusals) == 1
    assert len(await events_of(session, inspection.id)) == 3


async def test_qcflow_after_a_refusal_the_inspector_decides_again_with_a_new_event(
    session: AsyncSession,
) -> None:
    inspection = await rejected_naming(session, uuid.uuid4())
    await record_refused_decision(session, refused(inspection))

    again = await commands.decide(
        session,
        **cmd(6, inspection.id),
        decision=Decision.reject,
        reason="repaint the door",
        rework_from_task_id=None,
    )
    assert (again.inspection.status, again.row_version) == ("failed", 7)
    await session.refresh(inspection)
    assert (inspection.status, inspection.row_version) == ("failed", 7)
    assert inspection.rework_from_task_id is None
    assert (inspection.outcome, inspection.outcome_error, inspection.outcome_at) == (
        None,
        None,
        None,
    )
    assert len(inspection.refusals) == 1

    events = await events_of(session, inspection.id)
    failed = [p for t, p in events if t == "qc.inspection.failed"]
    assert len(failed) == 2
    assert failed[0]["_event_id"] != failed[1]["_event_id"]
    assert failed[1]["rework_from_task_id"] is None
    assert failed[1]["reason"] == "repaint the door"
    assert failed[1]["defects"] == [{"code": "RUN", "severity": "major", "description": "runs"}]


async def test_qcflow_a_refused_accept_also_returns_to_the_inspector(
    session: AsyncSession,
) -> None:
    event = submitted()
    await open_inspection_round(session, event)
    inspection = await inspection_of(session, event.data.task_id)
    iid = inspection.id
    await commands.claim(session, **cmd(1, iid))
    await commands.record_results(
        session, **cmd(2, iid), results=[ResultEntry("PAINT-1", Result.passed)]
    )
    await commands.decide(
        session, **cmd(3, iid), decision=Decision.accept, reason=None, rework_from_task_id=None
    )
    # A refusal of a reject does not touch an accepted inspection.
    await record_refused_decision(session, refused(inspection, "PROJECT_NOT_ACTIVE", "failed"))
    await session.refresh(inspection)
    assert (inspection.status, inspection.row_version) == ("passed", 4)

    await record_refused_decision(session, refused(inspection, "PROJECT_NOT_ACTIVE", "passed"))
    await session.refresh(inspection)
    assert (inspection.status, inspection.row_version) == ("claimed", 5)
    assert inspection.refusals[0]["decision"] == "accept"
    assert inspection.checklist[0]["result"] == "pass"


async def test_qcflow_refusal_of_an_undecided_inspection_raises(session: AsyncSession) -> None:
    event = submitted()
    await open_inspection_round(session, event)
    inspection = await inspection_of(session, event.data.task_id)
    with pytest.raises(AppError) as err:
        await record_refused_decision(session, refused(inspection))
    assert err.value.code == "INSPECTION_NOT_DECIDED"
