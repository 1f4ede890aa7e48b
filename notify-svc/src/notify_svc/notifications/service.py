"""Rules of contacts, per-org notification rules and settings (admin and planner; a user edits
their own contact)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from notify_svc.notifications import rules
from notify_svc.notifications.models import Contact, OrgSettings, Rule
from notify_svc.notifications.repository import DEFAULT_LEAD_MINUTES
from notify_svc.notifications.schemas import (
    ContactUpdate,
    RuleRead,
    RulesUpdate,
    SettingsRead,
    SettingsUpdate,
)
from notify_svc.settings import Settings
from notify_svc.webhooks import signing
from servicekit.auth import Principal
from servicekit.errors import Forbidden, NotFound, Unprocessable

MANAGERS = frozenset({"admin", "planner"})


def check_contact_access(principal: Principal, user_id: uuid.UUID) -> None:
    """A user reaches their own contact; admin and planner everyone's in their org."""
    if principal.sub == str(user_id) or principal.has_any(MANAGERS):
        return
    raise Forbidden(
        "you may read and change only your own contact (admin and planner: anyone's)",
        code="ROLE_REQUIRED",
    )


async def put_contact(
    session: AsyncSession, *, org_id: uuid.UUID, user_id: uuid.UUID, body: ContactUpdate
) -> Contact:
    now = datetime.now(UTC)
    values = body.model_dump()
    statement = (
        insert(Contact)
        .values(org_id=org_id, user_id=user_id, created_at=now, updated_at=now, **values)
        .on_conflict_do_update(
            index_elements=["org_id", "user_id"], set_={**values, "updated_at": now}
        )
        .returning(Contact)
    )
    contact: Contact = (await session.execute(statement)).scalar_one()
    return contact


async def get_contact(session: AsyncSession, *, org_id: uuid.UUID, user_id: uuid.UUID) -> Contact:
    contact = await session.get(Contact, (org_id, user_id))
    if contact is None:
        raise NotFound(
            f"user {user_id} has no contact in this org: PUT /api/v1/notifications/contacts/"
            f"{user_id} first",
            code="CONTACT_NOT_FOUND",
        )
    return contact


async def list_rules(session: AsyncSession, *, org_id: uuid.UUID) -> list[RuleRead]:
    stored = {
        r.event_type: r
        for r in (await session.execute(select(Rule).where(Rule.org_id == org_id))).scalars()
    }
    out = []
    for event_type, default in rules.defaults().items():
        row = stored.get(event_type)
        out.append(
            RuleRead.model_validate(
                {
                    "event_type": event_type,
                    "description": rules.CATALOGUE[event_type][0],
                    "enabled": row.enabled if row else default["enabled"],
                    "recipients": row.recipients if row else default["recipients"],
                    "is_default": row is None,
                }
            )
        )
    return out


def check_event_types(body: RulesUpdate) -> None:
    """422 EVENT_TYPE_UNKNOWN naming each rule whose event type e-mails nobody."""
    known = list(rules.CATALOGUE)
    errors = [
        {
            "in": "body",
            "field": f"rules[{i}].event_type",
            "message": f"{r.event_type!r} is not one of {', '.join(known)}",
        }
        for i, r in enumerate(body.rules)
        if r.event_type not in rules.CATALOGUE
    ]
    if errors:
        unknown = [r.event_type for r in body.rules if r.event_type not in rules.CATALOGUE]
        raise Unprocessable(
            f"no notification rule exists for {unknown}: rules can name {', '.join(known)}",
            code="EVENT_TYPE_UNKNOWN",
            errors=errors,
        )
    seen: set[str] = set()
    for i, r in enumerate(body.rules):
        if r.event_type in seen:
            raise Unprocessable(
                f"{r.event_type!r} is listed twice: send one rule per event type",
                code="VALIDATION_FAILED",
                title="Request is not valid",
                errors=[{"in": "body", "field": f"rules[{i}].event_type", "message": "twice"}],
            )
        seen.add(r.event_type)


async def put_rules(
    session: AsyncSession, *, org_id: uuid.UUID, body: RulesUpdate
) -> list[RuleRead]:
    check_event_types(body)
    now = datetime.now(UTC)
    for item in body.rules:
        recipients: list[dict[str, Any]] = [
            r.model_dump(exclude_none=True) for r in item.recipients
        ]
        values = {"enabled": item.enabled, "recipients": recipients, "updated_at": now}
        await session.execute(
            insert(Rule)
            .values(org_id=org_id, event_type=item.event_type, **values)
            .on_conflict_do_update(index_elements=["org_id", "event_type"], set_=values)
        )
    return await list_rules(session, org_id=org_id)


def _settings_read(row: OrgSettings | None) -> SettingsRead:
    if row is None:
        return SettingsRead(
            reminder_lead_minutes=DEFAULT_LEAD_MINUTES,
            overdue_notices=True,
            approvers_email=None,
            webhook_secret_set=False,
            updated_at=None,
        )
    return SettingsRead(
        reminder_lead_minutes=row.reminder_lead_minutes,
        overdue_notices=row.overdue_notices,
        approvers_email=row.approvers_email,
        webhook_secret_set=row.webhook_secret_encrypted is not None,
        updated_at=row.updated_at,
    )


async def get_settings(session: AsyncSession, *, org_id: uuid.UUID) -> SettingsRead:
    return _settings_read(await session.get(OrgSettings, org_id))


async def put_settings(
    session: AsyncSession, *, org_id: uuid.UUID, body: SettingsUpdate
) -> SettingsRead:
    values = {**body.model_dump(), "updated_at": datetime.now(UTC)}
    row = (
        await session.execute(
            insert(OrgSettings)
            .values(org_id=org_id, **values)
            .on_conflict_do_update(index_elements=["org_id"], set_=values)
            .returning(OrgSettings)
        )
    ).scalar_one()
    return _settings_read(row)


async def new_webhook_secret(
    session: AsyncSession, *, settings: Settings, org_id: uuid.UUID
) -> str:
    """A new org secret for one-off webhook jobs (replacing the old one at once)."""
    secret = signing.new_secret()
    encrypted = signing.SecretBox(settings).encrypt(secret)
    now = datetime.now(UTC)
    await session.execute(
        insert(OrgSettings)
        .values(org_id=org_id, webhook_secret_encrypted=encrypted, updated_at=now)
        .on_conflict_do_update(
            index_elements=["org_id"],
            set_={"webhook_secret_encrypted": encrypted, "updated_at": now},
        )
    )
    return secret
