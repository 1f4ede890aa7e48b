"""notify-svc's Celery app: webhook attempts, notification attempts (e-mail, one-off webhooks),
and beat's re-drive, deadline reminder scan, pruning and gauges.

    celery -A notify_svc.celery_app worker --pool threads --concurrency 16
    celery -A notify_svc.celery_app beat

Celery carries delivery and notification ids only; the rows in PostgreSQL are the truth, so a
lost or repeated message delays an attempt and never loses or doubles one. Messages are
acknowledged after the task ran (`acks_late`), given back when the worker is lost, one at a time
per slot, and the broker's visibility timeout is longer than any attempt (a redelivered message
would only find the row claimed).
"""

from __future__ import annotations

import logging
import uuid

from celery import Celery
from celery.signals import worker_ready

from notify_svc.delivery import batch, dispatch, loop
from notify_svc.delivery.attempt import deliver as deliver_once
from notify_svc.notifications import metrics as notification_metrics
from notify_svc.notifications import reminders, sending
from notify_svc.settings import Settings
from notify_svc.webhooks import metrics

log = logging.getLogger("notify_svc.celery")

QUEUE = "notify-webhooks"
DELIVER = "notify_svc.deliver"
DELIVER_BATCH = "notify_svc.deliver_batch"
SEND_NOTIFICATION = "notify_svc.send_notification"
REMIND = "notify_svc.remind"
# How long a task keeps attempting its endpoint's next due deliveries after its own.
FOLLOW_SECONDS = 2.0


def make_celery(settings: Settings) -> Celery:
    celery = Celery("notify_svc", broker=settings.broker_url)
    longest_attempt = settings.claim_seconds
    celery.conf.update(
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        broker_transport_options={"visibility_timeout": max(60, int(longest_attempt * 2))},
        broker_connection_retry_on_startup=True,
        task_ignore_result=True,
        task_default_queue=QUEUE,
        task_serializer="json",
        accept_content=["json"],
        timezone="UTC",
        worker_hijack_root_logger=False,
        worker_concurrency=settings.celery_concurrency,
        worker_pool="threads",
        beat_schedule={
            "redrive": {
                "task": "notify_svc.redrive",
                "schedule": settings.webhook_redrive_interval_seconds,
            },
            "remind": {"task": REMIND, "schedule": settings.reminder_interval_seconds},
            "prune": {"task": "notify_svc.prune", "schedule": 3600.0},
            "gauges": {"task": "notify_svc.gauges", "schedule": 15.0},
        },
    )
    return celery


settings = Settings()
app = make_celery(settings)


def enqueue_batches(batches: list[dispatch.Batch]) -> None:
    """Send one message per endpoint batch of delivery ids (call it after the commit)."""
    for endpoint_id, ids in batches:
        app.send_task(DELIVER_BATCH, args=[str(endpoint_id), [str(i) for i in ids]], queue=QUEUE)


def enqueue_notifications(ids: list[uuid.UUID]) -> None:
    """Send one attempt message per notification id (call it after the commit)."""
    for notification_id in ids:
        app.send_task(SEND_NOTIFICATION, args=[str(notification_id)], queue=QUEUE)


@app.task(name=SEND_NOTIFICATION)
def send_notification(notification_id: str) -> str:
    outcome = loop.run(lambda ctx: sending.send(ctx, uuid.UUID(notification_id)))
    metrics.CELERY_TASKS.labels("send_notification", outcome).inc()
    return outcome


@app.task(name=REMIND)
def remind() -> int:
    """Write the due reminders and overdue notices, then enqueue what is due."""
    try:
        written = loop.run(reminders.scan)
    except Exception:
        notification_metrics.REMINDER_SCANS.labels("error").inc()
        log.warning("the deadline reminder scan failed; the next one retries", exc_info=True)
        return 0
    notification_metrics.REMINDER_SCANS.labels("ok").inc()
    enqueue_notifications(loop.run(sending.due_ids))
    return written


@app.task(name=DELIVER)
def deliver(delivery_id: str) -> str:
    """One delivery id: the message of earlier versions, still served while such messages may
    sit in the queue (the dispatcher now sends `deliver_batch`)."""
    outcome = loop.run(
        lambda ctx: deliver_once(ctx, uuid.UUID(delivery_id), follow_seconds=FOLLOW_SECONDS)
    )
    metrics.CELERY_TASKS.labels("deliver", outcome).inc()
    return outcome


@app.task(name=DELIVER_BATCH)
def deliver_batch(endpoint_id: str, delivery_ids: list[str]) -> dict[str, int]:
    """Claim, send and record one endpoint's batch, then follow on with its next due ones."""
    outcomes = loop.run(
        lambda ctx: batch.deliver_batch(
            ctx,
            uuid.UUID(endpoint_id),
            [uuid.UUID(i) for i in delivery_ids],
            follow_seconds=FOLLOW_SECONDS,
        )
    )
    metrics.CELERY_TASKS.labels("deliver_batch", "ok").inc()
    return outcomes


@app.task(name="notify_svc.redrive")
def redrive() -> int:
    """Enqueue due deliveries and expired claims (the safety net under lost messages)."""
    loop.run(dispatch.advance_recover_jobs)
    batches, count = loop.run(dispatch.due_batches)
    enqueue_batches(batches)
    notifications = loop.run(sending.due_ids)
    enqueue_notifications(notifications)
    metrics.CELERY_TASKS.labels("redrive", "ok").inc()
    return count + len(notifications)


@app.task(name="notify_svc.prune")
def prune() -> int:
    removed = loop.run(dispatch.prune)
    metrics.CELERY_TASKS.labels("prune", "ok").inc()
    return removed


@app.task(name="notify_svc.gauges")
def gauges() -> None:
    loop.run(dispatch.update_backlog)
    loop.run(dispatch.update_notification_backlog)


@worker_ready.connect
def _serve_metrics(**_: object) -> None:
    """The worker's /metrics, when a port is configured."""
    if settings.celery_metrics_port:
        from prometheus_client import start_http_server

        start_http_server(settings.celery_metrics_port)
