"""/api/v1/notifications jobs: send an e-mail or a one-off webhook (202 and a job id), read a
job with its attempts, list by status, retry a failed one (admin and planner)."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Header, Query, Request, Response
from sqlalchemy.ext.asyncio import AsyncSession

from notify_svc.notifications import jobs
from notify_svc.notifications.router import PREFIX, Manager, _settings
from notify_svc.notifications.schemas import (
    AttemptRead,
    EmailJobCreate,
    JobAccepted,
    JobDetail,
    JobPage,
    JobRead,
    JobStatus,
    WebhookJobCreate,
)
from notify_svc.webhooks.models import IDEMPOTENCY
from servicekit.db import unit_of_work
from servicekit.idempotency import request_fingerprint, run_idempotent
from servicekit.pagination import DEFAULT_LIMIT, Cursor, Limit

router = APIRouter(prefix=PREFIX, tags=["notification jobs"])

NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"description": "JOB_NOT_FOUND"}}


async def _accept(
    request: Request,
    session: AsyncSession,
    principal: Any,
    key: str | None,
    create: Any,
) -> Response:
    fingerprint = await request_fingerprint(request)

    async def made() -> tuple[dict[str, Any], dict[str, str]]:
        job = await create()
        body = JobAccepted(job_id=job.id, status=job.status).model_dump(mode="json")
        return body, {"Location": f"{PREFIX}/jobs/{job.id}"}

    answer = await run_idempotent(
        session,
        IDEMPOTENCY,
        org_id=principal.org,
        key=key,
        req_hash=fingerprint,
        create=made,
        status_code=202,
    )
    return answer.response()


@router.post(
    "/email",
    status_code=202,
    response_model=JobAccepted,
    summary="Send an e-mail (a job: 202 and its id; retried, then failed)",
    responses={422: {"description": "VALIDATION_FAILED (an address); USER_UNKNOWN"}},
)
async def send_email(
    *,
    body: EmailJobCreate,
    request: Request,
    idempotency_key: str | None = Header(default=None, alias="Idempotency-Key"),
    principal: Manager,
    session: AsyncSession = unit_of_work(),
) -> Response:
    async def create() -> Any:
        return await jobs.create_email(
            session, settings=_settings(request), org_id=principal.org, body=body
        )

    return await _accept(request, session, principal, idempotency_key, create)


@router.post(
    "/webhook",
    status_code=202,
    response_model=JobAccepted,
    summary="POST a JSON payload once to a URL, signed with the org's secret (a job)",
    responses={
        409: {"description": "WEBHOOK_SECRET_MISSING"},
        422: {"description": "URL_NOT_ALLOWED (`rule`); VALIDATION_FAILED"},
    },
)
async def send_webhook(
    *,
    body: WebhookJobCreate,
    request: Request,
    idempotency_key: str | None = Header(default=None, alias="Idempotency-Key"),
    principal: Manager,
    session: AsyncSession = unit_of_work(),
) -> Response:
    async def create() -> Any:
        return await jobs.create_webhook(
            session, settings=_settings(request), org_id=principal.org, body=body
        )

    return await _accept(request, session, principal, idempotency_key, create)


@router.get(
    "/jobs",
    response_model=JobPage,
    summary="Notifications and jobs, newest first (`?status=failed`: the failed ones)",
)
async def list_jobs(
    *,
    status: JobStatus | None = Query(default=None),
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
    principal: Manager,
    session: AsyncSession = unit_of_work(),
) -> JobPage:
    rows, next_cursor = await jobs.list_jobs(
        session, org_id=principal.org, status=status, limit=limit, cursor=cursor
    )
    return JobPage(items=[jobs.read(r) for r in rows], next_cursor=next_cursor)


@router.get(
    "/jobs/{job_id}",
    response_model=JobDetail,
    summary="A job (or notification) with every attempt",
    responses=NOT_FOUND,
)
async def get_job(
    job_id: uuid.UUID, principal: Manager, session: AsyncSession = unit_of_work()
) -> JobDetail:
    job = await jobs.get_job(session, org_id=principal.org, job_id=job_id)
    history = await jobs.attempts_of(session, job.id)
    return JobDetail(
        **jobs.read(job).model_dump(), history=[AttemptRead.model_validate(a) for a in history]
    )


@router.post(
    "/jobs/{job_id}/retry",
    status_code=202,
    response_model=JobRead,
    summary="Send a failed job (or notification) again, with a fresh set of attempts",
    responses={**NOT_FOUND, 409: {"description": "JOB_NOT_RETRYABLE"}},
)
async def retry_job(
    job_id: uuid.UUID, request: Request, principal: Manager, session: AsyncSession = unit_of_work()
) -> JobRead:
    job = await jobs.retry(
        session, settings=_settings(request), org_id=principal.org, job_id=job_id
    )
    return jobs.read(job)
