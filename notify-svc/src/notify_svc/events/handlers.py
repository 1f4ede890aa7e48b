"""The events notify-svc consumes: every event type of the catalogue, fanned out to endpoints,
and those that e-mail people turned into notifications (`notifications.fanout`).

In the consumer's transaction, with the event's inbox row: one delivery per active endpoint of
the event's org whose filters match (unique on endpoint and event, so a redelivered event adds
nothing), and the event's body stored once. A NOTIFY, sent by PostgreSQL only at commit, wakes
the dispatcher that enqueues the new deliveries at once.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.envelope import CloudEvent
from contracts.registry import all_events
from notify_svc.notifications.fanout import notify_event
from notify_svc.settings import Settings
from notify_svc.webhooks import metrics
from notify_svc.webhooks.matching import MATCH_SQL
from servicekit.events.handlers import EventHandlers

WAKE_CHANNEL = "notify_webhook_deliveries"

FAN_OUT_SQL = text(
    f"""
    WITH target AS (
        SELECT e.id FROM webhook_endpoint e
        WHERE e.org_id = :org_id AND e.active AND {MATCH_SQL}
    ), stored AS (
        INSERT INTO webhook_event (id, org_id, type, subject, body, occurred_at)
        SELECT :event_id, :org_id, :event_type, :subject, :body, :occurred_at
        WHERE EXISTS (SELECT 1 FROM target)
        ON CONFLICT (id) DO NOTHING
    )
    INSERT INTO webhook_delivery
        (id, org_id, endpoint_id, event_id, event_type, subject, event_time, status,
         next_attempt_at)
    SELECT gen_random_uuid(), :org_id, t.id, :event_id, :event_type, :subject, :occurred_at,
           'pending', now()
    FROM target t
    ON CONFLICT (endpoint_id, event_id) DO NOTHING
    RETURNING id
    """  # noqa: S608 - MATCH_SQL is a constant
)
WAKE_SQL = text(f"SELECT pg_notify('{WAKE_CHANNEL}', '')")


def body_of(event: CloudEvent[Any]) -> str:
    """The JSON body subscribers receive: the CloudEvent as published, without empty fields."""
    return event.model_dump_json(exclude_none=True)


async def fan_out(session: AsyncSession, event: CloudEvent[Any]) -> int:
    """Write the deliveries of `event`; returns how many were new."""
    org_id = getattr(event.data, "org_id", None)
    if org_id is None:
        return 0
    rows = await session.execute(
        FAN_OUT_SQL,
        {
            "org_id": org_id,
            "event_id": event.id,
            "event_type": event.type,
            "subject": event.subject,
            "body": body_of(event),
            "occurred_at": event.time,
        },
    )
    created = len(rows.all())
    if created:
        await session.execute(WAKE_SQL)
        metrics.DELIVERIES_CREATED.inc(created)
    return created


@cache
def _max_attempts() -> int:
    return Settings().notification_max_attempts


async def _handle(session: AsyncSession, event: CloudEvent[Any]) -> None:
    await fan_out(session, event)
    if await notify_event(session, event, max_attempts=_max_attempts()):
        await session.execute(WAKE_SQL)


def _handlers() -> EventHandlers:
    registry = EventHandlers()
    latest = {spec.event_type: spec for spec in all_events()}
    for spec in latest.values():
        registry.add(spec.model, _handle, producer=spec.producer)
    return registry


handlers = _handlers()
