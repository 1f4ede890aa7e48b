"""HTTP routes of the quality reports (JSON and XLSX)."""

from __future__ import annotations

import uuid
from datetime import date

from fastapi import APIRouter, Query
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import Response

from qc_svc.reports import service
from qc_svc.reports.schemas import QualityReport
from qc_svc.roles import QcReader
from servicekit.db import unit_of_work
from servicekit.jsonutil import FastJSONResponse

router = APIRouter(prefix="/api/v1/qc/reports", tags=["qc reports"])

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
FROM = Query(
    default=None, alias="from", description="first day (UTC, inclusive), 1970-01-01 to 9998-12-31"
)
TO = Query(default=None, alias="to", description="last day (UTC, inclusive); default today")


@router.get(
    "/quality",
    response_model=QualityReport,
    summary="First-pass yield, rework and defects (Pareto), per project, version, node, assignee",
)
async def quality_report(
    principal: QcReader,
    date_from: date | None = FROM,
    date_to: date | None = TO,
    project_id: uuid.UUID | None = None,
    template_id: uuid.UUID | None = None,
    session: AsyncSession = unit_of_work(),
) -> Response:
    return FastJSONResponse(
        await service.quality_report(
            session,
            principal=principal,
            date_from=date_from,
            date_to=date_to,
            project_id=project_id,
            template_id=template_id,
        )
    )


@router.get(
    "/quality.xlsx",
    summary="The quality report as an XLSX workbook (one sheet per breakdown)",
    response_class=Response,
    responses={200: {"content": {XLSX: {}}, "description": "the workbook"}},
)
async def quality_report_xlsx(
    principal: QcReader,
    date_from: date | None = FROM,
    date_to: date | None = TO,
    project_id: uuid.UUID | None = None,
    template_id: uuid.UUID | None = None,
    session: AsyncSession = unit_of_work(),
) -> Response:
    content, filename = await service.quality_report_xlsx(
        session,
        principal=principal,
        date_from=date_from,
        date_to=date_to,
        project_id=project_id,
        template_id=template_id,
    )
    return Response(
        content,
        media_type=XLSX,
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
