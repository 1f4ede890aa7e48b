"""QC gauges read from the inspections table (servicekit.sampling: one process per service).

- `qc_inspections{status, round}`: inspections by status (pending, claimed, passed, failed) and
  round (`1`, `2`, `3+`). First-pass yield is passed / (passed + failed) of round 1; rounds
  above 1 are rework. Read from the rows, so it is exact whichever process decided.
"""

from __future__ import annotations

from prometheus_client import Gauge
from sqlalchemy import case, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from qc_svc.inspections.models import STATUSES, Inspection

ROUNDS = ("1", "2", "3+")

QC_INSPECTIONS = Gauge(
    "qc_inspections",
    "QC inspections by status and round (1, 2, 3+), read from the database",
    ["status", "round"],
    multiprocess_mode="livemax",
)


async def sample_inspections(conn: AsyncConnection) -> None:
    round_class = case(
        (Inspection.round == 1, "1"), (Inspection.round == 2, "2"), else_="3+"
    ).label("round_class")
    rows = await conn.execute(
        select(Inspection.status, round_class, func.count()).group_by(
            Inspection.status, round_class
        )
    )
    counts = {(status, rnd): n for status, rnd, n in rows}
    for status in STATUSES:
        for rnd in ROUNDS:
            QC_INSPECTIONS.labels(status, rnd).set(counts.get((status, rnd), 0))
