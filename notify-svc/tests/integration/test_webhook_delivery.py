"""Deliveries against real commits and a real local receiver: fan-out, signed attempts with
retries, dead and replay, 410, per-subject order and the rate limit."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from standardwebhooks.webhooks import Webhook

from contracts.envelope import CloudEvent
from notify_svc.db import outbox
from notify_svc.delivery import dispatch
from notify_svc.delivery.attempt import deliver
from notify_svc.delivery.context import DeliveryContext
from notify_svc.events.handlers import fan_out
from notify_svc.receiver import Receiver, always, sequence
from notify_svc.settings import Settings
from notify_svc.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEvent
from servicekit.testing.plugin import JwtKeys

from ..support import webhooks as support
from ..support.webhooks import BASE

ORG = uuid.UUID("00000000-0000-4000-8000-00000000000a")


def task_event(subject: uuid.UUID | None = None, org: uuid.UUID = ORG) -> CloudEvent[Any]:
    return support.task_event(org, subject)


async def subscribe(
    client: httpx.AsyncClient, jwt_keys: JwtKeys, url: str, **extra: Any
) -> dict[str, Any]:
    return await support.subscribe(client, jwt_keys, ORG, url, **extra)


@pytest.fixture
async def ctx(settings: Settings, committing_app: Any) -> AsyncIterator[DeliveryContext]:
    context = DeliveryContext.create(settings, pool_size=4)
    yield context
    await context.close()


async def publish(engine: AsyncEngine, event: CloudEvent[Any]) -> int:
    async with AsyncSession(engine) as session, session.begin():
        return await fan_out(session, event)


async def delivery_of(engine: AsyncEngine, event: CloudEvent[Any]) -> WebhookDelivery:
    async with AsyncSession(engine) as session:
        query = select(WebhookDelivery).where(WebhookDelivery.event_id == uuid.UUID(event.id))
        return (await session.execute(query)).scalar_one()


async def attempt_until_settled(ctx: DeliveryContext, delivery_id: uuid.UUID) -> list[str]:
    """Attempt whenever due (the tests' schedule is 0.2 s) until succeeded or dead."""
    outcomes: list[str] = []
    for _ in range(100):
        outcome = await deliver(ctx, delivery_id)
        if outcome != "not_claimed":
            outcomes.append(outcome)
        if outcome in ("succeeded", "dead"):
            return outcomes
        await asyncio.sleep(0.05)
    raise AssertionError(f"not settled: {outcomes}")


async def test_fan_out_writes_one_delivery_per_matching_endpoint_once(
    committing_client: httpx.AsyncClient, jwt_keys: JwtKeys, engine: AsyncEngine
) -> None:
    tasks = await subscribe(committing_client, jwt_keys, "http://127.0.0.1:9/a")
    await subscribe(committing_client, jwt_keys, "http://127.0.0.1:9/b", event_types=["qc.*"])
    everything = await subscribe(
        committing_client, jwt_keys, "http://127.0.0.1:9/c", event_types=["*"]
    )
    event = task_event()
    assert await publish(engine, event) == 2
    assert await publish(engine, event) == 0  # a redelivered event adds nothing
    assert await publish(engine, task_event(org=uuid.uuid4())) == 0  # another org's event
    async with AsyncSession(engine) as session:
        rows = (await session.execute(select(WebhookDelivery.endpoint_id))).scalars().all()
        events = await session.scalar(select(func.count()).select_from(WebhookEvent))
    assert sorted(map(str, rows)) == sorted([tasks["id"], everything["id"]])
    assert events == 1


async def test_500_500_200_succeeds_on_the_third_attempt_with_the_same_webhook_id(
    committing_client: httpx.AsyncClient,
    jwt_keys: JwtKeys,
    engine: AsyncEngine,
    ctx: DeliveryContext,
    receiver: Receiver,
) -> None:
    receiver.answer = sequence(500, 500)
    endpoint = await subscribe(committing_client, jwt_keys, receiver.url)
    event = task_event()
    await publish(engine, event)
    delivery = await delivery_of(engine, event)
    assert await attempt_until_settled(ctx, delivery.id) == ["failed", "failed", "succeeded"]
    got = receiver.requests()
    assert [r.webhook_id for r in got] == [event.id] * 3
    for request in got:
        payload = Webhook(endpoint["secret"]).verify(request.body, request.headers)
        assert payload["id"] == event.id and payload["type"] == "task.status_changed"
        assert request.headers["content-type"] == "application/json"
        assert request.headers["user-agent"].startswith("Blueprint-Webhooks")
    detail = (
        await committing_client.get(
            f"{BASE}/deliveries/{delivery.id}", headers=jwt_keys.headers(["planner"], org_id=ORG)
        )
    ).json()
    assert detail["status"] == "succeeded" and detail["attempts"] == 3
    assert [a["status_code"] for a in detail["history"]] == [500, 500, 200]
    assert [a["number"] for a in detail["history"]] == [1, 2, 3]
    assert detail["history"][0]["next_attempt_at"] is not None
    assert detail["history"][0]["response_excerpt"] == "scripted"


async def test_a_receiver_that_is_down_ends_dead_and_replay_delivers_it(
    committing_client: httpx.AsyncClient,
    jwt_keys: JwtKeys,
    engine: AsyncEngine,
    ctx: DeliveryContext,
) -> None:
    with Receiver() as placeholder:
        url = placeholder.url  # a port nobody listens on once it is closed
    endpoint = await subscribe(committing_client, jwt_keys, url)
    event = task_event()
    await publish(engine, event)
    delivery = await delivery_of(engine, event)
    assert await attempt_until_settled(ctx, delivery.id) == ["failed", "failed", "dead"]
    headers = jwt_keys.headers(["planner"], org_id=ORG)
    listed = await committing_client.get(
        f"{BASE}/endpoints/{endpoint['id']}/deliveries", params={"status": "dead"},
        headers=headers,
    )  # fmt: skip
    assert [d["id"] for d in listed.json()["items"]] == [str(delivery.id)]
    port = int(url.rsplit(":", 1)[1].split("/")[0])
    with Receiver(port=port) as back:
        replay = await committing_client.post(
            f"{BASE}/deliveries/{delivery.id}/replay", headers=headers
        )
        assert replay.status_code == 202, replay.text
        assert await attempt_until_settled(ctx, delivery.id) == ["succeeded"]
        assert [r.webhook_id for r in back.requests()] == [event.id]
    again = await committing_client.post(f"{BASE}/deliveries/{delivery.id}/replay", headers=headers)
    assert again.status_code == 409 and again.json()["code"] == "DELIVERY_SUCCEEDED"


async def test_410_disables_the_endpoint_and_emits_the_event_through_the_outbox(
    committing_client: httpx.AsyncClient,
    jwt_keys: JwtKeys,
    engine: AsyncEngine,
    ctx: DeliveryContext,
    receiver: Receiver,
) -> None:
    receiver.answer = always(410)
    endpoint = await subscribe(committing_client, jwt_keys, receiver.url)
    event = task_event()
    await publish(engine, event)
    delivery = await delivery_of(engine, event)
    assert await deliver(ctx, delivery.id) == "failed"
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
    assert await deliver(ctx, delivery.id) == "not_claimed"  # nothing goes to a disabled one


async def test_per_subject_ordering_holds_a_later_event_behind_a_failing_one(
    committing_client: httpx.AsyncClient,
    jwt_keys: JwtKeys,
    engine: AsyncEngine,
    ctx: DeliveryContext,
    receiver: Receiver,
) -> None:
    receiver.answer = sequence(500)
    await subscribe(committing_client, jwt_keys, receiver.url, ordering="per_subject")
    subject = uuid.uuid4()
    first, second = task_event(subject), task_event(subject)
    await publish(engine, first)
    await publish(engine, second)
    d1, d2 = await delivery_of(engine, first), await delivery_of(engine, second)
    assert await deliver(ctx, d1.id) == "failed"
    assert await deliver(ctx, d2.id) == "not_claimed"  # waits for the first
    assert set(await support.handed_out(ctx)) <= {d1.id}
    assert await attempt_until_settled(ctx, d1.id) == ["succeeded"]
    assert await deliver(ctx, d2.id) == "succeeded"
    assert [r.webhook_id for r in receiver.requests()] == [first.id, first.id, second.id]


async def test_the_rate_limit_leaves_the_excess_waiting_in_the_database(
    committing_client: httpx.AsyncClient,
    jwt_keys: JwtKeys,
    engine: AsyncEngine,
    ctx: DeliveryContext,
    receiver: Receiver,
) -> None:
    await subscribe(committing_client, jwt_keys, receiver.url, rate_limit_per_second=2)
    events = [task_event() for _ in range(5)]
    for event in events:
        await publish(engine, event)
    ids = [(await delivery_of(engine, e)).id for e in events]
    outcomes = await asyncio.gather(*(deliver(ctx, i) for i in ids))
    assert outcomes.count("succeeded") <= 2 + 2  # at most two per second (a second may turn)
    assert "rate_limited" in outcomes
    async with AsyncSession(engine) as session:
        waiting = await session.scalar(
            text(
                "SELECT count(*) FROM webhook_delivery WHERE status IN ('pending', 'failed') "
                "AND attempts = 0 AND next_attempt_at > now() - interval '1 second'"
            )
        )
        attempts = await session.scalar(select(func.count()).select_from(WebhookAttempt))
    assert waiting == outcomes.count("rate_limited")
    assert attempts == outcomes.count("succeeded")  # a limited one is not counted as an attempt


async def test_a_worker_follows_on_with_its_endpoints_next_due_deliveries(
    committing_client: httpx.AsyncClient,
    jwt_keys: JwtKeys,
    engine: AsyncEngine,
    ctx: DeliveryContext,
    receiver: Receiver,
) -> None:
    await subscribe(committing_client, jwt_keys, receiver.url)
    events = [task_event() for _ in range(3)]
    for event in events:
        await publish(engine, event)
    first = await delivery_of(engine, events[0])
    assert await deliver(ctx, first.id, follow_seconds=5.0) == "succeeded"
    assert sorted(r.webhook_id for r in receiver.requests()) == sorted(e.id for e in events)


async def test_an_endpoint_failing_longer_than_the_window_is_disabled_with_its_event(
    committing_client: httpx.AsyncClient,
    jwt_keys: JwtKeys,
    engine: AsyncEngine,
    ctx: DeliveryContext,
    receiver: Receiver,
) -> None:
    receiver.answer = always(500)
    endpoint = await subscribe(committing_client, jwt_keys, receiver.url)
    first, second = task_event(), task_event()
    await publish(engine, first)
    await publish(engine, second)
    # A first failure starts the streak; it is younger than the window: still active.
    assert await deliver(ctx, (await delivery_of(engine, first)).id) == "failed"
    headers = jwt_keys.headers(["planner"], org_id=ORG)
    read = await committing_client.get(f"{BASE}/endpoints/{endpoint['id']}", headers=headers)
    assert read.json()["active"] is True
    # The streak began longer ago than the window (5 days by default): the next failure disables.
    async with AsyncSession(engine) as session, session.begin():
        await session.execute(
            text(
                "UPDATE webhook_endpoint SET failing_since = now() - interval '5 days 1 minute' "
                "WHERE id = :id"
            ),
            {"id": endpoint["id"]},
        )
    assert await deliver(ctx, (await delivery_of(engine, second)).id) == "failed"
    read = await committing_client.get(f"{BASE}/endpoints/{endpoint['id']}", headers=headers)
    assert read.json()["active"] is False
    assert read.json()["disabled_reason"] == "no successful delivery for 432000 s while failing"
    async with AsyncSession(engine) as session:
        rows = (await session.execute(select(outbox.c.type, outbox.c.payload))).all()
    assert [(t, p["endpoint_id"], p["reason"]) for t, p in rows] == [
        ("webhook.endpoint.disabled", endpoint["id"], read.json()["disabled_reason"])
    ]


async def test_a_success_ends_the_failure_streak(
    committing_client: httpx.AsyncClient,
    jwt_keys: JwtKeys,
    engine: AsyncEngine,
    ctx: DeliveryContext,
    receiver: Receiver,
) -> None:
    receiver.answer = sequence(500)
    endpoint = await subscribe(committing_client, jwt_keys, receiver.url)
    event = task_event()
    await publish(engine, event)
    assert await attempt_until_settled(ctx, (await delivery_of(engine, event)).id) == [
        "failed",
        "succeeded",
    ]
    async with AsyncSession(engine) as session:
        failing_since, last_success = (
            await session.execute(
                text("SELECT failing_since, last_success_at FROM webhook_endpoint WHERE id = :id"),
                {"id": endpoint["id"]},
            )
        ).one()
    assert failing_since is None and last_success is not None


async def test_pruning_removes_only_what_is_older_than_the_retention(
    committing_client: httpx.AsyncClient,
    jwt_keys: JwtKeys,
    engine: AsyncEngine,
    ctx: DeliveryContext,
    receiver: Receiver,
) -> None:
    receiver.answer = always(200)
    await subscribe(committing_client, jwt_keys, receiver.url)
    old_ok, old_dead, recent = task_event(), task_event(), task_event()
    for event in (old_ok, old_dead, recent):
        await publish(engine, event)
        assert await deliver(ctx, (await delivery_of(engine, event)).id) == "succeeded"
    old = [uuid.UUID(old_ok.id), uuid.UUID(old_dead.id)]
    async with AsyncSession(engine) as session, session.begin():
        # Two deliveries of 31 days ago (retention: 30), one of them dead (kept: it may be
        # replayed); their attempts are as old.
        age = "now() - interval '31 days'"
        await session.execute(
            text(
                f"UPDATE webhook_delivery SET created_at = {age}, status = CASE WHEN event_id = "
                ":dead THEN 'dead' ELSE status END WHERE event_id = ANY(:ids)"
            ),
            {"ids": old, "dead": old[1]},
        )
        await session.execute(
            text(
                f"UPDATE webhook_attempt SET attempted_at = {age} WHERE delivery_id IN "
                "(SELECT id FROM webhook_delivery WHERE event_id = ANY(:ids))"
            ),
            {"ids": old},
        )
        await session.execute(
            text(f"UPDATE webhook_event SET created_at = {age} WHERE id = ANY(:ids)"),
            {"ids": old},
        )
    # 2 attempts, 1 succeeded delivery, then its event (the dead one's event stays referenced).
    assert await dispatch.prune(ctx, batch=1) == 4
    async with AsyncSession(engine) as session:
        deliveries = (
            await session.execute(select(WebhookDelivery.event_id, WebhookDelivery.status))
        ).all()
        events = set((await session.execute(select(WebhookEvent.id))).scalars())
        attempts = await session.scalar(select(func.count()).select_from(WebhookAttempt))
    assert sorted((str(e), s) for e, s in deliveries) == sorted(
        [(old_dead.id, "dead"), (recent.id, "succeeded")]
    )
    assert events == {uuid.UUID(old_dead.id), uuid.UUID(recent.id)}
    assert attempts == 1
    assert await dispatch.prune(ctx) == 0  # nothing more is old


async def test_outcomes_are_counted_and_the_backlog_gauges_read_the_rows(
    committing_client: httpx.AsyncClient,
    jwt_keys: JwtKeys,
    engine: AsyncEngine,
    ctx: DeliveryContext,
    receiver: Receiver,
) -> None:
    from prometheus_client import REGISTRY

    def value(name: str, **labels: str) -> float:
        return REGISTRY.get_sample_value(name, labels) or 0.0

    receiver.answer = sequence(503)
    await subscribe(committing_client, jwt_keys, receiver.url)
    before = {
        "ok": value("webhook_deliveries_total", outcome="succeeded"),
        "retry": value("webhook_deliveries_total", outcome="retry"),
        "2xx": value("webhook_attempts_total", status_class="2xx"),
        "5xx": value("webhook_attempts_total", status_class="5xx"),
        "latency": value("webhook_event_to_delivered_seconds_count"),
    }
    delivered, waiting = task_event(), task_event()
    await publish(engine, delivered)
    await publish(engine, waiting)
    assert await attempt_until_settled(ctx, (await delivery_of(engine, delivered)).id) == [
        "failed",
        "succeeded",
    ]
    assert value("webhook_deliveries_total", outcome="succeeded") == before["ok"] + 1
    assert value("webhook_deliveries_total", outcome="retry") == before["retry"] + 1
    assert value("webhook_attempts_total", status_class="2xx") == before["2xx"] + 1
    assert value("webhook_attempts_total", status_class="5xx") == before["5xx"] + 1
    assert value("webhook_event_to_delivered_seconds_count") == before["latency"] + 1
    assert await dispatch.update_backlog(ctx) == (1, 0)  # the waiting one; none dead
    assert value("webhook_deliveries_backlog", status="pending") == 1.0
