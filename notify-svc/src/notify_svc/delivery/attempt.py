"""One attempt of one delivery: claim the row, POST with no transaction open, record it.

The claim is a conditional UPDATE: the row must be due (pending or failed, `next_attempt_at`
reached) or its earlier claim expired (a worker died mid-attempt), its endpoint active, fewer
than its in-flight cap attempts to that endpoint under way (`in_flight_cap`: a hanging endpoint
holds at most that many worker slots, and a failing one a single probe; the rest of its work
waits in the database) and,
for `per_subject` endpoints, no earlier delivery of the same subject still open. Two workers
with the same id: one claims, the other finds nothing. Recording is conditional on the claim
(status and attempt number), so a worker whose claim expired cannot overwrite a newer one.
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import text

from notify_svc.delivery import http, policy
from notify_svc.delivery.context import DeliveryContext
from notify_svc.delivery.outcome import record
from notify_svc.settings import Settings
from notify_svc.webhooks import ssrf
from notify_svc.webhooks.signing import signature_header
from servicekit.db import autocommit

log = logging.getLogger("notify_svc.delivery")


def in_flight_cap(endpoint: str) -> str:
    """SQL for the in-flight cap of the endpoint row `endpoint` (an alias): the setting, or while
    the endpoint is failing (`failing_since` set: no success since its last failure) one probe at
    a time. Its parameters come from `cap_params`."""
    return (
        f"(CASE WHEN {endpoint}.failing_since IS NULL THEN CAST(:max_in_flight AS int) "
        "ELSE CAST(:failing_in_flight AS int) END)"
    )


def cap_params(settings: Settings) -> dict[str, int]:
    """The parameters of `in_flight_cap`."""
    cap = settings.webhook_max_in_flight_per_endpoint
    return {
        "max_in_flight": cap,
        "failing_in_flight": min(cap, settings.webhook_max_in_flight_while_failing),
    }


ORDER_FREE = """(e.ordering <> 'per_subject' OR d.subject IS NULL OR NOT EXISTS (
    SELECT 1 FROM webhook_delivery p WHERE p.endpoint_id = d.endpoint_id
    AND p.subject = d.subject AND p.seq < d.seq
    AND p.status IN ('pending', 'delivering', 'failed')))"""

NEXT_DUE = f"""(
    SELECT d.id FROM webhook_delivery d JOIN webhook_endpoint e ON e.id = d.endpoint_id
    WHERE d.endpoint_id = :endpoint_id AND d.status IN ('pending', 'failed')
      AND d.next_attempt_at <= now() AND d.enqueued_at IS NULL AND {ORDER_FREE}
    ORDER BY d.next_attempt_at, d.seq LIMIT 1 FOR UPDATE OF d SKIP LOCKED)"""  # noqa: S608

CLAIM = """
    UPDATE webhook_delivery d
    SET status = 'delivering', attempts = d.attempts + 1, enqueued_at = NULL,
        claimed_until = now() + make_interval(secs => :claim_seconds), updated_at = now()
    FROM webhook_endpoint e
    WHERE d.id = {target} AND e.id = d.endpoint_id AND e.active
      AND ((d.status IN ('pending', 'failed') AND d.next_attempt_at <= now())
           OR (d.status = 'delivering' AND d.claimed_until < now()))
      AND (SELECT count(*) FROM webhook_delivery x WHERE x.endpoint_id = d.endpoint_id
           AND x.status = 'delivering' AND x.claimed_until > now()) < {CAP}
      AND {ORDER_FREE}
    RETURNING d.id, d.attempts, d.endpoint_id, d.org_id, d.event_id, d.event_time,
        e.url, e.ordering, e.secret_encrypted, e.previous_secret_encrypted,
        e.previous_secret_expires_at, e.rate_limit_per_second,
        (SELECT v.body FROM webhook_event v WHERE v.id = d.event_id) AS body
    """
CLAIM = CLAIM.replace("{ORDER_FREE}", ORDER_FREE).replace("{CAP}", in_flight_cap("e"))
CLAIM_SQL = text(CLAIM.replace("{target}", ":id"))
# The next due delivery of the same endpoint, for a worker that just freed that endpoint's slot.
CLAIM_NEXT_SQL = text(CLAIM.replace("{target}", NEXT_DUE))
RELEASE_SQL = text(
    """
    UPDATE webhook_delivery SET attempts = attempts - 1, claimed_until = NULL,
        status = CASE WHEN attempts - 1 = 0 THEN 'pending' ELSE 'failed' END,
        next_attempt_at = now() + make_interval(secs => :wait), updated_at = now()
    WHERE id = :id AND status = 'delivering' AND attempts = :attempt
    """
)

UNMARK_SQL = text(
    "UPDATE webhook_delivery SET enqueued_at = NULL "
    "WHERE id = :id AND status IN ('pending', 'failed') AND enqueued_at IS NOT NULL"
)


@dataclass(frozen=True)
class Claim:
    id: uuid.UUID
    attempt: int
    endpoint_id: uuid.UUID
    org_id: uuid.UUID
    event_id: uuid.UUID
    event_time: datetime
    url: str
    ordering: str
    secrets: list[str]
    rate_limit: int | None
    body: bytes


async def claim(
    ctx: DeliveryContext, delivery_id: uuid.UUID | None, *, endpoint_id: uuid.UUID | None = None
) -> Claim | None:
    """Claim `delivery_id`, or (without one) the next due delivery of `endpoint_id`."""
    params = {
        "id": delivery_id,
        "endpoint_id": endpoint_id,
        "claim_seconds": ctx.settings.claim_seconds,
        **cap_params(ctx.settings),
    }
    statement = CLAIM_SQL if delivery_id is not None else CLAIM_NEXT_SQL
    async with autocommit(ctx.db) as conn:  # one statement: one round trip
        row = (await conn.execute(statement, params)).mappings().first()
    return None if row is None else claim_of(ctx, row)


def claim_of(ctx: DeliveryContext, row: Any, secrets: list[str] | None = None) -> Claim:
    """A claimed row (as the claim statements return it) ready to send; `secrets`, when given,
    are its endpoint's (decrypted once for a batch of one endpoint's rows)."""
    return Claim(
        id=row["id"],
        attempt=row["attempts"],
        endpoint_id=row["endpoint_id"],
        org_id=row["org_id"],
        event_id=row["event_id"],
        event_time=row["event_time"],
        url=row["url"],
        ordering=row["ordering"],
        secrets=secrets if secrets is not None else secrets_of(ctx, row),
        rate_limit=row["rate_limit_per_second"],
        body=row["body"].encode(),
    )


def secrets_of(ctx: DeliveryContext, row: Any) -> list[str]:
    """The current secret, and the rotated-out one while its grace period lasts."""
    out = [ctx.box.decrypt(row["secret_encrypted"])]
    expires = row["previous_secret_expires_at"]
    if row["previous_secret_encrypted"] and expires is not None and expires > datetime.now(UTC):
        out.append(ctx.box.decrypt(row["previous_secret_encrypted"]))
    return out


async def rate_limited(ctx: DeliveryContext, claimed: Claim) -> float:
    """Seconds to wait when the endpoint's per-second budget is spent (0: go), counted in Redis
    across every worker (a fixed one-second window)."""
    if not claimed.rate_limit:
        return 0.0
    now = time.time()
    key = f"notify:webhook-rate:{claimed.endpoint_id}:{int(now)}"
    pipe = ctx.redis.pipeline()
    pipe.incr(key)
    pipe.expire(key, 2)
    count, _ = await pipe.execute()
    if int(count) <= claimed.rate_limit:
        return 0.0
    return 1.0 - (now % 1.0) + 0.01


async def deliver(
    ctx: DeliveryContext, delivery_id: uuid.UUID, *, follow_seconds: float = 0.0
) -> str:
    """Attempt the delivery once if it can be claimed; returns what happened.

    With `follow_seconds`, the worker then keeps the endpoint's slot for up to that long,
    claiming and attempting the endpoint's next due deliveries itself: a busy endpoint's
    pipeline stays full without a round trip through the dispatcher and the broker per attempt.
    """
    outcome, claimed = await _deliver_one(ctx, delivery_id)
    deadline = time.monotonic() + follow_seconds
    while claimed is not None and time.monotonic() < deadline:
        following = await claim(ctx, None, endpoint_id=claimed.endpoint_id)
        if following is None:
            break
        await _attempt_claimed(ctx, following)
    return outcome


async def _deliver_one(ctx: DeliveryContext, delivery_id: uuid.UUID) -> tuple[str, Claim | None]:
    claimed = await claim(ctx, delivery_id)
    if claimed is None:
        # Not due, taken, or its endpoint busy: if it is still waiting, the dispatcher may hand
        # it out again as soon as a slot frees.
        async with autocommit(ctx.db) as conn:
            await conn.execute(UNMARK_SQL, {"id": delivery_id})
        return "not_claimed", None
    outcome = await _attempt_claimed(ctx, claimed)
    return outcome, (None if outcome == "rate_limited" else claimed)


async def _attempt_claimed(ctx: DeliveryContext, claimed: Claim) -> str:
    wait = await rate_limited(ctx, claimed)
    if wait > 0:
        async with autocommit(ctx.db) as conn:
            await conn.execute(
                RELEASE_SQL, {"id": claimed.id, "attempt": claimed.attempt, "wait": wait}
            )
        return "rate_limited"
    attempted_at = datetime.now(UTC)
    result = await send_signed(ctx, claimed)
    decision = decide(ctx, claimed, result)
    await record(ctx, claimed, result, decision, attempted_at)
    return decision.status


def decide(ctx: DeliveryContext, claimed: Claim, result: http.Result) -> policy.Decision:
    """What an attempt's result means for its delivery (retry schedule, Retry-After cap)."""
    return policy.decide(
        status_code=result.status_code if result.error is None else None,
        attempt=claimed.attempt,
        schedule=ctx.settings.webhook_retry_schedule_seconds,
        retry_after=result.retry_after,
        retry_after_cap=ctx.settings.webhook_retry_after_cap_seconds,
    )


async def checked_target(ctx: DeliveryContext, url: str) -> ssrf.Target | http.Result:
    """Where an attempt to `url` connects (the SSRF check passed), or the refused attempt's
    result."""
    try:
        return await ssrf.check_url(
            url, allowed=ctx.allowed, require_https=ctx.settings.webhook_require_https
        )
    except ssrf.UrlRefused as refused:
        return http.Result(None, 0, None, f"refused ({refused.rule}): {refused.detail}")


async def send_signed(
    ctx: DeliveryContext, claimed: Claim, target: ssrf.Target | http.Result | None = None
) -> http.Result:
    """Sign and POST `claimed` to `target` (checked here unless the caller checked it)."""
    if target is None:
        target = await checked_target(ctx, claimed.url)
    if isinstance(target, http.Result):
        return target
    timestamp = int(time.time())
    msg_id = str(claimed.event_id)
    headers = {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature_header(claimed.secrets, msg_id, timestamp, claimed.body),
    }
    return await http.post(
        ctx.http,
        target,
        body=claimed.body,
        headers=headers,
        timeout_seconds=ctx.settings.webhook_timeout_seconds,
    )
