"""Recording an attempt: the attempt row, the delivery's next state, the endpoint's health.

Atomic. A success is one statement (the attempt row, the delivery, the endpoint's health and
the dispatcher's wake-up in one CTE, so one round trip): it is the path of nearly every attempt.
A failure is a transaction: it starts the endpoint's failure streak, and an endpoint failing for
longer than the failure window (or answering 410) is disabled, with `webhook.endpoint.disabled`
written to the outbox in the same transaction.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.webhooks import WebhookEndpointDisabledV1
from notify_svc.db import outbox
from notify_svc.delivery import policy
from notify_svc.delivery.http import Result
from notify_svc.events.handlers import WAKE_CHANNEL, WAKE_SQL
from notify_svc.webhooks import metrics
from servicekit.db import autocommit, transaction
from servicekit.outbox import emit

if TYPE_CHECKING:
    from notify_svc.delivery.attempt import Claim
    from notify_svc.delivery.context import DeliveryContext

log = logging.getLogger("notify_svc.delivery")

ATTEMPT_SQL = text(
    """
    INSERT INTO webhook_attempt (delivery_id, number, attempted_at, status_code, duration_ms,
        response_excerpt, error, next_attempt_at)
    VALUES (:id, :number, :attempted_at, :status_code, :duration_ms, :excerpt, :error, :next_at)
    """
)
DELIVERY_SQL = text(
    """
    UPDATE webhook_delivery SET status = :status, next_attempt_at = :next_at,
        claimed_until = NULL, last_status_code = :status_code, last_error = :error,
        delivered_at = CASE WHEN :status = 'succeeded' THEN now() ELSE delivered_at END,
        updated_at = now()
    WHERE id = :id AND status = 'delivering' AND attempts = :number
    """
)
# The same three writes as a failure's first three, for a success, plus the wake-up (the
# endpoint has a free slot; NOTIFY is sent when the statement commits).
SUCCEEDED_SQL = text(
    f"""
    WITH attempt AS (
        INSERT INTO webhook_attempt (delivery_id, number, attempted_at, status_code,
            duration_ms, response_excerpt, error, next_attempt_at)
        VALUES (:id, :number, :attempted_at, :status_code, :duration_ms, :excerpt, NULL, NULL)
    ), delivery AS (
        UPDATE webhook_delivery SET status = 'succeeded', next_attempt_at = NULL,
            claimed_until = NULL, last_status_code = :status_code, last_error = NULL,
            delivered_at = now(), updated_at = now()
        WHERE id = :id AND status = 'delivering' AND attempts = :number
    ), healthy AS (
        UPDATE webhook_endpoint SET failing_since = NULL, last_success_at = now()
        WHERE id = :endpoint_id
          AND (failing_since IS NOT NULL OR last_success_at IS NULL
               OR last_success_at < now() - interval '5 seconds')
    )
    SELECT pg_notify('{WAKE_CHANNEL}', '')
    """  # noqa: S608 - constant SQL
)
FAILING_SQL = text(
    "UPDATE webhook_endpoint SET failing_since = now() "
    "WHERE id = :endpoint_id AND failing_since IS NULL"
)
DISABLE_SQL = text(
    """
    UPDATE webhook_endpoint SET active = false, disabled_reason = :reason,
        disabled_at = now(), row_version = row_version + 1, updated_at = now()
    WHERE id = :endpoint_id AND active
      AND (:gone OR failing_since < now() - make_interval(secs => :window))
    RETURNING org_id, url, disabled_at
    """
)


async def record(
    ctx: DeliveryContext,
    claimed: Claim,
    result: Result,
    decision: policy.Decision,
    attempted_at: datetime,
) -> None:
    if decision.status == policy.SUCCEEDED:
        async with autocommit(ctx.db) as conn:
            await conn.execute(
                SUCCEEDED_SQL,
                {
                    "id": claimed.id,
                    "number": claimed.attempt,
                    "attempted_at": attempted_at,
                    "status_code": result.status_code,
                    "duration_ms": result.duration_ms,
                    "excerpt": result.excerpt,
                    "endpoint_id": claimed.endpoint_id,
                },
            )
        count_outcome(claimed, result, decision)
        return
    async with transaction(ctx.db) as session:
        await session.execute(
            ATTEMPT_SQL,
            {
                "id": claimed.id,
                "number": claimed.attempt,
                "attempted_at": attempted_at,
                "status_code": result.status_code,
                "duration_ms": result.duration_ms,
                "excerpt": result.excerpt,
                "error": result.error,
                "next_at": decision.next_attempt_at,
            },
        )
        await session.execute(
            DELIVERY_SQL,
            {
                "id": claimed.id,
                "number": claimed.attempt,
                "status": decision.status,
                "next_at": decision.next_attempt_at,
                "status_code": result.status_code,
                "error": result.error,
            },
        )
        await _failing(ctx, session, claimed, decision)
        # The endpoint has a free slot (and the subject's next event may go): the dispatcher
        # hands out the next due delivery at commit.
        await session.execute(WAKE_SQL)
    count_outcome(claimed, result, decision)


async def _failing(
    ctx: DeliveryContext, session: AsyncSession, claimed: Claim, decision: policy.Decision
) -> None:
    await session.execute(FAILING_SQL, {"endpoint_id": claimed.endpoint_id})
    await disable_if_due(ctx, session, claimed, gone=decision.disable_endpoint)


async def disable_if_due(
    ctx: DeliveryContext, session: AsyncSession, claimed: Claim, *, gone: bool
) -> None:
    """Disable the endpoint when it answered 410 or has been failing longer than the window,
    with its `webhook.endpoint.disabled` event in the same transaction."""
    window = ctx.settings.webhook_failure_window_seconds
    reason = (
        "the endpoint answered 410 Gone"
        if gone
        else f"no successful delivery for {window:g} s while failing"
    )
    row = (
        await session.execute(
            DISABLE_SQL,
            {"endpoint_id": claimed.endpoint_id, "gone": gone, "window": window, "reason": reason},
        )
    ).first()
    if row is None:
        return
    await emit(
        session,
        outbox,
        WebhookEndpointDisabledV1(
            endpoint_id=claimed.endpoint_id,
            org_id=row.org_id,
            url=row.url,
            reason=reason,
            disabled_at=row.disabled_at,
        ),
        source="notify-svc",
        aggregate_type="webhook_endpoint",
        aggregate_id=claimed.endpoint_id,
    )
    metrics.ENDPOINTS_DISABLED.labels("gone" if gone else "failure_window").inc()
    log.warning("webhook endpoint %s disabled: %s", claimed.endpoint_id, reason)


def count_outcome(claimed: Claim, result: Result, decision: policy.Decision) -> None:
    status = result.status_code if result.error is None else None
    metrics.ATTEMPTS.labels(policy.status_class(status)).inc()
    outcome = {"failed": "retry"}.get(decision.status, decision.status)
    if decision.disable_endpoint:
        outcome = "disabled"
    metrics.DELIVERIES.labels(outcome).inc()
    if decision.status == policy.SUCCEEDED:
        latency = (datetime.now(UTC) - claimed.event_time).total_seconds()
        metrics.LATENCY.observe(max(0.0, latency))
