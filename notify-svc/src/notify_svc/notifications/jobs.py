"""Ad-hoc jobs (an e-mail or a one-off signed webhook) and the notifications list: create,
read with attempts, list by status, retry a failed one.

Nothing here talks to Celery: a new or retried job is a due row and a NOTIFY that wakes the
dispatcher at commit (beat re-drives it otherwise).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from notify_svc.events.handlers import WAKE_SQL
from notify_svc.notifications import metrics
from notify_svc.notifications.models import (
    Contact,
    Notification,
    NotificationAttempt,
    OrgSettings,
)
from notify_svc.notifications.schemas import EmailJobCreate, JobRead, WebhookJobCreate
from notify_svc.settings import Settings
from notify_svc.webhooks.service import check_url
from servicekit.errors import Conflict, NotFound, Unprocessable
from servicekit.pagination import as_datetime, as_uuid, cut_page, decode_cursor, encode_cursor


def _job(
    *, settings: Settings, org_id: uuid.UUID, channel: str, context: dict[str, Any], **extra: Any
) -> Notification:
    now = datetime.now(UTC)
    return Notification(
        id=uuid.uuid4(),
        org_id=org_id,
        channel=channel,
        rule="adhoc",
        context=context,
        status="queued",
        attempts=0,
        max_attempts=settings.notification_max_attempts,
        next_attempt_at=now,
        created_at=now,
        updated_at=now,
        **extra,
    )


async def create_email(
    session: AsyncSession, *, settings: Settings, org_id: uuid.UUID, body: EmailJobCreate
) -> Notification:
    if body.to_user is not None:
        contact = await session.get(Contact, (org_id, body.to_user))
        if contact is None:
            raise Unprocessable(
                f"user {body.to_user} is unknown here (no contact in this org): PUT "
                f"/api/v1/notifications/contacts/{body.to_user} or send `to` an address",
                code="USER_UNKNOWN",
                errors=[{"in": "body", "field": "to_user", "message": "no contact for this user"}],
            )
    job = _job(
        settings=settings,
        org_id=org_id,
        channel="email",
        context={"subject": body.subject, "body": body.body},
        recipient_kind="user" if body.to_user else "address",
        recipient_user_id=body.to_user,
        to_address=body.to,
    )
    return await _queue(session, job)


async def create_webhook(
    session: AsyncSession, *, settings: Settings, org_id: uuid.UUID, body: WebhookJobCreate
) -> Notification:
    org = await session.get(OrgSettings, org_id)
    if org is None or org.webhook_secret_encrypted is None:
        raise Conflict(
            "this org has no webhook signing secret yet: POST "
            "/api/v1/notifications/settings/webhook-secret to make one (shown once)",
            code="WEBHOOK_SECRET_MISSING",
        )
    await check_url(body.url, settings=settings)
    job = _job(
        settings=settings,
        org_id=org_id,
        channel="webhook",
        context={"payload": body.payload},
        recipient_kind="url",
        url=body.url,
    )
    return await _queue(session, job)


async def _queue(session: AsyncSession, job: Notification) -> Notification:
    session.add(job)
    await session.flush()
    await session.execute(WAKE_SQL)
    metrics.CREATED.labels("job").inc()
    return job


async def get_job(
    session: AsyncSession, *, org_id: uuid.UUID, job_id: uuid.UUID, lock: bool = False
) -> Notification:
    query = select(Notification).where(Notification.id == job_id, Notification.org_id == org_id)
    if lock:
        query = query.with_for_update()
    job = (await session.execute(query)).scalar_one_or_none()
    if job is None:
        raise NotFound(f"no notification job {job_id} in this org", code="JOB_NOT_FOUND")
    return job


async def attempts_of(session: AsyncSession, job_id: uuid.UUID) -> list[NotificationAttempt]:
    query = (
        select(NotificationAttempt)
        .where(NotificationAttempt.notification_id == job_id)
        .order_by(NotificationAttempt.id)
    )
    return list((await session.execute(query)).scalars())


async def list_jobs(
    session: AsyncSession,
    *,
    org_id: uuid.UUID,
    status: str | None,
    limit: int,
    cursor: str | None,
) -> tuple[list[Notification], str | None]:
    """Newest first."""
    n = Notification
    query = select(n).where(n.org_id == org_id)
    if status is not None:
        query = query.where(n.status == status)
    after = decode_cursor(cursor, as_datetime, as_uuid)
    if after is not None:
        query = query.where(tuple_(n.created_at, n.id) < tuple_(after[0], after[1]))
    query = query.order_by(n.created_at.desc(), n.id.desc()).limit(limit + 1)
    rows = list((await session.execute(query)).scalars())
    page, last = cut_page(rows, limit)
    return page, (encode_cursor([last.created_at, last.id]) if last is not None else None)


async def retry(
    session: AsyncSession, *, settings: Settings, org_id: uuid.UUID, job_id: uuid.UUID
) -> Notification:
    """A failed (or skipped) notification is queued again now, with a fresh set of attempts."""
    job = await get_job(session, org_id=org_id, job_id=job_id, lock=True)
    if job.status not in ("failed", "skipped"):
        raise Conflict(
            f"this notification is {job.status}: only failed or skipped ones can be retried",
            code="JOB_NOT_RETRYABLE",
            current_status=job.status,
        )
    now = datetime.now(UTC)
    job.status = "queued"
    job.max_attempts = job.attempts + settings.notification_max_attempts
    job.next_attempt_at = now
    job.enqueued_at = None
    job.claimed_until = None
    job.handed_over_at = None
    job.updated_at = now
    await session.flush()
    await session.execute(WAKE_SQL)
    return job


def read(job: Notification) -> JobRead:
    return JobRead.model_validate(
        {
            "id": job.id,
            "channel": job.channel,
            "rule": job.rule,
            "status": job.status,
            "attempts": job.attempts,
            "max_attempts": job.max_attempts,
            "last_error": job.last_error,
            "to": job.to_address,
            "url": job.url,
            "sent_to": job.sent_to,
            "next_attempt_at": job.next_attempt_at if job.status == "queued" else None,
            "created_at": job.created_at,
            "updated_at": job.updated_at,
            "sent_at": job.sent_at,
        }
    )
