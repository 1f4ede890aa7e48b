"""Routes of the task state machine: transitions (single, bulk, system), history, the table."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from sqlalchemy.ext.asyncio import AsyncSession

from servicekit.auth import Principal
from servicekit.conditional import required_version
from servicekit.db import Database, get_database, unit_of_work
from servicekit.errors import AppError, Forbidden, Unprocessable
from servicekit.jsonutil import FastJSONResponse
from task_svc.roles import CurrentUser, ServiceCaller
from task_svc.tasks import fsm, metrics
from task_svc.tasks import service as task_service
from task_svc.tasks import transitions as service
from task_svc.tasks.bulk import BulkItem, apply_bulk
from task_svc.tasks.fsm_payload import PayloadError, validate_payload
from task_svc.tasks.transition_schemas import (
    BulkTransitionRequest,
    BulkTransitionResult,
    SystemTransitionRequest,
    TaskEventPage,
    TransitionRequest,
    TransitionResult,
)


class _TransitionRoute(APIRoute):
    """Turns validation errors inside `payload` into PAYLOAD_INVALID with the table's message."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
                return await handler(request)
            except RequestValidationError as exc:
                problem = _payload_problem(exc, system=self.path.startswith("/internal/"))
                _count_refused(exc.body, problem)
                raise problem from None

        return route


def _count_refused(body: Any, problem: Exception) -> None:
    """A transition refused at validation still counts in the transition metrics."""
    if not isinstance(body, dict) or "action" not in body:
        return
    code = problem.code if isinstance(problem, AppError) else "PAYLOAD_INVALID"
    metrics.record_refusal(str(body["action"]), code)


def _payload_problem(exc: RequestValidationError, *, system: bool = False) -> Exception:
    """The table's precise problem for a bad transition body; `system`: the internal route,
    where system actions are the expected ones (their payload is checked like any other)."""
    body = exc.body
    if not isinstance(body, dict):
        return exc
    action = body.get("action")
    if not isinstance(action, str):
        return exc
    try:
        act = fsm.Action(action)
    except ValueError:
        return Unprocessable(
            f"unknown action {action!r}; the actions are: {', '.join(fsm.USER_ACTIONS)}",
            code="ACTION_UNKNOWN",
            field="action",
        )
    if act in fsm.SYSTEM_ACTIONS and not system:
        return Forbidden(
            f"action '{act}' is a system action: only the platform performs it",
            code="SYSTEM_ACTION",
            action=str(act),
        )
    try:
        validate_payload(act, body.get("payload"))
    except PayloadError as err:
        return Unprocessable(str(err), code="PAYLOAD_INVALID", field=err.field)
    return exc


router = APIRouter(tags=["task transitions"], route_class=_TransitionRoute)

_HEADERS_DOC = [
    {
        "name": "If-Match",
        "in": "header",
        "required": False,
        "description": 'the row_version the change expects, e.g. "3" (or expected_row_version); '
        "a stale one answers 412",
        "schema": {"type": "string", "examples": ['"3"']},
    },
    {
        "name": "Idempotency-Key",
        "in": "header",
        "required": False,
        "description": "your id of this request (or client_event_id): the same key again on "
        "this task replays the first answer with Idempotent-Replayed: true",
        "schema": {"type": "string", "maxLength": 200, "examples": ["start-2f9c6a1e"]},
    },
]


def _caller(principal: Principal) -> service.Caller:
    return service.Caller(
        actor=principal.sub, roles=principal.roles, user_id=principal.user_id, system=False
    )


def _respond(outcome: service.TransitionOutcome) -> Response:
    headers = {"ETag": f'"{outcome.row_version}"'}
    if outcome.replayed:
        headers["Idempotent-Replayed"] = "true"
    return FastJSONResponse(outcome.body, status_code=outcome.status_code, headers=headers)


@router.get("/api/v1/tasks/fsm", summary="The task state machine as data")
async def get_fsm(principal: CurrentUser) -> dict[str, Any]:
    return fsm.table_as_data()


@router.post(
    "/api/v1/tasks/transitions:bulk",
    summary="Apply up to 500 transitions, each in its own transaction",
    response_model=BulkTransitionResult,
    status_code=207,
)
async def bulk_transitions(
    body: BulkTransitionRequest,
    principal: CurrentUser,
    db: Database = Depends(get_database),
) -> Response:
    items = [
        BulkItem(
            task_id=i.task_id,
            action=i.action,
            payload=i.payload,
            expected_row_version=i.expected_row_version,
            client_event_id=i.client_event_id,
        )
        for i in body.items
    ]
    results = await apply_bulk(db, org_id=principal.org, items=items, caller=_caller(principal))
    return FastJSONResponse({"results": results}, status_code=207)


@router.post(
    "/api/v1/tasks/{task_id}/transitions",
    summary="Apply an action of the state machine to a task",
    response_model=TransitionResult,
    responses={
        400: {
            "description": "a header is invalid: IF_MATCH_INVALID, IF_MATCH_MISMATCH (If-Match "
            "and expected_row_version disagree), IDEMPOTENCY_KEY_INVALID or "
            "IDEMPOTENCY_KEY_MISMATCH (Idempotency-Key and client_event_id disagree)"
        },
        403: {"description": "ACTION_FORBIDDEN: the role or the assignee rule forbids it"},
        409: {
            "description": "the task's state forbids it: VERSION_CONFLICT (a stale "
            "expected_row_version; with current_row_version and current_status), "
            "ACTION_NOT_ALLOWED, TASK_BLOCKED, PROJECT_NOT_ACTIVE, DELIVERABLE_SIGNED_OFF, or "
            "IDEMPOTENCY_KEY_REUSED (the key was used on this task for another request)"
        },
        412: {
            "description": "VERSION_CONFLICT: the If-Match row version is stale (or a weak "
            "tag); with current_row_version and current_status"
        },
        422: {"description": "the request itself is invalid: PAYLOAD_INVALID or ACTION_UNKNOWN"},
        428: {"description": "ROW_VERSION_REQUIRED: neither expected_row_version nor If-Match"},
    },
    openapi_extra={"parameters": _HEADERS_DOC},
)
async def post_transition(
    task_id: uuid.UUID,
    body: TransitionRequest,
    request: Request,
    principal: CurrentUser,
) -> Response:
    # The hot path of the platform: one flat dependency (authentication, so a request without a
    # token is a 401 before anything else), headers read directly, and the unit of work on the
    # pool's asyncpg connection (same commit / rollback semantics as the dependency; the
    # transition is explicit SQL, so a session or SQLAlchemy's connection and result layers
    # would be pure overhead).
    headers = request.headers
    expected = required_version(body.expected_row_version, headers.get("if-match"))
    outcome = await service.apply_from_pool(
        request.app.state.db,
        org_id=principal.org,
        task_id=task_id,
        action=body.action,
        payload=body.payload.model_dump(mode="json", exclude_none=True),
        expected=expected,
        client_event_id=body.client_event_id,
        idempotency_key=headers.get("idempotency-key"),
        caller=_caller(principal),
    )
    return _respond(outcome)


@router.get(
    "/api/v1/tasks/{task_id}/events",
    summary="A task's history, oldest first",
    response_model=TaskEventPage,
    responses={
        400: {"description": "CURSOR_INVALID: not a next_cursor of this list"},
        404: {"description": "TASK_NOT_FOUND"},
    },
)
async def get_events(
    task_id: uuid.UUID,
    limit: int = Query(default=50, ge=1, le=500),
    cursor: str | None = Query(default=None),
    *,
    principal: CurrentUser,
    session: AsyncSession = unit_of_work(),
) -> dict[str, Any]:
    return await task_service.list_events(
        session, org_id=principal.org, task_id=task_id, limit=limit, cursor=cursor
    )


@router.post(
    "/internal/tasks/{task_id}/system-transitions",
    summary="qc_accept / qc_reject from another service (service token)",
    response_model=TransitionResult,
    include_in_schema=True,
)
async def post_system_transition(
    task_id: uuid.UUID,
    body: SystemTransitionRequest,
    caller: ServiceCaller,
    org_id: uuid.UUID = Query(description="the task's org"),
    session: AsyncSession = unit_of_work(),
) -> Response:
    outcome = await service.apply_transition(
        session,
        org_id=org_id,
        task_id=task_id,
        action=body.action,
        payload=body.payload.model_dump(mode="json", exclude_none=True),
        expected=None,
        client_event_id=body.client_event_id,
        caller=service.Caller(actor=caller.sub, roles=caller.roles, user_id=None, system=True),
    )
    return _respond(outcome)
