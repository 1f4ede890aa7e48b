"""`qc_inspections{status, round}` are the database's counts, every combination present."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from prometheus_client import REGISTRY
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from qc_svc.inspections import intake
from qc_svc.inspections.gauges import ROUNDS, sample_inspections
from qc_svc.inspections.models import STATUSES, Inspection

MakeSubmission = Callable[..., dict[str, Any]]


def _gauges() -> dict[tuple[str, str], float]:
    values = {}
    for status in STATUSES:
        for rnd in ROUNDS:
            value = REGISTRY.get_sample_value("qc_inspections", {"status": status, "round": rnd})
            assert value is not None, (status, rnd)
            values[(status, rnd)] = value
    return values


async def test_inspections_are_counted_by_status_and_round(
    session: AsyncSession, make_submission: MakeSubmission
) -> None:
    conn = await session.connection()
    await sample_inspections(conn)
    before = _gauges()
    fields = make_submission()
    first, _ = await intake.create_inspection_from_submission(session, **fields)
    await intake.create_inspection_from_submission(session, **{**fields, "round": 2})
    await intake.create_inspection_from_submission(session, **{**fields, "round": 4})
    await session.execute(
        update(Inspection).where(Inspection.id == first.id).values(status="failed")
    )
    await session.flush()
    await sample_inspections(conn)
    after = _gauges()
    changed = {k: after[k] - before[k] for k in after if after[k] != before[k]}
    assert changed == {("failed", "1"): 1, ("pending", "2"): 1, ("pending", "3+"): 1}
