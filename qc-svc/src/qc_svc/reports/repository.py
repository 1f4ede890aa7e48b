"""The report queries: SQL aggregates over decided inspections and their defects."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Numeric,
    Select,
    and_,
    case,
    cast,
    func,
    select,
)
from sqlalchemy.ext.asyncio import AsyncSession

from qc_svc.inspections.models import Defect, Inspection

I = Inspection.__table__  # noqa: E741 - the usual alias for the table in report SQL
D = Defect.__table__
DECIDED = ("passed", "failed")

# breakdown name -> the columns it groups by
DIMENSIONS: dict[str, tuple[str, ...]] = {
    "project": ("project_id",),
    "template_version": ("template_id", "template_version"),
    "node": ("template_id", "node_key"),
    "assignee": ("assignee_id",),
}


@dataclass(frozen=True)
class Scope:
    """Which decided inspections a report covers: decided in [start, end)."""

    org_id: uuid.UUID
    start: datetime
    end: datetime
    project_id: uuid.UUID | None = None
    template_id: uuid.UUID | None = None

    def where(self) -> list[ColumnElement[bool]]:
        conds: list[ColumnElement[bool]] = [
            I.c.org_id == self.org_id,
            I.c.status.in_(DECIDED),
            I.c.decided_at >= self.start,
            I.c.decided_at < self.end,
        ]
        if self.project_id is not None:
            conds.append(I.c.project_id == self.project_id)
        if self.template_id is not None:
            conds.append(I.c.template_id == self.template_id)
        return conds


def _ratio(numerator: Any, denominator: Any, digits: int = 4) -> ColumnElement[Any]:
    return func.round(cast(numerator, Numeric) / func.nullif(denominator, 0), digits)


def yield_statement(scope: Scope, dims: tuple[str, ...]) -> Select[Any]:
    """First-pass yield, rework rate, rounds and defect counts, grouped by `dims` (or overall)."""
    per_inspection = (
        select(
            D.c.inspection_id,
            func.count().label("defects"),
            func.count().filter(D.c.severity == "critical").label("critical"),
        )
        .where(D.c.org_id == scope.org_id)
        .group_by(D.c.inspection_id)
        .subquery("defect_counts")
    )
    passed = func.count().filter(I.c.status == "passed")
    failed = func.count().filter(I.c.status == "failed")
    first_round = func.count().filter(I.c.round == 1)
    first_pass = func.count().filter(and_(I.c.round == 1, I.c.status == "passed"))
    dim_cols = [I.c[d] for d in dims]
    stmt = (
        select(
            *dim_cols,
            func.count().label("inspections"),
            passed.label("passed"),
            failed.label("failed"),
            func.count(I.c.task_id.distinct()).label("tasks"),
            first_round.label("first_round_inspections"),
            first_pass.label("first_pass_accepted"),
            _ratio(first_pass, first_round).label("first_pass_yield"),
            _ratio(failed, func.count()).label("rework_rate"),
            func.count().filter(I.c.round > 1).label("rework_rounds"),
            func.max(I.c.round).label("max_round"),
            func.round(func.avg(I.c.round).filter(I.c.status == "passed"), 2).label(
                "avg_rounds_to_pass"
            ),
            func.coalesce(func.sum(per_inspection.c.defects), 0).label("defects"),
            func.coalesce(func.sum(per_inspection.c.critical), 0).label("critical_defects"),
        )
        .select_from(I.outerjoin(per_inspection, per_inspection.c.inspection_id == I.c.id))
        .where(*scope.where())
    )
    if dim_cols:
        stmt = stmt.group_by(*dim_cols).order_by(*[c.asc().nulls_last() for c in dim_cols])
    return stmt


def defects_by_code_statement(scope: Scope) -> Select[Any]:
    """The Pareto of defect codes: count, severities, share and cumulative share."""
    per_code = (
        select(
            D.c.code,
            func.count().label("defects"),
            func.count().filter(D.c.severity == "critical").label("critical"),
            func.count().filter(D.c.severity == "major").label("major"),
            func.count().filter(D.c.severity == "minor").label("minor"),
        )
        .select_from(D.join(I, I.c.id == D.c.inspection_id))
        .where(D.c.org_id == scope.org_id, *scope.where())
        .group_by(D.c.code)
        .subquery("per_code")
    )
    total = func.sum(per_code.c.defects).over()
    running = func.sum(per_code.c.defects).over(
        order_by=(per_code.c.defects.desc(), per_code.c.code), rows=(None, 0)
    )
    return select(
        per_code.c.code,
        per_code.c.defects,
        per_code.c.critical,
        per_code.c.major,
        per_code.c.minor,
        _ratio(per_code.c.defects, total).label("share"),
        _ratio(running, total).label("cumulative_share"),
    ).order_by(per_code.c.defects.desc(), per_code.c.code)


def defects_by_severity_statement(scope: Scope) -> Select[Any]:
    rank = case({"critical": 1, "major": 2, "minor": 3}, value=D.c.severity)
    count = func.count()
    return (
        select(
            D.c.severity,
            count.label("defects"),
            _ratio(count, func.sum(count).over()).label("share"),
        )
        .select_from(D.join(I, I.c.id == D.c.inspection_id))
        .where(D.c.org_id == scope.org_id, *scope.where())
        .group_by(D.c.severity)
        .order_by(func.min(rank))
    )


def _plain_value(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, uuid.UUID):  # asyncpg's own UUID type, which orjson does not take
        return str(value)
    return value


def _plain(row: Any) -> dict[str, Any]:
    return {k: _plain_value(v) for k, v in row._mapping.items()}


async def rows(session: AsyncSession, stmt: Select[Any]) -> list[dict[str, Any]]:
    return [_plain(r) for r in await session.execute(stmt)]
