"""Batched attempts: one endpoint's deliveries claimed in one statement, sent at once, recorded in
one statement.

A Celery message names an endpoint and the delivery ids the dispatcher handed out for it. The
worker claims those that are still due in one conditional UPDATE (the same conditions as a single
claim: due or claim expired, endpoint active, the endpoint's in-flight cap, `per_subject`
order), at most `webhook_batch_size` and never more than the endpoint's free slots; claims for
one endpoint take turns (an advisory lock held to their commit), so two workers never count the
same free slots. The claimed ones go out concurrently on the process's kept-alive connections,
to the address the batch's SSRF check passed (one endpoint, one URL: checked and resolved once
per batch); the outcomes are written together: every attempt row, every delivery's next state
and the endpoint's health in one statement, and, when any attempt failed, the disable check and
its `webhook.endpoint.disabled` event in the same transaction. Ids that could not be claimed are
unmarked so the dispatcher can hand them out again. With `follow_seconds` the worker then claims
the endpoint's next due deliveries itself (rows no dispatcher round handed out yet), batch after
batch, while there are any.

The rows stay the truth: a lost message leaves its rows marked enqueued until the requeue delay
hands them out again; a repeated one finds them claimed or settled and claims nothing.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import RowMapping, text
from sqlalchemy.ext.asyncio import AsyncConnection

from notify_svc.delivery import http, policy
from notify_svc.delivery.attempt import (
    ORDER_FREE,
    Claim,
    cap_params,
    checked_target,
    claim_of,
    decide,
    in_flight_cap,
    secrets_of,
    send_signed,
)
from notify_svc.delivery.context import DeliveryContext
from notify_svc.delivery.outcome import count_outcome, disable_if_due
from notify_svc.events.handlers import WAKE_CHANNEL
from notify_svc.webhooks import metrics, ssrf
from servicekit.db import autocommit, connection_transaction, transaction

log = logging.getLogger("notify_svc.delivery")

# `{chosen}` narrows the candidates: the ids of the message, or (following on) rows that no
# dispatcher round has handed out. The LIMIT keeps the endpoint within its in-flight cap.
CLAIM_BATCH = f"""
    WITH busy AS (
        SELECT count(*) AS n FROM webhook_delivery
        WHERE endpoint_id = :endpoint_id AND status = 'delivering' AND claimed_until > now()
    ), picked AS (
        SELECT d.id FROM webhook_delivery d JOIN webhook_endpoint e ON e.id = d.endpoint_id
        WHERE d.endpoint_id = :endpoint_id AND e.active AND {{chosen}}
          AND ((d.status IN ('pending', 'failed') AND d.next_attempt_at <= now())
               OR (d.status = 'delivering' AND d.claimed_until < now()))
          AND {ORDER_FREE}
        ORDER BY d.next_attempt_at, d.seq
        LIMIT greatest(0, least(:batch, (SELECT {in_flight_cap("f")} FROM webhook_endpoint f
                                         WHERE f.id = :endpoint_id) - (SELECT n FROM busy)))
        FOR UPDATE OF d SKIP LOCKED
    )
    UPDATE webhook_delivery d
    SET status = 'delivering', attempts = d.attempts + 1, enqueued_at = NULL,
        claimed_until = now() + make_interval(secs => :claim_seconds), updated_at = now()
    FROM picked, webhook_endpoint e
    WHERE d.id = picked.id AND e.id = d.endpoint_id
    RETURNING d.id, d.attempts, d.endpoint_id, d.org_id, d.event_id, d.event_time, d.seq,
        e.url, e.ordering, e.secret_encrypted, e.previous_secret_encrypted,
        e.previous_secret_expires_at, e.rate_limit_per_second,
        (SELECT v.body FROM webhook_event v WHERE v.id = d.event_id) AS body
    """  # noqa: S608 - constant SQL
# Claims for one endpoint go one at a time (a transaction-scoped advisory lock: the rows stay free
# for recording and for other endpoints' claims).
CLAIM_LOCK_SQL = text(
    "SELECT pg_advisory_xact_lock(1297482805, hashtext(CAST(:endpoint_id AS text)))"
)
CLAIM_IDS_SQL = text(CLAIM_BATCH.replace("{chosen}", "d.id = ANY(CAST(:ids AS uuid[]))"))
CLAIM_NEXT_SQL = text(CLAIM_BATCH.replace("{chosen}", "d.enqueued_at IS NULL"))

UNMARK_SQL = text(
    "UPDATE webhook_delivery SET enqueued_at = NULL "
    "WHERE id = ANY(CAST(:ids AS uuid[])) AND status IN ('pending', 'failed') "
    "AND enqueued_at IS NOT NULL"
)
# Claims given back unattempted (the endpoint's rate budget is spent): not an attempt.
RELEASE_SQL = text(
    """
    UPDATE webhook_delivery d SET attempts = d.attempts - 1, claimed_until = NULL,
        status = CASE WHEN d.attempts - 1 = 0 THEN 'pending' ELSE 'failed' END,
        next_attempt_at = now() + make_interval(secs => :wait), updated_at = now()
    FROM unnest(CAST(:ids AS uuid[]), CAST(:numbers AS int[])) AS r(id, number)
    WHERE d.id = r.id AND d.status = 'delivering' AND d.attempts = r.number
    """
)
# Every outcome of a batch: the attempt rows, the deliveries (each conditional on its claim),
# and the endpoint's health (any success ends a failure streak, otherwise a failure starts one).
RECORD_SQL = text(
    """
    WITH outcome AS (
        SELECT * FROM unnest(
            CAST(:ids AS uuid[]), CAST(:numbers AS int[]), CAST(:attempted_at AS timestamptz[]),
            CAST(:status_codes AS int[]), CAST(:durations AS int[]), CAST(:excerpts AS text[]),
            CAST(:errors AS text[]), CAST(:next_at AS timestamptz[]), CAST(:statuses AS text[])
        ) AS o(id, number, attempted_at, status_code, duration_ms, excerpt, error, next_at,
               status)
    ), attempt AS (
        INSERT INTO webhook_attempt (delivery_id, number, attempted_at, status_code,
            duration_ms, response_excerpt, error, next_attempt_at)
        SELECT id, number, attempted_at, status_code, duration_ms, excerpt, error, next_at
        FROM outcome
    ), delivery AS (
        UPDATE webhook_delivery d SET status = o.status, next_attempt_at = o.next_at,
            claimed_until = NULL, last_status_code = o.status_code, last_error = o.error,
            delivered_at = CASE WHEN o.status = 'succeeded' THEN now() ELSE d.delivered_at END,
            updated_at = now()
        FROM outcome o
        WHERE d.id = o.id AND d.status = 'delivering' AND d.attempts = o.number
    ), healthy AS (
        UPDATE webhook_endpoint SET failing_since = NULL, last_success_at = now()
        WHERE id = :endpoint_id AND :any_success
          AND (failing_since IS NOT NULL OR last_success_at IS NULL
               OR last_success_at < now() - interval '5 seconds')
    ), failing AS (
        UPDATE webhook_endpoint SET failing_since = now()
        WHERE id = :endpoint_id AND NOT :any_success AND failing_since IS NULL
    )
    SELECT count(*) FROM outcome
    """
)
# The endpoint's slots are free (and a subject's next event may go): the dispatcher hands out
# what waits. Sent once a task stops following on, not after every batch: while it follows on,
# the task itself takes the endpoint's next rows, and a round per batch would be wasted work.
WAKE_SQL = text(f"SELECT pg_notify('{WAKE_CHANNEL}', '')")


@dataclass(frozen=True)
class Sent:
    claim: Claim
    attempted_at: datetime
    result: http.Result
    decision: policy.Decision


async def claim_batch(
    ctx: DeliveryContext, endpoint_id: uuid.UUID, ids: list[uuid.UUID] | None
) -> list[Claim]:
    """Claim the still-due ones of `ids` (all of one endpoint), or without ids the endpoint's
    next due deliveries that no dispatcher round handed out; one statement."""
    params = {
        "ids": ids,
        "endpoint_id": endpoint_id,
        "batch": ctx.settings.webhook_batch_size,
        "claim_seconds": ctx.settings.claim_seconds,
        **cap_params(ctx.settings),
    }
    async with connection_transaction(ctx.db) as conn:
        rows = await claim_rows(conn, params)
    if not rows:
        return []
    secrets = secrets_of(ctx, rows[0])  # one endpoint: its secrets once
    return [claim_of(ctx, row, secrets) for row in sorted(rows, key=lambda row: row["seq"])]


async def claim_rows(conn: AsyncConnection, params: dict[str, Any]) -> list[RowMapping]:
    """The claim statement, inside the caller's transaction, after taking the endpoint's claim
    lock: two workers claiming for one endpoint at once would each count the same free
    in-flight slots (neither sees the other's uncommitted claims) and together exceed the cap by
    up to a batch each. Held to the commit, the lock makes the second count after the first."""
    await conn.execute(CLAIM_LOCK_SQL, {"endpoint_id": str(params["endpoint_id"])})
    statement = CLAIM_IDS_SQL if params["ids"] is not None else CLAIM_NEXT_SQL
    return list((await conn.execute(statement, params)).mappings().all())


async def rate_budget(ctx: DeliveryContext, claims: list[Claim]) -> tuple[int, float]:
    """How many of `claims` may go now under the endpoint's per-second limit, counted in Redis
    across every worker (a fixed one-second window), and how long the rest wait."""
    limit = claims[0].rate_limit
    if not limit:
        return len(claims), 0.0
    now = time.time()
    key = f"notify:webhook-rate:{claims[0].endpoint_id}:{int(now)}"
    pipe = ctx.redis.pipeline()
    pipe.incrby(key, len(claims))
    pipe.expire(key, 2)
    count, _ = await pipe.execute()
    before = int(count) - len(claims)
    allowed = max(0, min(len(claims), limit - before))
    return allowed, 1.0 - (now % 1.0) + 0.01


async def deliver_batch(
    ctx: DeliveryContext,
    endpoint_id: uuid.UUID,
    ids: list[uuid.UUID] | None,
    *,
    follow_seconds: float = 0.0,
) -> dict[str, int]:
    """Attempt what can be claimed of `ids`, then (for up to `follow_seconds`) the endpoint's
    next due deliveries; returns how many attempts ended how (and `not_claimed`,
    `rate_limited`)."""
    outcomes: dict[str, int] = {}
    claims = await claim_batch(ctx, endpoint_id, ids)
    if ids:
        left = set(ids) - {c.id for c in claims}
        if left:
            # Not due, taken, held by order or the cap: the dispatcher may hand them out again.
            async with autocommit(ctx.db) as conn:
                await conn.execute(UNMARK_SQL, {"ids": list(left)})
            outcomes["not_claimed"] = len(left)
    deadline = time.monotonic() + follow_seconds
    while claims:
        limited = await attempt_batch(ctx, claims, outcomes)
        if limited or time.monotonic() >= deadline:
            break
        claims = await claim_batch(ctx, endpoint_id, None)
    if outcomes.keys() - {"not_claimed"}:  # (a task that fails before: the poll wakes it)
        async with autocommit(ctx.db) as conn:
            await conn.execute(WAKE_SQL)
    return outcomes


async def attempt_batch(
    ctx: DeliveryContext, claims: list[Claim], outcomes: dict[str, int]
) -> bool:
    """Send `claims` (one endpoint's) at once and record them; True when the rate limit held
    some back."""
    allowed, wait = await rate_budget(ctx, claims)
    going, held = claims[:allowed], claims[allowed:]
    if held:
        async with autocommit(ctx.db) as conn:
            await conn.execute(
                RELEASE_SQL,
                {"ids": [c.id for c in held], "numbers": [c.attempt for c in held], "wait": wait},
            )
        outcomes["rate_limited"] = outcomes.get("rate_limited", 0) + len(held)
    if not going:
        return True
    metrics.BATCH_SIZE.observe(len(going))
    # One endpoint, one URL: checked (and resolved) once, every attempt to the same address.
    target = await checked_target(ctx, going[0].url)
    sent = await asyncio.gather(*(_send(ctx, c, target) for c in going))
    await record_batch(ctx, sent)
    for s in sent:
        count_outcome(s.claim, s.result, s.decision)
        outcomes[s.decision.status] = outcomes.get(s.decision.status, 0) + 1
    return bool(held)


async def _send(ctx: DeliveryContext, claimed: Claim, target: ssrf.Target | http.Result) -> Sent:
    attempted_at = datetime.now(UTC)
    result = await send_signed(ctx, claimed, target)
    return Sent(claimed, attempted_at, result, decide(ctx, claimed, result))


async def record_batch(ctx: DeliveryContext, sent: list[Sent]) -> None:
    """Write every outcome of one endpoint's batch in one statement; when any failed, the
    endpoint's disable check and its event commit with it."""
    any_success = any(s.decision.status == policy.SUCCEEDED for s in sent)
    params = {
        "ids": [s.claim.id for s in sent],
        "numbers": [s.claim.attempt for s in sent],
        "attempted_at": [s.attempted_at for s in sent],
        "status_codes": [s.result.status_code for s in sent],
        "durations": [s.result.duration_ms for s in sent],
        "excerpts": [s.result.excerpt for s in sent],
        "errors": [s.result.error for s in sent],
        "next_at": [s.decision.next_attempt_at for s in sent],
        "statuses": [s.decision.status for s in sent],
        "endpoint_id": sent[0].claim.endpoint_id,
        "any_success": any_success,
    }
    if all(s.decision.status == policy.SUCCEEDED for s in sent):
        async with autocommit(ctx.db) as conn:  # nearly every batch: one round trip
            await conn.execute(RECORD_SQL, params)
        return
    gone = any(s.decision.disable_endpoint for s in sent)
    async with transaction(ctx.db) as session:
        await session.execute(RECORD_SQL, params)
        if gone or not any_success:
            await disable_if_due(ctx, session, sent[0].claim, gone=gone)
