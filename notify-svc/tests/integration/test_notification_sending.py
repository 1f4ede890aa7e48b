"""Notifications against real commits and a real SMTP server (aiosmtpd): ad-hoc mails, retries
with backoff then failed, retry by hand, the event fan-out once per (rule, event, recipient),
sign-off mails, skipped recipients, a worker lost on the last attempt, one-off signed webhooks."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from prometheus_client import REGISTRY
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from standardwebhooks.webhooks import Webhook

from blueprint_stack.smtp_sink import MailCatcher
from contracts.envelope import CloudEvent
from contracts.tasks import DeliverableReadyForSignoffV1, TaskAssignedV1
from notify_svc.delivery import dispatch
from notify_svc.delivery.context import DeliveryContext
from notify_svc.events.handlers import fan_out, notify_event
from notify_svc.notifications import sending
from notify_svc.notifications.models import Notification
from notify_svc.receiver import Receiver
from notify_svc.settings import Settings
from servicekit.testing.plugin import JwtKeys

BASE = "/api/v1/notifications"
ORG = uuid.UUID("00000000-0000-4000-8000-00000000000a")


@pytest.fixture
def smtp() -> Iterator[MailCatcher]:
    with MailCatcher() as catcher:
        yield catcher


@pytest.fixture
async def ctx(
    settings: Settings, committing_app: Any, smtp: MailCatcher
) -> AsyncIterator[DeliveryContext]:
    mail_settings = settings.model_copy(update={"smtp_port": smtp.port})
    context = DeliveryContext.create(mail_settings, pool_size=4)
    yield context
    await context.close()


def headers(jwt_keys: JwtKeys) -> dict[str, str]:
    return jwt_keys.headers(["planner"], org_id=ORG)


async def email_job(client: httpx.AsyncClient, jwt_keys: JwtKeys, **body: Any) -> str:
    payload = {"to": "ops@example.com", "subject": "Line 2", "body": "Stops at 14:00.", **body}
    resp = await client.post(f"{BASE}/email", json=payload, headers=headers(jwt_keys))
    assert resp.status_code == 202, resp.text
    job_id: str = resp.json()["job_id"]
    return job_id


async def send_until_settled(ctx: DeliveryContext, job_id: str | uuid.UUID) -> list[str]:
    """Attempt whenever due (the tests' backoff is 0.1 s) until sent, failed or skipped."""
    outcomes: list[str] = []
    for _ in range(100):
        outcome = await sending.send(ctx, uuid.UUID(str(job_id)))
        if outcome != "not_claimed":
            outcomes.append(outcome)
        if outcome in ("sent", "failed", "skipped"):
            return outcomes
        await asyncio.sleep(0.05)
    raise AssertionError(f"not settled: {outcomes}")


async def test_an_email_job_is_sent_once_as_text_and_html(
    committing_client: httpx.AsyncClient, jwt_keys: JwtKeys, ctx: DeliveryContext,
    smtp: MailCatcher,
) -> None:  # fmt: skip
    job_id = await email_job(committing_client, jwt_keys, body="Maintenance <b>at</b> 14:00.")
    assert await send_until_settled(ctx, job_id) == ["sent"]
    assert await sending.send(ctx, uuid.UUID(job_id)) == "not_claimed"  # a repeated message
    [mail] = smtp.messages()
    assert (mail["To"], mail["Subject"]) == ("ops@example.com", "Line 2")
    assert mail["Message-ID"] == f"<{job_id}@blueprint.notifications>"
    plain = mail.get_body(("plain",))
    html = mail.get_body(("html",))
    assert plain is not None and "Maintenance <b>at</b> 14:00." in plain.get_content()
    assert html is not None and "Maintenance &lt;b&gt;at&lt;/b&gt; 14:00." in html.get_content()
    job = (await committing_client.get(f"{BASE}/jobs/{job_id}", headers=headers(jwt_keys))).json()
    assert (job["status"], job["attempts"], job["sent_to"]) == ("sent", 1, "ops@example.com")
    assert [a["outcome"] for a in job["history"]] == ["sent"]


async def test_refused_twice_then_accepted_arrives_on_the_third_attempt(
    committing_client: httpx.AsyncClient, jwt_keys: JwtKeys, ctx: DeliveryContext,
    smtp: MailCatcher,
) -> None:  # fmt: skip
    smtp.refuse = 2
    job_id = await email_job(committing_client, jwt_keys)
    assert await send_until_settled(ctx, job_id) == ["retry", "retry", "sent"]
    assert len(smtp.messages()) == 1 and smtp.refused == 2
    job = (await committing_client.get(f"{BASE}/jobs/{job_id}", headers=headers(jwt_keys))).json()
    assert [a["outcome"] for a in job["history"]] == ["error", "error", "sent"]
    assert "451" in job["history"][0]["error"]


async def test_always_refused_is_failed_after_3_attempts_listed_and_retry_sends_it_once(
    committing_client: httpx.AsyncClient, jwt_keys: JwtKeys, ctx: DeliveryContext,
    smtp: MailCatcher,
) -> None:  # fmt: skip
    smtp.refuse_always = True
    job_id = await email_job(committing_client, jwt_keys)
    assert await send_until_settled(ctx, job_id) == ["retry", "retry", "failed"]
    failed = await committing_client.get(
        f"{BASE}/jobs", params={"status": "failed"}, headers=headers(jwt_keys)
    )
    [item] = failed.json()["items"]
    assert (item["id"], item["attempts"]) == (job_id, 3)
    assert "451" in item["last_error"]
    smtp.refuse_always = False
    retried = await committing_client.post(f"{BASE}/jobs/{job_id}/retry", headers=headers(jwt_keys))
    assert retried.status_code == 202 and retried.json()["status"] == "queued"
    assert await sending.due_ids(ctx) == [uuid.UUID(job_id)]
    assert await send_until_settled(ctx, job_id) == ["sent"]
    assert len(smtp.messages()) == 1


def assigned_event(assignee: uuid.UUID) -> CloudEvent[Any]:
    now = datetime.now(UTC)
    data = TaskAssignedV1(
        task_id=uuid.uuid4(), org_id=ORG, project_id=uuid.uuid4(), deliverable_id=uuid.uuid4(),
        node_key="cut", row_version=2, occurred_at=now, assigned_to=assignee, actor="planner",
    )  # fmt: skip
    return CloudEvent[TaskAssignedV1](
        id=str(uuid.uuid4()), source="task-svc", type="task.assigned", time=now,
        subject=str(data.task_id), data=data,
    )  # fmt: skip


def signoff_event() -> CloudEvent[Any]:
    now = datetime.now(UTC)
    data = DeliverableReadyForSignoffV1(
        deliverable_id=uuid.uuid4(), org_id=ORG, project_id=uuid.uuid4(), serial="CAB-000042",
        row_version=3, occurred_at=now,
    )  # fmt: skip
    return CloudEvent[DeliverableReadyForSignoffV1](
        id=str(uuid.uuid4()), source="task-svc", type="deliverable.ready_for_signoff", time=now,
        subject=str(data.deliverable_id), data=data,
    )  # fmt: skip


async def consume(engine: AsyncEngine, event: CloudEvent[Any]) -> list[uuid.UUID]:
    async with AsyncSession(engine) as session, session.begin():
        await fan_out(session, event)
        return await notify_event(session, event, max_attempts=3)


async def test_an_event_writes_one_notification_per_recipient_once(
    committing_client: httpx.AsyncClient, jwt_keys: JwtKeys, engine: AsyncEngine
) -> None:
    await committing_client.put(
        f"{BASE}/rules",
        json={"rules": [{"event_type": "task.assigned", "recipients": [
            {"kind": "assignee"}, {"kind": "address", "address": "shift-lead@example.com"}]}]},
        headers=headers(jwt_keys),
    )  # fmt: skip
    event = assigned_event(uuid.uuid4())
    assert len(await consume(engine, event)) == 2
    assert await consume(engine, event) == []  # the event again: nothing more
    unassigned = assigned_event(uuid.uuid4())
    unassigned.data.__dict__["assigned_to"] = None
    assert await consume(engine, unassigned) == []
    await committing_client.put(
        f"{BASE}/rules", json={"rules": [{"event_type": "task.assigned", "enabled": False}]},
        headers=headers(jwt_keys),
    )  # fmt: skip
    assert await consume(engine, assigned_event(uuid.uuid4())) == []
    async with AsyncSession(engine) as session:
        assert await session.scalar(select(func.count()).select_from(Notification)) == 2


async def test_a_deliverable_ready_for_signoff_mails_the_approvers_with_a_link(
    committing_client: httpx.AsyncClient, jwt_keys: JwtKeys, engine: AsyncEngine,
    ctx: DeliveryContext, smtp: MailCatcher,
) -> None:  # fmt: skip
    event = signoff_event()
    [skipped] = await consume(engine, event)  # no approvers' address yet
    assert await send_until_settled(ctx, skipped) == ["skipped"]
    job = (await committing_client.get(f"{BASE}/jobs/{skipped}", headers=headers(jwt_keys))).json()
    assert "approvers_email" in job["last_error"]
    await committing_client.put(
        f"{BASE}/settings", json={"approvers_email": "approvers@example.com"},
        headers=headers(jwt_keys),
    )  # fmt: skip
    ready = signoff_event()
    [sent] = await consume(engine, ready)
    assert await send_until_settled(ctx, sent) == ["sent"]
    [mail] = smtp.messages()
    assert mail["To"] == "approvers@example.com"
    assert mail["Subject"] == "Ready for sign-off: CAB-000042"
    plain = mail.get_body(("plain",))
    assert plain is not None
    link = f"{ctx.settings.public_base_url}/api/v1/deliverables/{ready.data.deliverable_id}"
    assert link in plain.get_content() and "CAB-000042" in plain.get_content()


async def test_a_user_without_a_contact_or_asking_for_quiet_is_skipped_visibly(
    committing_client: httpx.AsyncClient, jwt_keys: JwtKeys, ctx: DeliveryContext,
    smtp: MailCatcher,
) -> None:  # fmt: skip
    user = uuid.uuid4()
    await committing_client.put(
        f"{BASE}/contacts/{user}", json={"email": "quiet@example.com", "quiet": True},
        headers=headers(jwt_keys),
    )  # fmt: skip
    job_id = await email_job(committing_client, jwt_keys, to=None, to_user=str(user))
    assert await send_until_settled(ctx, job_id) == ["skipped"]
    job = (await committing_client.get(f"{BASE}/jobs/{job_id}", headers=headers(jwt_keys))).json()
    assert job["status"] == "skipped" and "quiet" in job["last_error"]
    assert smtp.messages() == []


async def test_a_worker_lost_on_the_last_attempt_leaves_the_job_visibly_failed(
    committing_client: httpx.AsyncClient, jwt_keys: JwtKeys, engine: AsyncEngine,
    ctx: DeliveryContext,
) -> None:  # fmt: skip
    job_id = await email_job(committing_client, jwt_keys)
    async with AsyncSession(engine) as session, session.begin():
        await session.execute(
            text(
                "UPDATE notification SET status = 'sending', attempts = 3, "
                "claimed_until = now() - interval '1 second' WHERE id = :id"
            ),
            {"id": job_id},
        )  # the state a worker SIGKILLed in its third attempt leaves behind
    assert await sending.due_ids(ctx) == []
    job = (await committing_client.get(f"{BASE}/jobs/{job_id}", headers=headers(jwt_keys))).json()
    assert job["status"] == "failed" and "worker was lost" in job["last_error"]
    assert job["history"][-1]["error"] == "the worker was lost during this attempt"


async def test_a_worker_lost_after_handing_a_mail_over_is_failed_not_sent_twice(
    committing_client: httpx.AsyncClient, jwt_keys: JwtKeys, engine: AsyncEngine,
    ctx: DeliveryContext, smtp: MailCatcher,
) -> None:  # fmt: skip
    handed, early = (
        await email_job(committing_client, jwt_keys),
        await email_job(committing_client, jwt_keys, subject="Early"),
    )
    async with AsyncSession(engine) as session, session.begin():
        for job_id, handed_over in ((handed, "now()"), (early, "NULL")):
            await session.execute(
                text(
                    "UPDATE notification SET status = 'sending', attempts = 1, "
                    f"handed_over_at = {handed_over}, "
                    "claimed_until = now() - interval '1 second' WHERE id = :id"
                ),
                {"id": job_id},
            )  # killed with the mail at the SMTP server, and killed before it
    assert await sending.due_ids(ctx) == [uuid.UUID(early)]
    job = (await committing_client.get(f"{BASE}/jobs/{handed}", headers=headers(jwt_keys))).json()
    assert job["status"] == "failed" and "may or may not have been sent" in job["last_error"]
    assert await send_until_settled(ctx, early) == ["sent"]
    assert await sending.send(ctx, uuid.UUID(handed)) == "not_claimed"
    assert [m["Subject"] for m in smtp.messages()] == ["Early"]


async def test_a_one_off_webhook_is_signed_with_the_org_secret(
    committing_client: httpx.AsyncClient, jwt_keys: JwtKeys, ctx: DeliveryContext
) -> None:
    secret = (
        await committing_client.post(f"{BASE}/settings/webhook-secret", headers=headers(jwt_keys))
    ).json()["secret"]
    with Receiver() as receiver:
        resp = await committing_client.post(
            f"{BASE}/webhook", json={"url": receiver.url, "payload": {"units": 418}},
            headers=headers(jwt_keys),
        )  # fmt: skip
        job_id = resp.json()["job_id"]
        assert await send_until_settled(ctx, job_id) == ["sent"]
        [request] = receiver.requests()
    assert Webhook(secret).verify(request.body, request.headers) == {"units": 418}
    assert request.webhook_id == job_id


async def test_pruning_removes_settled_notifications_past_the_retention_only(
    committing_client: httpx.AsyncClient, jwt_keys: JwtKeys, engine: AsyncEngine,
    ctx: DeliveryContext,
) -> None:  # fmt: skip
    from notify_svc.delivery import dispatch

    old_sent = await email_job(committing_client, jwt_keys, subject="a")
    old_failed = await email_job(committing_client, jwt_keys, subject="b")
    new_sent = await email_job(committing_client, jwt_keys, subject="c")
    async with AsyncSession(engine) as session, session.begin():
        for job_id, status, age in ((old_sent, "sent", 40), (old_failed, "failed", 40),
                                    (new_sent, "sent", 1)):  # fmt: skip
            await session.execute(
                text(
                    "UPDATE notification SET status = :status, "
                    "updated_at = now() - make_interval(days => :age) WHERE id = :id"
                ),
                {"id": job_id, "status": status, "age": age},
            )
    await dispatch.prune(ctx)
    async with AsyncSession(engine) as session:
        left = set((await session.execute(select(Notification.id))).scalars())
    assert left == {uuid.UUID(old_failed), uuid.UUID(new_sent)}


async def test_waiting_notifications_and_the_oldest_ones_age_are_gauged_from_the_table(
    committing_client: httpx.AsyncClient, jwt_keys: JwtKeys, ctx: DeliveryContext,
    smtp: MailCatcher,
) -> None:  # fmt: skip
    first = await email_job(committing_client, jwt_keys, subject="first")
    await email_job(committing_client, jwt_keys, subject="second")
    queued, sending_, oldest = await dispatch.update_notification_backlog(ctx)
    assert (queued, sending_) == (2, 0) and oldest > 0
    assert gauge("notifications_waiting", status="queued") == 2.0
    assert gauge("notification_oldest_waiting_age_seconds") == oldest
    assert await send_until_settled(ctx, first) == ["sent"]
    assert (await dispatch.update_notification_backlog(ctx))[:2] == (1, 0)
    assert gauge("notifications_waiting", status="queued") == 1.0


def gauge(name: str, **labels: str) -> float | None:
    return REGISTRY.get_sample_value(name, labels)
