"""HTTP routes of inspections: reads for planners, viewers and inspectors; commands for
inspectors. (task-svc reports a refused decision by the `task.qc_decision_refused` event.)"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import Response

from qc_svc.inspections import service
from qc_svc.inspections.repository import ListFilters
from qc_svc.inspections.rules import Status
from qc_svc.inspections.schemas import (
    ClaimRequest,
    DecisionRequest,
    DefectCreate,
    InspectionPage,
    InspectionRead,
    ResultsRequest,
)
from servicekit.auth import Principal, require_roles
from servicekit.bounds import INT2_MAX, INT4_MAX
from servicekit.conditional import etag
from servicekit.db import unit_of_work
from servicekit.errors import Unprocessable
from servicekit.jsonutil import FastJSONResponse
from servicekit.pagination import DEFAULT_LIMIT, Cursor, Limit

router = APIRouter(prefix="/api/v1/inspections", tags=["inspections"])

READERS = ("inspector", "planner", "viewer")
IfMatch = Annotated[
    str | None,
    Header(
        alias="If-Match",
        description='`"<row_version>"`: an alternative to expected_row_version in the body',
    ),
]
COMMAND_RESPONSES: dict[int | str, dict[str, Any]] = {
    409: {"description": "stale row_version (VERSION_CONFLICT) or wrong status"},
    422: {"description": "a guard refused, or the client_event_id was used for another command"},
    428: {"description": "neither expected_row_version nor If-Match was sent"},
}


def _answer(result: service.CommandResult) -> Response:
    headers = {"ETag": etag(result.row_version)}
    if result.replayed:
        headers["Idempotent-Replayed"] = "true"
    return Response(
        result.content,
        status_code=result.status_code,
        media_type="application/json",
        headers=headers,
    )


def _inspector_filter(inspector: str | None, principal: Principal) -> uuid.UUID | None:
    if inspector is None:
        return None
    if inspector == "me":
        return principal.user_id
    try:
        return uuid.UUID(inspector)
    except ValueError as exc:
        raise Unprocessable(
            f"inspector must be a user id or 'me', got {inspector!r}",
            code="VALIDATION_FAILED",
            errors=[
                {
                    "in": "query",
                    "field": "inspector",
                    "message": "expected a UUID or 'me'",
                    "type": "value_error",
                }
            ],
        ) from exc


@router.get("", response_model=InspectionPage, summary="List inspections")
async def list_inspections(
    status: Status | None = None,
    project_id: uuid.UUID | None = None,
    deliverable_id: uuid.UUID | None = None,
    task_id: uuid.UUID | None = None,
    inspector: str | None = Query(default=None, description="a user id, or `me`"),
    round: int | None = Query(default=None, ge=1, le=INT2_MAX),
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
    principal: Principal = Depends(require_roles(*READERS)),
    session: AsyncSession = unit_of_work(),
) -> Response:
    filters = ListFilters(
        status=status.value if status else None,
        project_id=project_id,
        deliverable_id=deliverable_id,
        task_id=task_id,
        inspector_id=_inspector_filter(inspector, principal),
        round=round,
    )
    page = await service.list_inspections(
        session, principal=principal, filters=filters, cursor=cursor, limit=limit
    )
    return FastJSONResponse(page)


@router.get("/{inspection_id}", response_model=InspectionRead, summary="Read an inspection")
async def get_inspection(
    inspection_id: uuid.UUID,
    principal: Principal = Depends(require_roles(*READERS)),
    session: AsyncSession = unit_of_work(),
) -> Response:
    body = await service.get_inspection(session, principal=principal, inspection_id=inspection_id)
    return FastJSONResponse(body, headers={"ETag": etag(body["row_version"])})


@router.post(
    "/{inspection_id}/claim",
    response_model=InspectionRead,
    responses=COMMAND_RESPONSES,
    summary="Take a pending inspection",
)
async def claim_inspection(
    inspection_id: uuid.UUID,
    body: ClaimRequest,
    if_match: IfMatch = None,
    principal: Principal = Depends(require_roles("inspector")),
    session: AsyncSession = unit_of_work(),
) -> Response:
    return _answer(
        await service.claim(
            session, principal=principal, inspection_id=inspection_id, body=body, if_match=if_match
        )
    )


@router.put(
    "/{inspection_id}/results",
    response_model=InspectionRead,
    responses=COMMAND_RESPONSES,
    summary="Answer checklist items (pass / fail / na, with a note)",
)
async def record_results(
    inspection_id: uuid.UUID,
    body: ResultsRequest,
    if_match: IfMatch = None,
    principal: Principal = Depends(require_roles("inspector")),
    session: AsyncSession = unit_of_work(),
) -> Response:
    return _answer(
        await service.record_results(
            session, principal=principal, inspection_id=inspection_id, body=body, if_match=if_match
        )
    )


@router.post(
    "/{inspection_id}/defects",
    response_model=InspectionRead,
    status_code=201,
    responses=COMMAND_RESPONSES,
    summary="Record a defect",
)
async def add_defect(
    inspection_id: uuid.UUID,
    body: DefectCreate,
    if_match: IfMatch = None,
    principal: Principal = Depends(require_roles("inspector")),
    session: AsyncSession = unit_of_work(),
) -> Response:
    return _answer(
        await service.add_defect(
            session, principal=principal, inspection_id=inspection_id, body=body, if_match=if_match
        )
    )


@router.delete(
    "/{inspection_id}/defects/{defect_id}",
    response_model=InspectionRead,
    responses=COMMAND_RESPONSES,
    summary="Withdraw a defect recorded by mistake",
)
async def remove_defect(
    inspection_id: uuid.UUID,
    defect_id: uuid.UUID,
    client_event_id: uuid.UUID = Query(description="your id for this command"),
    expected_row_version: int | None = Query(default=None, ge=1, le=INT4_MAX),
    if_match: IfMatch = None,
    principal: Principal = Depends(require_roles("inspector")),
    session: AsyncSession = unit_of_work(),
) -> Response:
    return _answer(
        await service.remove_defect(
            session,
            principal=principal,
            inspection_id=inspection_id,
            defect_id=defect_id,
            client_event_id=client_event_id,
            expected_row_version=expected_row_version,
            if_match=if_match,
        )
    )


@router.post(
    "/{inspection_id}/decision",
    response_model=InspectionRead,
    responses=COMMAND_RESPONSES,
    summary="Accept or reject the inspected work",
)
async def decide(
    inspection_id: uuid.UUID,
    body: DecisionRequest,
    if_match: IfMatch = None,
    principal: Principal = Depends(require_roles("inspector")),
    session: AsyncSession = unit_of_work(),
) -> Response:
    return _answer(
        await service.decide(
            session, principal=principal, inspection_id=inspection_id, body=body, if_match=if_match
        )
    )
