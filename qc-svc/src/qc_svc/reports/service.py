"""The quality report: its scope from the request, its sections from SQL aggregates."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from qc_svc.reports import repository as repo
from qc_svc.reports import xlsx
from servicekit.auth import Principal
from servicekit.errors import Unprocessable

DEFAULT_DAYS = 30
MAX_DAYS = 366 * 5
# The days a report can cover: nothing was inspected before the first, and the day after the
# last must still be a date (the range ends at the next midnight).
FIRST_DAY = date(1970, 1, 1)
LAST_DAY = date(9998, 12, 31)


def _check_day(value: date | None, field: str) -> None:
    if value is not None and not FIRST_DAY <= value <= LAST_DAY:
        raise Unprocessable(
            f"'{field}' must be a day from {FIRST_DAY} to {LAST_DAY}, got {value}",
            code="DATE_OUT_OF_RANGE",
            errors=[
                {
                    "in": "query",
                    "field": field,
                    "message": f"a day from {FIRST_DAY} to {LAST_DAY}",
                    "type": "value_error",
                }
            ],
        )


def resolve_range(
    date_from: date | None, date_to: date | None, *, today: date
) -> tuple[date, date]:
    """The inclusive day range; by default the last 30 days up to today."""
    _check_day(date_from, "from")
    _check_day(date_to, "to")
    end = date_to or today
    start = date_from or end - timedelta(days=DEFAULT_DAYS - 1)
    if start > end:
        raise Unprocessable(
            f"from ({start}) is after to ({end}); from must be on or before to",
            code="DATE_RANGE_INVALID",
            errors=[
                {"in": "query", "field": "from", "message": "after 'to'", "type": "value_error"}
            ],
        )
    if (end - start).days + 1 > MAX_DAYS:
        raise Unprocessable(
            f"the range spans {(end - start).days + 1} days; at most {MAX_DAYS} are allowed",
            code="DATE_RANGE_TOO_LONG",
        )
    return start, end


async def quality_report(
    session: AsyncSession,
    *,
    principal: Principal,
    date_from: date | None,
    date_to: date | None,
    project_id: uuid.UUID | None = None,
    template_id: uuid.UUID | None = None,
) -> dict[str, Any]:
    start, end = resolve_range(date_from, date_to, today=datetime.now(UTC).date())
    scope = repo.Scope(
        org_id=principal.org,
        start=datetime.combine(start, time.min, tzinfo=UTC),
        end=datetime.combine(end + timedelta(days=1), time.min, tzinfo=UTC),
        project_id=project_id,
        template_id=template_id,
    )
    report: dict[str, Any] = {
        "scope": {
            "date_from": start,
            "date_to": end,
            "project_id": project_id,
            "template_id": template_id,
        },
        "overall": (await repo.rows(session, repo.yield_statement(scope, ())))[0],
    }
    for name, dims in repo.DIMENSIONS.items():
        report[f"by_{name}"] = await repo.rows(session, repo.yield_statement(scope, dims))
    report["defects_by_code"] = await repo.rows(session, repo.defects_by_code_statement(scope))
    report["defects_by_severity"] = await repo.rows(
        session, repo.defects_by_severity_statement(scope)
    )
    return report


async def quality_report_xlsx(
    session: AsyncSession,
    *,
    principal: Principal,
    date_from: date | None,
    date_to: date | None,
    project_id: uuid.UUID | None = None,
    template_id: uuid.UUID | None = None,
) -> tuple[bytes, str]:
    """The report as an XLSX workbook and its file name."""
    report = await quality_report(
        session,
        principal=principal,
        date_from=date_from,
        date_to=date_to,
        project_id=project_id,
        template_id=template_id,
    )
    scope = report["scope"]
    return xlsx.render(report), f"qc-report-{scope['date_from']}-{scope['date_to']}.xlsx"
