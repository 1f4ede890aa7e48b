"""Rules of deliveries seen from the API: list, read with attempts, replay, test, recover.

Nothing here talks to Celery: a change makes rows due and sends the NOTIFY that wakes the
dispatcher at commit (beat re-drives them otherwise).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy import select, text, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.envelope import CloudEvent
from contracts.registry import dataschema_for
from contracts.webhooks import WEBHOOK_TEST, WebhookTestV1
from notify_svc.events.handlers import WAKE_SQL
from notify_svc.webhooks.models import (
    RecoverJob,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEvent,
)
from notify_svc.webhooks.service import get_endpoint
from servicekit.errors import Conflict, NotFound
from servicekit.pagination import as_datetime, as_uuid, cut_page, decode_cursor, encode_cursor

RECOVER_BATCH = 1000


async def list_deliveries(
    session: AsyncSession,
    *,
    org_id: uuid.UUID,
    endpoint_id: uuid.UUID,
    status: str | None,
    event_type: str | None,
    since: datetime | None,
    until: datetime | None,
    limit: int,
    cursor: str | None,
) -> tuple[list[WebhookDelivery], str | None]:
    """Newest first."""
    await get_endpoint(session, org_id=org_id, endpoint_id=endpoint_id)
    d = WebhookDelivery
    query = select(d).where(d.endpoint_id == endpoint_id, d.org_id == org_id)
    if status is not None:
        query = query.where(d.status == status)
    if event_type is not None:
        query = query.where(d.event_type == event_type)
    if since is not None:
        query = query.where(d.created_at >= since)
    if until is not None:
        query = query.where(d.created_at < until)
    after = decode_cursor(cursor, as_datetime, as_uuid)
    if after is not None:
        query = query.where(tuple_(d.created_at, d.id) < tuple_(after[0], after[1]))
    query = query.order_by(d.created_at.desc(), d.id.desc()).limit(limit + 1)
    rows = list((await session.execute(query)).scalars())
    page, last = cut_page(rows, limit)
    return page, (encode_cursor([last.created_at, last.id]) if last is not None else None)


async def get_delivery(
    session: AsyncSession, *, org_id: uuid.UUID, delivery_id: uuid.UUID, lock: bool = False
) -> WebhookDelivery:
    query = select(WebhookDelivery).where(
        WebhookDelivery.id == delivery_id, WebhookDelivery.org_id == org_id
    )
    if lock:
        query = query.with_for_update()
    delivery = (await session.execute(query)).scalar_one_or_none()
    if delivery is None:
        raise NotFound(f"no webhook delivery {delivery_id} in this org", code="DELIVERY_NOT_FOUND")
    return delivery


async def attempts_of(session: AsyncSession, delivery_id: uuid.UUID) -> list[WebhookAttempt]:
    query = (
        select(WebhookAttempt)
        .where(WebhookAttempt.delivery_id == delivery_id)
        .order_by(WebhookAttempt.id)
    )
    return list((await session.execute(query)).scalars())


async def replay(
    session: AsyncSession,
    *,
    org_id: uuid.UUID,
    delivery_id: uuid.UUID,
    include_succeeded: bool,
) -> WebhookDelivery:
    """Send a failed or dead delivery (or, on request, a succeeded one) again now, once."""
    delivery = await get_delivery(session, org_id=org_id, delivery_id=delivery_id, lock=True)
    if delivery.status == "delivering":
        raise Conflict(
            "this delivery is being attempted right now: wait for the attempt to end",
            code="DELIVERY_IN_PROGRESS",
            current_status=delivery.status,
        )
    if delivery.status == "succeeded" and not include_succeeded:
        raise Conflict(
            "this delivery succeeded already: pass include_succeeded=true to send it again",
            code="DELIVERY_SUCCEEDED",
            current_status=delivery.status,
        )
    now = datetime.now(UTC)
    delivery.status = "pending" if delivery.attempts == 0 else "failed"
    delivery.next_attempt_at = now
    delivery.enqueued_at = None
    delivery.claimed_until = None
    delivery.updated_at = now
    await session.flush()
    await session.execute(WAKE_SQL)
    return delivery


async def send_test(
    session: AsyncSession, *, org_id: uuid.UUID, endpoint_id: uuid.UUID
) -> WebhookDelivery:
    """A `webhook.test` event for this endpoint only, due now."""
    endpoint = await get_endpoint(session, org_id=org_id, endpoint_id=endpoint_id)
    if not endpoint.active:
        raise Conflict(
            "this endpoint is disabled: re-enable it (PATCH active=true) to send to it",
            code="ENDPOINT_DISABLED",
            current_status="disabled",
        )
    now = datetime.now(UTC)
    event = CloudEvent[WebhookTestV1](
        id=str(uuid.uuid4()),
        source="notify-svc",
        type=WEBHOOK_TEST,
        time=now,
        subject=str(endpoint.id),
        dataschema=dataschema_for(WEBHOOK_TEST, 1),
        data=WebhookTestV1(endpoint_id=endpoint.id, org_id=org_id, sent_at=now),
    )
    event_id = uuid.UUID(event.id)
    session.add(
        WebhookEvent(
            id=event_id,
            org_id=org_id,
            type=WEBHOOK_TEST,
            subject=event.subject,
            body=event.model_dump_json(exclude_none=True),
            occurred_at=now,
        )
    )
    await session.flush()
    delivery = WebhookDelivery(
        id=uuid.uuid4(),
        org_id=org_id,
        endpoint_id=endpoint.id,
        event_id=event_id,
        event_type=WEBHOOK_TEST,
        subject=event.subject,
        status="pending",
        attempts=0,
        next_attempt_at=now,
        event_time=now,
        created_at=now,
        updated_at=now,
    )
    session.add(delivery)
    await session.flush()
    await session.execute(WAKE_SQL)
    return delivery


async def start_recover(
    session: AsyncSession,
    *,
    org_id: uuid.UUID,
    endpoint_id: uuid.UUID,
    since: datetime,
    until: datetime | None,
) -> RecoverJob:
    endpoint: WebhookEndpoint = await get_endpoint(session, org_id=org_id, endpoint_id=endpoint_id)
    job = RecoverJob(
        id=uuid.uuid4(),
        org_id=org_id,
        endpoint_id=endpoint.id,
        since=since,
        until=until or datetime.now(UTC),
        status="running",
        requeued=0,
        created_at=datetime.now(UTC),
    )
    session.add(job)
    await session.flush()
    await session.execute(WAKE_SQL)
    return job


async def get_job(session: AsyncSession, *, org_id: uuid.UUID, job_id: uuid.UUID) -> RecoverJob:
    job = (
        await session.execute(
            select(RecoverJob).where(RecoverJob.id == job_id, RecoverJob.org_id == org_id)
        )
    ).scalar_one_or_none()
    if job is None:
        raise NotFound(f"no recover job {job_id} in this org", code="RECOVER_JOB_NOT_FOUND")
    return job


RECOVER_SQL = text(
    """
    UPDATE webhook_delivery SET status = 'failed', next_attempt_at = now(), enqueued_at = NULL,
        updated_at = now()
    WHERE id IN (
        SELECT id FROM webhook_delivery
        WHERE endpoint_id = :endpoint_id AND status IN ('failed', 'dead')
          AND created_at >= :since AND created_at < :until AND updated_at < :started
        LIMIT :batch FOR UPDATE SKIP LOCKED)
    """
)


async def advance_recover_job(session: AsyncSession, job: RecoverJob) -> int:
    """One batch of a running job: its failed and dead deliveries made due again. A delivery
    already touched since the job started is skipped, so the job ends."""
    result = await session.execute(
        RECOVER_SQL,
        {
            "endpoint_id": job.endpoint_id,
            "since": job.since,
            "until": job.until,
            "started": job.created_at,
            "batch": RECOVER_BATCH,
        },
    )
    count = int(getattr(result, "rowcount", 0) or 0)
    values: dict[str, object] = {"requeued": RecoverJob.requeued + count}
    if count < RECOVER_BATCH:
        values.update(status="done", finished_at=datetime.now(UTC))
    await session.execute(update(RecoverJob).where(RecoverJob.id == job.id).values(**values))
    return count
