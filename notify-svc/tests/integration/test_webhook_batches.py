"""Batched attempts against real commits and a real local receiver: one endpoint's deliveries
claimed, sent and recorded together, with every single-attempt guarantee kept (per-subject
order, the in-flight cap, the rate limit, 410, retries)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from standardwebhooks.webhooks import Webhook

from contracts.envelope import CloudEvent
from notify_svc.db import outbox
from notify_svc.delivery.attempt import cap_params
from notify_svc.delivery.batch import claim_rows, deliver_batch
from notify_svc.delivery.context import DeliveryContext
from notify_svc.events.handlers import fan_out
from notify_svc.receiver import Answer, Received, Receiver, always
from notify_svc.settings import Settings
from notify_svc.webhooks.models import WebhookAttempt, WebhookDelivery
from servicekit.testing.plugin import JwtKeys

from ..support import webhooks as support
from ..support.webhooks import BASE, handed_out

ORG = uuid.UUID("00000000-0000-4000-8000-00000000000b")


def task_event(subject: uuid.UUID | None = None, org: uuid.UUID = ORG) -> CloudEvent[Any]:
    return support.task_event(org, subject)


async def subscribe(
    client: httpx.AsyncClient, jwt_keys: JwtKeys, url: str, **extra: Any
) -> dict[str, Any]:
    return await support.subscribe(client, jwt_keys, ORG, url, **extra)


@pytest.fixture
async def ctx(settings: Settings, committing_app: Any) -> AsyncIterator[DeliveryContext]:
    context = DeliveryContext.create(
        settings.model_copy(
            update={"webhook_batch_size": 8, "webhook_max_in_flight_per_endpoint": 8}
        ),
        pool_size=4,
    )
    yield context
    await context.close()


async def publish(engine: AsyncEngine, events: list[CloudEvent[Any]]) -> list[uuid.UUID]:
    """Fan the events out (one commit each, in order); their delivery ids."""
    for event in events:
        async with AsyncSession(engine) as session, session.begin():
            await fan_out(session, event)
    async with AsyncSession(engine) as session:
        rows = (await session.execute(select(WebhookDelivery.event_id, WebhookDelivery.id))).all()
    by_event = {str(event_id): delivery_id for event_id, delivery_id in rows}
    return [by_event[e.id] for e in events]


async def statuses(engine: AsyncEngine, ids: list[uuid.UUID]) -> list[tuple[str, int]]:
    async with AsyncSession(engine) as session:
        rows = dict(
            (r.id, (r.status, r.attempts))
            for r in (
                await session.execute(
                    select(WebhookDelivery.id, WebhookDelivery.status, WebhookDelivery.attempts)
                )
            ).all()
        )
    return [rows[i] for i in ids]


async def test_a_batch_is_claimed_sent_and_recorded_together_each_delivery_on_its_own(
    committing_client: httpx.AsyncClient,
    jwt_keys: JwtKeys,
    engine: AsyncEngine,
    ctx: DeliveryContext,
    receiver: Receiver,
) -> None:
    events = [task_event() for _ in range(4)]
    failing = events[2].id

    def answer(request: Received) -> Answer:
        return (500 if request.webhook_id == failing else 200), {}, b"batched"

    receiver.answer = answer
    endpoint = await subscribe(committing_client, jwt_keys, receiver.url)
    ids = await publish(engine, events)
    outcomes = await deliver_batch(ctx, uuid.UUID(endpoint["id"]), ids)
    assert outcomes == {"succeeded": 3, "failed": 1}
    assert sorted(r.webhook_id for r in receiver.requests()) == sorted(e.id for e in events)
    for request in receiver.requests():  # each signed on its own
        Webhook(endpoint["secret"]).verify(request.body, request.headers)
    assert await statuses(engine, ids) == [
        ("succeeded", 1), ("succeeded", 1), ("failed", 1), ("succeeded", 1),
    ]  # fmt: skip
    async with AsyncSession(engine) as session:
        attempts = (
            await session.execute(
                select(WebhookAttempt.delivery_id, WebhookAttempt.status_code,
                       WebhookAttempt.next_attempt_at, WebhookAttempt.response_excerpt)
            )
        ).all()  # fmt: skip
        failing_since = await session.scalar(
            text("SELECT failing_since FROM webhook_endpoint WHERE id = :id"),
            {"id": endpoint["id"]},
        )
    by_delivery = {a.delivery_id: a for a in attempts}
    assert len(attempts) == 4 and set(by_delivery) == set(ids)
    assert by_delivery[ids[2]].status_code == 500 and by_delivery[ids[2]].next_attempt_at
    assert by_delivery[ids[0]].status_code == 200 and by_delivery[ids[0]].next_attempt_at is None
    assert by_delivery[ids[0]].response_excerpt == "batched"
    assert failing_since is None  # a success in the batch: the endpoint is healthy
    # The same message again (a repeated Celery message) claims nothing and sends nothing.
    assert await deliver_batch(ctx, uuid.UUID(endpoint["id"]), [ids[0], ids[1]]) == {
        "not_claimed": 2
    }
    assert len(receiver.requests()) == 4


async def test_a_batch_keeps_per_subject_order_and_the_in_flight_cap(
    committing_client: httpx.AsyncClient,
    jwt_keys: JwtKeys,
    engine: AsyncEngine,
    ctx: DeliveryContext,
    receiver: Receiver,
) -> None:
    endpoint = await subscribe(committing_client, jwt_keys, receiver.url, ordering="per_subject")
    endpoint_id = uuid.UUID(endpoint["id"])
    subject = uuid.uuid4()
    first, second = task_event(subject), task_event(subject)
    others = [task_event() for _ in range(8)]
    ids = await publish(engine, [first, second, *others])
    # The dispatcher hands out the first and seven others (the in-flight cap of 8 counts
    # enqueued rows; the second of the subject waits behind the first).
    handed = await handed_out(ctx)
    assert len(handed) == 8 and ids[1] not in handed
    # Two rows already being attempted elsewhere: this batch may claim only 8 - 2.
    async with AsyncSession(engine) as session, session.begin():
        await session.execute(
            text(
                "UPDATE webhook_delivery SET status = 'delivering', attempts = 1, "
                "claimed_until = now() + interval '1 minute' WHERE id = ANY(:ids)"
            ),
            {"ids": ids[-2:]},
        )
    outcomes = await deliver_batch(ctx, endpoint_id, ids[:-2])
    assert outcomes == {"succeeded": 6, "not_claimed": 2}
    sent = [r.webhook_id for r in receiver.requests()]
    assert first.id in sent and second.id not in sent  # the subject's second waited
    # Its first settled: the second goes now (and the one left over by the cap).
    assert await deliver_batch(ctx, endpoint_id, ids[:-2]) == {"succeeded": 2, "not_claimed": 6}
    sent = [r.webhook_id for r in receiver.requests()]
    assert sent.index(first.id) < sent.index(second.id)


async def test_two_workers_claiming_for_one_endpoint_at_once_stay_within_its_cap(
    committing_client: httpx.AsyncClient,
    jwt_keys: JwtKeys,
    engine: AsyncEngine,
    ctx: DeliveryContext,
    receiver: Receiver,
) -> None:
    endpoint = await subscribe(committing_client, jwt_keys, receiver.url)
    endpoint_id = uuid.UUID(endpoint["id"])
    ids = await publish(engine, [task_event() for _ in range(12)])
    cap = ctx.settings.webhook_max_in_flight_per_endpoint
    params = {"endpoint_id": endpoint_id, "batch": cap, "claim_seconds": 60,
              **cap_params(ctx.settings)}  # fmt: skip
    # One worker has claimed a full batch and not committed yet when a second one claims.
    async with engine.connect() as first:
        await first.begin()
        held = await claim_rows(first, {**params, "ids": ids[:cap]})
        assert len(held) == cap
        second = asyncio.create_task(deliver_batch(ctx, endpoint_id, ids[cap:]))
        await asyncio.sleep(0.5)  # the second claim is waiting for the first to commit
        assert not second.done()
        await first.commit()
    # It counted the first worker's claims: the endpoint had no free slot left.
    assert await second == {"not_claimed": len(ids) - cap}
    assert receiver.requests() == []


async def test_a_batch_sends_only_the_rate_budget_and_the_rest_waits_unattempted(
    committing_client: httpx.AsyncClient,
    jwt_keys: JwtKeys,
    engine: AsyncEngine,
    ctx: DeliveryContext,
    receiver: Receiver,
) -> None:
    endpoint = await subscribe(committing_client, jwt_keys, receiver.url, rate_limit_per_second=2)
    ids = await publish(engine, [task_event() for _ in range(5)])
    outcomes = await deliver_batch(ctx, uuid.UUID(endpoint["id"]), ids)
    # One window's budget (a second may turn between two batches, never inside one claim).
    assert outcomes == {"succeeded": 2, "rate_limited": 3}
    assert len(receiver.requests()) == 2
    states = await statuses(engine, ids)
    assert sorted(states) == [("pending", 0)] * 3 + [("succeeded", 1)] * 2


async def test_a_410_in_a_batch_disables_the_endpoint_with_its_event(
    committing_client: httpx.AsyncClient,
    jwt_keys: JwtKeys,
    engine: AsyncEngine,
    ctx: DeliveryContext,
    receiver: Receiver,
) -> None:
    receiver.answer = always(410)
    endpoint = await subscribe(committing_client, jwt_keys, receiver.url)
    ids = await publish(engine, [task_event() for _ in range(3)])
    assert await deliver_batch(ctx, uuid.UUID(endpoint["id"]), ids) == {"failed": 3}
    read = await committing_client.get(
        f"{BASE}/endpoints/{endpoint['id']}", headers=jwt_keys.headers(["planner"], org_id=ORG)
    )
    assert read.json()["active"] is False
    assert read.json()["disabled_reason"] == "the endpoint answered 410 Gone"
    async with AsyncSession(engine) as session:
        rows = (await session.execute(select(outbox.c.type, outbox.c.payload))).all()
    assert [(t, p["endpoint_id"]) for t, p in rows] == [
        ("webhook.endpoint.disabled", endpoint["id"])
    ]


async def test_a_batch_follows_on_with_the_endpoints_next_due_deliveries(
    committing_client: httpx.AsyncClient,
    jwt_keys: JwtKeys,
    engine: AsyncEngine,
    ctx: DeliveryContext,
    receiver: Receiver,
) -> None:
    endpoint = await subscribe(committing_client, jwt_keys, receiver.url)
    events = [task_event() for _ in range(20)]
    ids = await publish(engine, events)
    outcomes = await deliver_batch(ctx, uuid.UUID(endpoint["id"]), ids[:2], follow_seconds=30)
    assert outcomes == {"succeeded": 20}
    assert sorted(r.webhook_id for r in receiver.requests()) == sorted(e.id for e in events)
    assert set(await statuses(engine, ids)) == {("succeeded", 1)}


async def make_due(engine: AsyncEngine, ids: list[uuid.UUID]) -> None:
    """Their retries come due now (the schedule's first wait is over)."""
    async with AsyncSession(engine) as session, session.begin():
        await session.execute(
            text(
                "UPDATE webhook_delivery SET next_attempt_at = now() - interval '1 second', "
                "enqueued_at = NULL WHERE id = ANY(:ids)"
            ),
            {"ids": ids},
        )


async def test_a_failing_endpoint_gets_one_probe_at_a_time_until_an_attempt_succeeds(
    committing_client: httpx.AsyncClient,
    jwt_keys: JwtKeys,
    engine: AsyncEngine,
    ctx: DeliveryContext,
    receiver: Receiver,
) -> None:
    endpoint = await subscribe(committing_client, jwt_keys, receiver.url)
    endpoint_id = uuid.UUID(endpoint["id"])
    ids = await publish(engine, [task_event() for _ in range(6)])
    receiver.answer = always(500)
    first = await deliver_batch(ctx, endpoint_id, ids)  # the full cap: every one fails
    assert sum(first.values()) == 6 and "not_claimed" not in first
    await make_due(engine, ids)
    # Failing: the dispatcher hands out one, and a batch claims one (a probe).
    assert len(await handed_out(ctx)) == 1
    probe = await deliver_batch(ctx, endpoint_id, ids)
    assert probe.pop("not_claimed") == 5 and sum(probe.values()) == 1
    assert len(receiver.requests()) == 7
    # The probe succeeds: the endpoint has its full cap again.
    receiver.answer = always(200)
    await make_due(engine, ids)
    assert await deliver_batch(ctx, endpoint_id, ids) == {"succeeded": 1, "not_claimed": 5}
    assert await deliver_batch(ctx, endpoint_id, ids) == {"succeeded": 5, "not_claimed": 1}
    assert sorted(await statuses(engine, ids)) == [("succeeded", 2)] * 5 + [("succeeded", 3)]
