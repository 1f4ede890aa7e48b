"""HTTP routes of inspections: reads for planners, viewers and inspectors; commands for
inspectors. (task-svc reports a refused decision by the `task.qc_decision_refused` event.)

The router reads the headers (`If-Match`, `Idempotency-Key`), makes the one service call inside
servicekit's idempotent `run_command`, and renders the answer; the services take domain
arguments and return an `InspectionView`.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import Response

from qc_svc.inspections import commands, reads
from qc_svc.inspections.models import COMMAND_ANSWERS
from qc_svc.inspections.repository import ListFilters
from qc_svc.inspections.rules import Command, ResultEntry, Status
from qc_svc.inspections.schemas import (
    ClaimRequest,
    DecisionRequest,
    DefectCreate,
    InspectionPage,
    InspectionRead,
    ResultsRequest,
)
from qc_svc.inspections.views import InspectionView, to_read
from qc_svc.roles import Inspector, QcReader
from servicekit.auth import Principal
from servicekit.bounds import INT2_MAX, INT4_MAX
from servicekit.conditional import ExpectedVersion, etag, required_version
from servicekit.db import unit_of_work
from servicekit.errors import Unprocessable
from servicekit.idempotency import (
    Answer,
    CommandKey,
    fingerprint,
    required_command_key,
    run_command,
)
from servicekit.jsonutil import FastJSONResponse, dumps
from servicekit.pagination import DEFAULT_LIMIT, Cursor, Limit

router = APIRouter(prefix="/api/v1/inspections", tags=["inspections"])

Session = Annotated[AsyncSession, unit_of_work()]
IfMatch = Annotated[
    str | None,
    Header(
        alias="If-Match",
        description='`"<row_version>"`: an alternative to expected_row_version in the body',
    ),
]
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        description="an alternative to client_event_id in the body (send one of them)",
    ),
]
COMMAND_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {
        "description": "a malformed If-Match or Idempotency-Key, or one that disagrees with "
        "the body (IF_MATCH_INVALID, IF_MATCH_MISMATCH, IDEMPOTENCY_KEY_INVALID, "
        "IDEMPOTENCY_KEY_MISMATCH)"
    },
    403: {"description": "NOT_THE_INSPECTOR: only the inspector who claimed it"},
    409: {
        "description": "the inspection's state forbids it: VERSION_CONFLICT (stale "
        "expected_row_version), INSPECTION_STATUS_CONFLICT, ACCEPT_BLOCKED, "
        "REJECT_WITHOUT_FINDINGS, or IDEMPOTENCY_KEY_REUSED (the key was used for another "
        "command)",
        "content": {
            "application/problem+json": {
                "example": {
                    "type": "/problems/version-conflict",
                    "title": "Version conflict",
                    "status": 409,
                    "detail": "inspection 5b0c... is at row_version 3 (status 'claimed'), not "
                    "2: read it again and retry",
                    "code": "VERSION_CONFLICT",
                    "current_row_version": 3,
                    "current_status": "claimed",
                }
            }
        },
    },
    412: {"description": "VERSION_CONFLICT: a stale If-Match (or a weak W/ tag)"},
    422: {
        "description": "the request itself is invalid: fields, CHECKLIST_ITEM_UNKNOWN, "
        "CHECKLIST_ITEM_REPEATED, REJECT_REASON_REQUIRED, REWORK_TASK_ON_ACCEPT, "
        "REWORK_TASK_IS_INSPECTED_TASK, or neither client_event_id nor Idempotency-Key"
    },
    428: {"description": "ROW_VERSION_REQUIRED: neither expected_row_version nor If-Match"},
}


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


def _arguments(body: BaseModel) -> dict[str, Any]:
    """What a command asks, without its key and version (the request hash adds the version)."""
    return body.model_dump(mode="json", exclude={"client_event_id", "expected_row_version"})


async def _command(
    session: AsyncSession,
    principal: Principal,
    *,
    command: Command,
    inspection_id: uuid.UUID,
    key: CommandKey,
    expected: ExpectedVersion,
    args: dict[str, Any],
    run: Callable[[], Awaitable[InspectionView]],
    status_code: int = 200,
) -> Response:
    """Run a command once per idempotency key and answer with the inspection and its ETag."""

    async def answer() -> Answer:
        view = await run()
        return Answer(status_code, dumps(to_read(view)), {"ETag": etag(view.row_version)})

    result = await run_command(
        session,
        COMMAND_ANSWERS,
        org_id=principal.org,
        key=key,
        request_hash=fingerprint(
            f"{command.value} {inspection_id}", {"expected_row_version": expected.version, **args}
        ),
        run=answer,
        values={
            "inspection_id": inspection_id,
            "action": command.value,
            "actor_id": principal.user_id,
        },
    )
    return result.response()


@router.get("", response_model=InspectionPage, summary="List inspections")
async def list_inspections(
    principal: QcReader,
    session: Session,
    status: Status | None = None,
    project_id: uuid.UUID | None = None,
    deliverable_id: uuid.UUID | None = None,
    task_id: uuid.UUID | None = None,
    inspector: str | None = Query(default=None, description="a user id, or `me`"),
    round: int | None = Query(default=None, ge=1, le=INT2_MAX),
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> Response:
    filters = ListFilters(
        status=status.value if status else None,
        project_id=project_id,
        deliverable_id=deliverable_id,
        task_id=task_id,
        inspector_id=_inspector_filter(inspector, principal),
        round=round,
    )
    views, next_cursor = await reads.list_inspections(
        session, principal=principal, filters=filters, cursor=cursor, limit=limit
    )
    return FastJSONResponse(
        InspectionPage(items=[to_read(v) for v in views], next_cursor=next_cursor)
    )


@router.get("/{inspection_id}", response_model=InspectionRead, summary="Read an inspection")
async def get_inspection(
    inspection_id: uuid.UUID, principal: QcReader, session: Session
) -> Response:
    view = await reads.get_inspection(session, principal=principal, inspection_id=inspection_id)
    return FastJSONResponse(to_read(view), headers={"ETag": etag(view.row_version)})


@router.post(
    "/{inspection_id}/claim",
    response_model=InspectionRead,
    responses=COMMAND_RESPONSES,
    summary="Take a pending inspection",
)
async def claim_inspection(
    inspection_id: uuid.UUID,
    body: ClaimRequest,
    principal: Inspector,
    session: Session,
    if_match: IfMatch = None,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    expected = required_version(body.expected_row_version, if_match)
    return await _command(
        session,
        principal,
        command=Command.claim,
        inspection_id=inspection_id,
        key=required_command_key(body.client_event_id, idempotency_key),
        expected=expected,
        args={},
        run=lambda: commands.claim(
            session, principal=principal, inspection_id=inspection_id, expected=expected
        ),
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
    principal: Inspector,
    session: Session,
    if_match: IfMatch = None,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    expected = required_version(body.expected_row_version, if_match)
    return await _command(
        session,
        principal,
        command=Command.record_results,
        inspection_id=inspection_id,
        key=required_command_key(body.client_event_id, idempotency_key),
        expected=expected,
        args=_arguments(body),
        run=lambda: commands.record_results(
            session,
            principal=principal,
            inspection_id=inspection_id,
            expected=expected,
            results=[ResultEntry(r.code, r.result, r.note) for r in body.results],
        ),
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
    principal: Inspector,
    session: Session,
    if_match: IfMatch = None,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    expected = required_version(body.expected_row_version, if_match)
    return await _command(
        session,
        principal,
        command=Command.add_defect,
        inspection_id=inspection_id,
        key=required_command_key(body.client_event_id, idempotency_key),
        expected=expected,
        args=_arguments(body),
        run=lambda: commands.add_defect(
            session,
            principal=principal,
            inspection_id=inspection_id,
            expected=expected,
            code=body.code,
            severity=body.severity,
            description=body.description,
        ),
        status_code=201,
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
    principal: Inspector,
    session: Session,
    client_event_id: uuid.UUID | None = Query(
        default=None, description="your id for this command (or an Idempotency-Key header)"
    ),
    expected_row_version: int | None = Query(default=None, ge=1, le=INT4_MAX),
    if_match: IfMatch = None,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    expected = required_version(expected_row_version, if_match)
    return await _command(
        session,
        principal,
        command=Command.remove_defect,
        inspection_id=inspection_id,
        key=required_command_key(client_event_id, idempotency_key, where="query"),
        expected=expected,
        args={"defect_id": str(defect_id)},
        run=lambda: commands.remove_defect(
            session,
            principal=principal,
            inspection_id=inspection_id,
            expected=expected,
            defect_id=defect_id,
        ),
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
    principal: Inspector,
    session: Session,
    if_match: IfMatch = None,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    expected = required_version(body.expected_row_version, if_match)
    return await _command(
        session,
        principal,
        command=Command.decide,
        inspection_id=inspection_id,
        key=required_command_key(body.client_event_id, idempotency_key),
        expected=expected,
        args=_arguments(body),
        run=lambda: commands.decide(
            session,
            principal=principal,
            inspection_id=inspection_id,
            expected=expected,
            decision=body.decision,
            reason=body.reason,
            rework_from_task_id=body.rework_from_task_id,
        ),
    )
