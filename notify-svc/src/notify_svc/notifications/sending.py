"""One attempt of one notification: claim the row, resolve and render with no transaction open,
send (SMTP or a signed webhook POST), record the attempt.

The claim is a conditional UPDATE: the row must be queued and due, or its earlier claim expired
(a worker died mid-attempt), with attempts left. Two workers with the same id: one claims, the
other finds nothing. Recording is conditional on the claim (status and attempt number), so a
worker whose claim expired cannot overwrite a newer attempt.

Right before a mail's content goes to the SMTP server (the envelope was accepted) the row is
marked `handed_over_at` (committed). A worker that dies after that point may have delivered the
mail or not: sending it again could deliver it twice, so its notification becomes `failed` ("may
or may not have been sent", visible and retryable by hand) instead of being retried. A worker
that dies before that point delivered nothing: its claim expires and the notification is
attempted again. So a mail is received at most once unless someone retries an uncertain one,
and never silently lost. (One-off webhooks are retried either way: receivers deduplicate by
`webhook-id`.)
"""

from __future__ import annotations

import json
import logging
import random
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import text

from notify_svc.delivery import http
from notify_svc.notifications import metrics, render, rules, smtp
from notify_svc.notifications.tasks_client import TaskNotFound, TaskServiceUnavailable
from notify_svc.webhooks import ssrf
from notify_svc.webhooks.signing import signature_header
from servicekit.db import transaction

if TYPE_CHECKING:
    from notify_svc.delivery.context import DeliveryContext

log = logging.getLogger("notify_svc.notifications")

CLAIM_SQL = text(
    """
    UPDATE notification SET status = 'sending', attempts = attempts + 1, enqueued_at = NULL,
        claimed_until = now() + make_interval(secs => :claim_seconds), handed_over_at = NULL,
        updated_at = now()
    WHERE id = :id AND attempts < max_attempts
      AND ((status = 'queued' AND next_attempt_at <= now())
           OR (status = 'sending' AND claimed_until < now() AND handed_over_at IS NULL))
    RETURNING id, org_id, channel, rule, event_id, recipient_kind, recipient_user_id,
        to_address, url, context, attempts, max_attempts
    """
)
ATTEMPT_SQL = text(
    """
    INSERT INTO notification_attempt (notification_id, number, attempted_at, duration_ms,
        outcome, error)
    VALUES (:id, :number, :attempted_at, :duration_ms, :outcome, :error)
    """
)
RECORD_SQL = text(
    """
    UPDATE notification SET status = :status, next_attempt_at = :next_at, claimed_until = NULL,
        handed_over_at = NULL, last_error = :error, sent_to = coalesce(:sent_to, sent_to),
        sent_at = CASE WHEN :status = 'sent' THEN now() ELSE sent_at END, updated_at = now()
    WHERE id = :id AND status = 'sending' AND attempts = :number
    """
)
CONTACT_SQL = text(
    "SELECT email, name, locale, quiet FROM notification_contact "
    "WHERE org_id = :org_id AND user_id = :user_id"
)
ORG_SETTINGS_SQL = text(
    "SELECT approvers_email, webhook_secret_encrypted FROM notification_settings "
    "WHERE org_id = :org_id"
)
# Expired claims that are not attempted again: the mail was handed to the SMTP server when the
# worker died (it may have arrived), or the worker died in the last attempt.
HANDED_OVER = "channel = 'email' AND handed_over_at IS NOT NULL"
LOST_SQL = text(
    f"""
    WITH lost AS (
        UPDATE notification SET status = 'failed', claimed_until = NULL, updated_at = now(),
            last_error = CASE WHEN {HANDED_OVER}
                THEN 'the worker was lost while handing the mail to the SMTP server (attempt '
                    || attempts || '): it may or may not have been sent; retry it to send '
                    || 'it again'
                ELSE 'the worker was lost during attempt ' || attempts
                    || ', the last one; retry it to send it again' END,
            handed_over_at = NULL
        WHERE id IN (SELECT id FROM notification WHERE status = 'sending'
                     AND claimed_until < now()
                     AND (attempts >= max_attempts OR {HANDED_OVER})
                     LIMIT 500 FOR UPDATE SKIP LOCKED)
        RETURNING id, attempts, channel
    ), recorded AS (
        INSERT INTO notification_attempt (notification_id, number, attempted_at, duration_ms,
            outcome, error)
        SELECT id, attempts, now(), 0, 'error', 'the worker was lost during this attempt'
        FROM lost
    )
    SELECT channel FROM lost
    """  # noqa: S608 - HANDED_OVER is a constant
)
DUE_SQL = text(
    """
    WITH picked AS (
        SELECT id FROM (
            (SELECT id, next_attempt_at AS at FROM notification
             WHERE status = 'queued' AND next_attempt_at <= now()
               AND (enqueued_at IS NULL
                    OR enqueued_at < now() - make_interval(secs => :requeue_after))
             ORDER BY next_attempt_at LIMIT :batch)
            UNION ALL
            (SELECT id, claimed_until AS at FROM notification
             WHERE status = 'sending' AND claimed_until < now() AND attempts < max_attempts
               AND handed_over_at IS NULL
               AND (enqueued_at IS NULL
                    OR enqueued_at < now() - make_interval(secs => :requeue_after))
             LIMIT :batch)
        ) due ORDER BY at LIMIT :batch
    ), locked AS (
        SELECT n.id FROM notification n WHERE n.id IN (SELECT id FROM picked)
        FOR UPDATE SKIP LOCKED
    )
    UPDATE notification x SET enqueued_at = now() FROM locked WHERE x.id = locked.id
    RETURNING x.id
    """
)
HAND_OVER_SQL = text(
    "UPDATE notification SET handed_over_at = now() "
    "WHERE id = :id AND status = 'sending' AND attempts = :number"
)
UNMARK_SQL = text(
    "UPDATE notification SET enqueued_at = NULL "
    "WHERE id = :id AND status = 'queued' AND enqueued_at IS NOT NULL"
)


@dataclass(frozen=True)
class Claim:
    id: uuid.UUID
    org_id: uuid.UUID
    channel: str
    rule: str
    recipient_kind: str
    recipient_user_id: uuid.UUID | None
    to_address: str | None
    url: str | None
    context: dict[str, Any]
    attempt: int
    max_attempts: int


@dataclass(frozen=True)
class Outcome:
    status: str  # sent | error | skipped
    duration_ms: int = 0
    error: str | None = None
    sent_to: str | None = None


async def due_ids(ctx: DeliveryContext, *, batch: int = 500) -> list[uuid.UUID]:
    """Ids of due notifications and expired claims, marked as enqueued (committed on return);
    expired claims with no attempt left are failed first."""
    async with transaction(ctx.db) as session:
        lost = [row[0] for row in await session.execute(LOST_SQL)]
        for channel in lost:
            metrics.NOTIFICATIONS.labels(channel, "failed").inc()
        if lost:
            log.warning("%d notifications failed: their worker was lost", len(lost))
        params = {"batch": batch, "requeue_after": ctx.settings.webhook_requeue_after_seconds}
        return [row[0] for row in await session.execute(DUE_SQL, params)]


async def claim(ctx: DeliveryContext, notification_id: uuid.UUID) -> Claim | None:
    params = {"id": notification_id, "claim_seconds": ctx.settings.notification_claim_seconds}
    async with transaction(ctx.db) as session:
        row = (await session.execute(CLAIM_SQL, params)).mappings().first()
    if row is None:
        return None
    return Claim(
        id=row["id"],
        org_id=row["org_id"],
        channel=row["channel"],
        rule=row["rule"],
        recipient_kind=row["recipient_kind"],
        recipient_user_id=row["recipient_user_id"],
        to_address=row["to_address"],
        url=row["url"],
        context=dict(row["context"]),
        attempt=row["attempts"],
        max_attempts=row["max_attempts"],
    )


async def send(ctx: DeliveryContext, notification_id: uuid.UUID) -> str:
    """Attempt the notification once if it can be claimed; returns what happened:
    sent, retry, failed, skipped or not_claimed."""
    claimed = await claim(ctx, notification_id)
    if claimed is None:
        async with transaction(ctx.db) as session:
            await session.execute(UNMARK_SQL, {"id": notification_id})
        return "not_claimed"
    attempted_at = datetime.now(UTC)
    started = time.perf_counter()
    try:
        if claimed.channel == "webhook":
            outcome = await _post_webhook(ctx, claimed)
        else:
            outcome = await _send_email(ctx, claimed)
    except Exception as exc:  # a bug must not leave the row claimed until it expires
        log.exception("notification %s: attempt failed unexpectedly", claimed.id)
        outcome = Outcome("error", error=f"{type(exc).__name__}: {exc}"[:500])
    if not outcome.duration_ms:
        outcome = Outcome(
            outcome.status,
            int((time.perf_counter() - started) * 1000),
            outcome.error,
            outcome.sent_to,
        )
    return await record(ctx, claimed, outcome, attempted_at)


def next_delay(schedule: list[float], attempt: int, rng: random.Random | None = None) -> float:
    """Seconds before the attempt after `attempt` (1-based), +-20 % jitter."""
    if not schedule:
        return 0.0
    base = schedule[min(attempt, len(schedule)) - 1]
    return base * (rng or random).uniform(0.8, 1.2)


async def record(
    ctx: DeliveryContext, claimed: Claim, outcome: Outcome, attempted_at: datetime
) -> str:
    next_at: datetime | None = None
    if outcome.status == "sent":
        status = result = "sent"
    elif outcome.status == "skipped":
        status = result = "skipped"
    elif claimed.attempt < claimed.max_attempts:
        status, result = "queued", "retry"
        delay = next_delay(ctx.settings.notification_retry_schedule_seconds, claimed.attempt)
        next_at = datetime.now(UTC) + timedelta(seconds=delay)
    else:
        status = result = "failed"
    async with transaction(ctx.db) as session:
        await session.execute(
            ATTEMPT_SQL,
            {
                "id": claimed.id,
                "number": claimed.attempt,
                "attempted_at": attempted_at,
                "duration_ms": outcome.duration_ms,
                "outcome": outcome.status,
                "error": outcome.error,
            },
        )
        await session.execute(
            RECORD_SQL,
            {
                "id": claimed.id,
                "number": claimed.attempt,
                "status": status,
                "next_at": next_at,
                "error": outcome.error,
                "sent_to": outcome.sent_to,
            },
        )
    metrics.NOTIFICATIONS.labels(claimed.channel, result).inc()
    if result == "sent" and claimed.rule in (rules.DEADLINE_REMINDER, rules.DEADLINE_OVERDUE):
        due = claimed.context.get("due_at_iso")
        if due:
            lead = (datetime.fromisoformat(due) - datetime.now(UTC)).total_seconds()
            metrics.REMINDER_LAG.observe(lead)
    return result


# --- e-mail ----------------------------------------------------------------------------------


async def _org_settings(ctx: DeliveryContext, org_id: uuid.UUID) -> tuple[str | None, str | None]:
    async with transaction(ctx.db) as session:
        row = (await session.execute(ORG_SETTINGS_SQL, {"org_id": org_id})).first()
    return (row[0], row[1]) if row is not None else (None, None)


async def _contact(ctx: DeliveryContext, org_id: uuid.UUID, user_id: uuid.UUID) -> Any:
    async with transaction(ctx.db) as session:
        return (await session.execute(CONTACT_SQL, {"org_id": org_id, "user_id": user_id})).first()


def _user_id(value: Any) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value)) if value else None
    except ValueError:
        return None


async def _send_email(ctx: DeliveryContext, claimed: Claim) -> Outcome:
    values = dict(claimed.context)
    if "task" not in values and values.get("task_id"):
        try:
            values["task"] = await ctx.tasks.task(org_id=claimed.org_id, task_id=values["task_id"])
        except TaskNotFound:
            return Outcome("skipped", error=f"task {values['task_id']} no longer exists")
        except TaskServiceUnavailable as exc:
            return Outcome("error", error=str(exc)[:500])
    task = values.get("task") or {}
    kind = claimed.recipient_kind
    to: str | None = claimed.to_address
    if kind == "approvers":
        to, _ = await _org_settings(ctx, claimed.org_id)
        if not to:
            return Outcome("skipped", error="the org has no approvers_email in its settings")
    elif kind in rules.TASK_ROLES or kind == "user":
        user = claimed.recipient_user_id
        if user is None and kind == "assignee":
            user = _user_id(task.get("assigned_to"))
        if user is None and kind == "planner":
            user = _user_id(task.get("planner"))
        if user is None:
            return Outcome("skipped", error=f"the task has no {kind}")
        contact = await _contact(ctx, claimed.org_id, user)
        if contact is None:
            return Outcome("skipped", error=f"user {user} has no contact (PUT contacts/{user})")
        if contact.quiet:
            return Outcome("skipped", error=f"user {user} asked for no e-mail (quiet)")
        to = contact.email
        values.update(recipient_name=contact.name, locale=contact.locale)
    if not to:
        return Outcome("skipped", error="no address to send to")
    mail = render.render(claimed.rule, values, base_url=ctx.settings.public_base_url)
    msg = smtp.message(
        settings=ctx.settings,
        to=to,
        subject=mail.subject,
        text=mail.text,
        html=mail.html,
        message_id=str(claimed.id),
    )

    async def hand_over() -> None:
        async with transaction(ctx.db) as session:
            await session.execute(HAND_OVER_SQL, {"id": claimed.id, "number": claimed.attempt})

    result = await smtp.send(ctx.settings, msg, before_data=hand_over)
    metrics.SMTP_LATENCY.observe(result.duration_ms / 1000)
    if not result.ok:
        return Outcome("error", result.duration_ms, result.error)
    return Outcome("sent", result.duration_ms, sent_to=to)


# --- one-off webhook -------------------------------------------------------------------------


async def _post_webhook(ctx: DeliveryContext, claimed: Claim) -> Outcome:
    _, secret_encrypted = await _org_settings(ctx, claimed.org_id)
    if not secret_encrypted:
        return Outcome("error", error="the org has no webhook secret: create one first")
    try:
        target = await ssrf.check_url(
            claimed.url or "",
            allowed=ctx.allowed,
            require_https=ctx.settings.webhook_require_https,
        )
    except ssrf.UrlRefused as refused:
        return Outcome("error", error=f"refused ({refused.rule}): {refused.detail}")
    body = json.dumps(claimed.context.get("payload"), separators=(",", ":")).encode()
    timestamp = int(time.time())
    msg_id = str(claimed.id)
    secret = ctx.box.decrypt(secret_encrypted)
    headers = {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature_header([secret], msg_id, timestamp, body),
    }
    result = await http.post(
        ctx.http,
        target,
        body=body,
        headers=headers,
        timeout_seconds=ctx.settings.webhook_timeout_seconds,
    )
    ok = result.error is None and result.status_code is not None and 200 <= result.status_code < 300
    if ok:
        return Outcome("sent", result.duration_ms, sent_to=claimed.url)
    error = result.error or f"HTTP {result.status_code}: {(result.excerpt or '')[:200]}"
    return Outcome("error", result.duration_ms, error)
