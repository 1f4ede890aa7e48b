"""Creating inspections from QC submissions: idempotent per (task, round), with an event."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from qc_svc.db import outbox
from qc_svc.inspections import intake
from qc_svc.inspections.models import Inspection

MakeSubmission = Callable[..., dict[str, Any]]


async def _events(
    session: AsyncSession, aggregate_id: uuid.UUID
) -> list[tuple[str, dict[str, Any]]]:
    rows = await session.execute(
        select(outbox.c.type, outbox.c.payload)
        .where(outbox.c.aggregate_id == str(aggregate_id))
        .order_by(outbox.c.seq)
    )
    return [(r.type, r.payload) for r in rows]


async def test_a_submission_creates_a_pending_inspection_with_the_checklist_copied(
    session: AsyncSession, make_submission: MakeSubmission, checklist: list[dict[str, Any]]
) -> None:
    fields = make_submission()
    inspection, created = await intake.create_inspection_from_submission(session, **fields)
    assert created
    assert inspection.status == "pending"
    assert inspection.round == 1
    assert inspection.row_version == 1
    assert [i["code"] for i in inspection.checklist] == [c["code"] for c in checklist]
    assert all(i["result"] is None for i in inspection.checklist)
    assert inspection.checklist[2]["required"] is False
    events = await _events(session, inspection.id)
    assert [t for t, _ in events] == ["qc.inspection.created"]
    payload = events[0][1]
    assert payload["task_id"] == str(fields["task_id"])
    assert payload["round"] == 1
    assert payload["assignee_id"] == str(fields["assignee_id"])


async def test_the_same_submission_twice_gives_one_inspection_and_one_event(
    session: AsyncSession, make_submission: MakeSubmission
) -> None:
    fields = make_submission()
    first, created_first = await intake.create_inspection_from_submission(session, **fields)
    second, created_second = await intake.create_inspection_from_submission(session, **fields)
    assert (created_first, created_second) == (True, False)
    assert second.id == first.id
    count = await session.scalar(
        select(func.count()).select_from(Inspection).where(Inspection.task_id == fields["task_id"])
    )
    assert count == 1
    assert len(await _events(session, first.id)) == 1


async def test_each_round_of_a_task_gets_its_own_inspection(
    session: AsyncSession, make_submission: MakeSubmission
) -> None:
    fields = make_submission()
    first, _ = await intake.create_inspection_from_submission(session, **fields)
    second, created = await intake.create_inspection_from_submission(
        session, **{**fields, "round": 2}
    )
    assert created
    assert second.id != first.id
    assert (first.round, second.round) == (1, 2)
