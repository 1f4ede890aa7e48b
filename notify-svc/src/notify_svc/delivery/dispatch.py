"""Finding work in the database: due deliveries, expired claims, pruning, backlog gauges.

`due_rows` marks the rows it hands out (`enqueued_at`) in the same statement, so the events
process and beat do not both enqueue a row; a row enqueued but never claimed (its message
lost with a killed worker or a restarted Redis) is handed out again after
`webhook_requeue_after_seconds`. Enqueueing happens after the commit.
"""

from __future__ import annotations

import uuid

from sqlalchemy import text

from notify_svc.delivery.attempt import ORDER_FREE, cap_params, in_flight_cap
from notify_svc.delivery.context import DeliveryContext
from notify_svc.notifications import metrics as notification_metrics
from notify_svc.webhooks import metrics
from servicekit.db import transaction

# Due rows, at most the endpoint's in-flight cap (`in_flight_cap`: one probe while it is failing)
# counting those already being attempted or sitting in Celery's queue: a slow endpoint's backlog
# stays here, not in the queue. Per active endpoint, two index probes: its busy rows
# (ix_webhook_delivery_endpoint_busy) and its first due rows in order, as many as it has free
# slots (ix_webhook_delivery_endpoint_open, read in (next_attempt_at, seq) order and stopped at
# the LIMIT), so a round reads about endpoints x in-flight cap rows however long the backlogs
# are. An expired claim is found by the same scan: a row was due when it was claimed, so its
# next_attempt_at is in the past.
DUE_SQL = text(
    f"""
    WITH picked AS (
        SELECT due.id FROM webhook_endpoint e
        CROSS JOIN LATERAL (
            SELECT count(*) AS n FROM webhook_delivery b
            WHERE b.endpoint_id = e.id
              AND ((b.status = 'delivering' AND b.claimed_until > now())
                   OR (b.status IN ('pending', 'failed')
                       AND b.enqueued_at > now() - make_interval(secs => :requeue_after)))
        ) busy
        CROSS JOIN LATERAL (
            SELECT d.id FROM webhook_delivery d
            WHERE d.endpoint_id = e.id AND d.status IN ('pending', 'failed', 'delivering')
              AND d.next_attempt_at <= now()
              AND (d.status <> 'delivering' OR d.claimed_until < now())
              AND (d.enqueued_at IS NULL
                   OR d.enqueued_at < now() - make_interval(secs => :requeue_after))
              AND {ORDER_FREE}
            ORDER BY d.next_attempt_at, d.seq
            LIMIT greatest(0, {in_flight_cap("e")} - busy.n)
            FOR UPDATE OF d SKIP LOCKED
        ) due
        WHERE e.active AND busy.n < {in_flight_cap("e")}
        LIMIT :batch
    )
    UPDATE webhook_delivery x SET enqueued_at = now() FROM picked WHERE x.id = picked.id
    RETURNING x.id, x.endpoint_id
    """  # noqa: S608 - constant SQL
)
PRUNE_ATTEMPTS_SQL = text(
    """
    DELETE FROM webhook_attempt WHERE id IN (
        SELECT id FROM webhook_attempt
        WHERE attempted_at < now() - make_interval(secs => :retention) LIMIT :batch)
    """
)
PRUNE_DELIVERIES_SQL = text(
    """
    DELETE FROM webhook_delivery WHERE id IN (
        SELECT id FROM webhook_delivery WHERE status = 'succeeded'
        AND created_at < now() - make_interval(secs => :retention) LIMIT :batch)
    """
)
PRUNE_EVENTS_SQL = text(
    """
    DELETE FROM webhook_event v WHERE v.id IN (
        SELECT id FROM webhook_event w
        WHERE w.created_at < now() - make_interval(secs => :retention)
          AND NOT EXISTS (SELECT 1 FROM webhook_delivery d WHERE d.event_id = w.id)
        LIMIT :batch)
    """
)
# Sent and skipped notifications (their attempts go with them): once older than the retention no
# event, scan or job can ask for them again, so their dedup keys are no longer needed.
PRUNE_NOTIFICATIONS_SQL = text(
    """
    DELETE FROM notification WHERE id IN (
        SELECT id FROM notification WHERE status IN ('sent', 'skipped')
        AND updated_at < now() - make_interval(secs => :retention) LIMIT :batch)
    """
)
BACKLOG_SQL = text(
    """
    SELECT count(*) FILTER (WHERE status IN ('pending', 'failed', 'delivering')),
           count(*) FILTER (WHERE status = 'dead')
    FROM webhook_delivery WHERE status <> 'succeeded'
    """
)

# Both statuses have a partial index (ix_notification_due, the claimed one): settled rows are
# never read.
NOTIFICATION_BACKLOG_SQL = text(
    """
    SELECT count(*) FILTER (WHERE status = 'queued'),
           count(*) FILTER (WHERE status = 'sending'),
           coalesce(extract(epoch FROM now() - min(created_at)), 0)
    FROM notification WHERE status IN ('queued', 'sending')
    """
)


async def due_rows(ctx: DeliveryContext, *, batch: int = 500) -> list[tuple[uuid.UUID, uuid.UUID]]:
    """(delivery id, endpoint id) of due deliveries and expired claims, marked as enqueued
    (committed on return)."""
    params = {
        "batch": batch,
        "requeue_after": ctx.settings.webhook_requeue_after_seconds,
        **cap_params(ctx.settings),
    }
    async with transaction(ctx.db) as session:
        return [(row[0], row[1]) for row in await session.execute(DUE_SQL, params)]


Batch = tuple[uuid.UUID, list[uuid.UUID]]


def batches(rows: list[tuple[uuid.UUID, uuid.UUID]], size: int) -> list[Batch]:
    """Due rows as Celery messages: one endpoint's ids, at most `size` per message."""
    by_endpoint: dict[uuid.UUID, list[uuid.UUID]] = {}
    for delivery_id, endpoint_id in rows:
        by_endpoint.setdefault(endpoint_id, []).append(delivery_id)
    return [
        (endpoint_id, ids[start : start + size])
        for endpoint_id, ids in by_endpoint.items()
        for start in range(0, len(ids), size)
    ]


async def due_batches(ctx: DeliveryContext, *, batch: int = 500) -> tuple[list[Batch], int]:
    """Due deliveries grouped into per-endpoint messages, and how many rows were handed out."""
    rows = await due_rows(ctx, batch=batch)
    return batches(rows, ctx.settings.webhook_batch_size), len(rows)


async def prune(ctx: DeliveryContext, *, batch: int = 1000, max_batches: int = 50) -> int:
    """Delete attempts, succeeded deliveries, unreferenced events and settled notifications older
    than the retention, in bounded batches (each its own short transaction); returns how many
    rows went."""
    retention = ctx.settings.webhook_retention_days * 86400
    removed = 0
    statements = (
        PRUNE_ATTEMPTS_SQL,
        PRUNE_DELIVERIES_SQL,
        PRUNE_EVENTS_SQL,
        PRUNE_NOTIFICATIONS_SQL,
    )
    for statement in statements:
        for _ in range(max_batches):
            async with transaction(ctx.db) as session:
                result = await session.execute(statement, {"retention": retention, "batch": batch})
            count = int(getattr(result, "rowcount", 0) or 0)
            removed += count
            if count < batch:
                break
    return removed


async def update_backlog(ctx: DeliveryContext) -> tuple[int, int]:
    async with transaction(ctx.db) as session:
        pending, dead = (await session.execute(BACKLOG_SQL)).one()
    metrics.BACKLOG.labels("pending").set(pending)
    metrics.BACKLOG.labels("dead").set(dead)
    return int(pending), int(dead)


async def update_notification_backlog(ctx: DeliveryContext) -> tuple[int, int, float]:
    """Set the notification gauges from the table: (queued, sending, oldest waiting age)."""
    async with transaction(ctx.db) as session:
        queued, sending, oldest = (await session.execute(NOTIFICATION_BACKLOG_SQL)).one()
    notification_metrics.WAITING.labels("queued").set(queued)
    notification_metrics.WAITING.labels("sending").set(sending)
    notification_metrics.OLDEST_WAITING.set(float(oldest))
    return int(queued), int(sending), float(oldest)


async def advance_recover_jobs(ctx: DeliveryContext, *, jobs: int = 10) -> int:
    """One batch of each running recover job (each job in its own transaction)."""
    from sqlalchemy import select

    from notify_svc.webhooks.deliveries import advance_recover_job
    from notify_svc.webhooks.models import RecoverJob

    requeued = 0
    for _ in range(jobs):
        async with transaction(ctx.db) as session:
            job = (
                await session.execute(
                    select(RecoverJob)
                    .where(RecoverJob.status == "running")
                    .order_by(RecoverJob.created_at)
                    .limit(1)
                    .with_for_update(skip_locked=True)
                )
            ).scalar_one_or_none()
            if job is None:
                break
            requeued += await advance_recover_job(session, job)
    return requeued
