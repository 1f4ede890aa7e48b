"""Queries of notifications: an org's effective rules and settings, and writing notifications
idempotently (unique per org and dedup key)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from notify_svc.notifications import rules
from notify_svc.notifications.models import Notification, OrgSettings, Rule

DEFAULT_LEAD_MINUTES = 60


async def effective_rules(
    session: AsyncSession, org_ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, dict[str, dict[str, Any]]]:
    """Per org, every rule: the stored ones over the defaults."""
    orgs = list(dict.fromkeys(org_ids))
    out = {org: rules.defaults() for org in orgs}
    if not orgs:
        return out
    stored = await session.execute(select(Rule).where(Rule.org_id.in_(orgs)))
    for rule in stored.scalars():
        out[rule.org_id][rule.event_type] = {
            "event_type": rule.event_type,
            "enabled": rule.enabled,
            "recipients": rule.recipients,
        }
    return out


async def org_settings(
    session: AsyncSession, org_ids: Iterable[uuid.UUID] | None = None
) -> dict[uuid.UUID, OrgSettings]:
    query = select(OrgSettings)
    if org_ids is not None:
        query = query.where(OrgSettings.org_id.in_(list(org_ids)))
    return {s.org_id: s for s in (await session.execute(query)).scalars()}


def notification_row(
    *,
    org_id: uuid.UUID,
    rule: str,
    subject: str,
    recipient: dict[str, Any],
    context: dict[str, Any],
    max_attempts: int,
    event_id: str | None = None,
) -> dict[str, Any]:
    """The values of one e-mail notification for a rule's recipient."""
    now = datetime.now(UTC)
    return {
        "id": uuid.uuid4(),
        "org_id": org_id,
        "channel": "email",
        "rule": rule,
        "dedup_key": rules.dedup_key(rule, subject, recipient),
        "event_id": event_id,
        "recipient_kind": recipient["kind"],
        "recipient_user_id": _uuid_or_none(recipient.get("user_id")),
        "to_address": recipient.get("address"),
        "context": context,
        "status": "queued",
        "attempts": 0,
        "max_attempts": max_attempts,
        "next_attempt_at": now,
        "created_at": now,
        "updated_at": now,
    }


def _uuid_or_none(value: Any) -> uuid.UUID | None:
    return value if value is None or isinstance(value, uuid.UUID) else uuid.UUID(str(value))


async def insert_new(session: AsyncSession, rows: list[dict[str, Any]]) -> list[uuid.UUID]:
    """Write the rows whose (org, dedup key) is new; the ids of those written."""
    if not rows:
        return []
    statement = (
        insert(Notification)
        .values(rows)
        .on_conflict_do_nothing(index_elements=["org_id", "dedup_key"])
        .returning(Notification.id)
    )
    return [row[0] for row in await session.execute(statement)]
