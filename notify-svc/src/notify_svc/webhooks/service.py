"""Rules of webhook endpoints: create (secret shown once), read, list, change, delete, rotate."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from notify_svc.settings import Settings
from notify_svc.webhooks import signing, ssrf
from notify_svc.webhooks.matching import unknown_patterns
from notify_svc.webhooks.models import WebhookEndpoint
from servicekit.conditional import ExpectedVersion, check_version
from servicekit.errors import NotFound, Unprocessable
from servicekit.pagination import as_datetime, as_uuid, cut_page, decode_cursor, encode_cursor


async def check_url(url: str, *, settings: Settings) -> None:
    """422 `URL_NOT_ALLOWED` naming the rule when webhooks may not go to `url`."""
    try:
        await ssrf.check_url(
            url,
            allowed=ssrf.parse_networks(settings.webhook_allowed_networks),
            require_https=settings.webhook_require_https,
        )
    except ssrf.UrlRefused as refused:
        raise Unprocessable(
            refused.detail,
            code="URL_NOT_ALLOWED",
            rule=refused.rule,
            errors=[{"in": "body", "field": "url", "message": refused.detail}],
        ) from None


def check_event_types(patterns: list[str]) -> list[str]:
    """The patterns without duplicates; 422 naming those no event type matches."""
    unknown = unknown_patterns(patterns)
    if unknown:
        raise Unprocessable(
            f"no event type matches {unknown}: see GET /api/v1/webhooks/event-types",
            code="EVENT_TYPE_UNKNOWN",
            errors=[
                {"in": "body", "field": f"event_types[{patterns.index(p)}]", "message": p}
                for p in unknown
            ],
        )
    return list(dict.fromkeys(patterns))


async def create_endpoint(
    session: AsyncSession,
    *,
    settings: Settings,
    org_id: uuid.UUID,
    url: str,
    description: str,
    event_types: list[str],
    rate_limit_per_second: int | None,
    ordering: str,
) -> tuple[WebhookEndpoint, str]:
    """The endpoint and its secret in clear (to be shown once)."""
    patterns = check_event_types(event_types)
    await check_url(url, settings=settings)
    secret = signing.new_secret()
    now = datetime.now(UTC)
    endpoint = WebhookEndpoint(
        id=uuid.uuid4(),
        org_id=org_id,
        url=url,
        description=description,
        event_types=patterns,
        rate_limit_per_second=rate_limit_per_second,
        ordering=ordering,
        active=True,
        secret_encrypted=signing.SecretBox(settings).encrypt(secret),
        row_version=1,
        created_at=now,
        updated_at=now,
    )
    session.add(endpoint)
    await session.flush()
    return endpoint, secret


async def get_endpoint(
    session: AsyncSession, *, org_id: uuid.UUID, endpoint_id: uuid.UUID, lock: bool = False
) -> WebhookEndpoint:
    query = select(WebhookEndpoint).where(
        WebhookEndpoint.id == endpoint_id, WebhookEndpoint.org_id == org_id
    )
    if lock:
        query = query.with_for_update()
    endpoint = (await session.execute(query)).scalar_one_or_none()
    if endpoint is None:
        raise NotFound(f"no webhook endpoint {endpoint_id} in this org", code="ENDPOINT_NOT_FOUND")
    return endpoint


async def list_endpoints(
    session: AsyncSession, *, org_id: uuid.UUID, limit: int, cursor: str | None
) -> tuple[list[WebhookEndpoint], str | None]:
    query = select(WebhookEndpoint).where(WebhookEndpoint.org_id == org_id)
    after = decode_cursor(cursor, as_datetime, as_uuid)
    if after is not None:
        query = query.where(
            tuple_(WebhookEndpoint.created_at, WebhookEndpoint.id) > tuple_(after[0], after[1])
        )
    query = query.order_by(WebhookEndpoint.created_at, WebhookEndpoint.id).limit(limit + 1)
    rows = list((await session.execute(query)).scalars())
    page, last = cut_page(rows, limit)
    return page, (encode_cursor([last.created_at, last.id]) if last is not None else None)


async def update_endpoint(
    session: AsyncSession,
    *,
    settings: Settings,
    org_id: uuid.UUID,
    endpoint_id: uuid.UUID,
    expected: ExpectedVersion | None,
    changes: dict[str, Any],
) -> WebhookEndpoint:
    """Apply the fields that were sent; re-enabling clears the disabled reason and streak."""
    endpoint = await get_endpoint(session, org_id=org_id, endpoint_id=endpoint_id, lock=True)
    check_version(
        expected,
        current_row_version=endpoint.row_version,
        current_status="active" if endpoint.active else "disabled",
        what=f"webhook endpoint {endpoint_id}",
    )
    if changes.get("event_types") is not None:
        changes["event_types"] = check_event_types(changes["event_types"])
    if changes.get("url") is not None:
        await check_url(changes["url"], settings=settings)
    for name in ("url", "description", "event_types", "ordering"):
        if changes.get(name) is not None:
            setattr(endpoint, name, changes[name])
    if "rate_limit_per_second" in changes:  # null removes the limit
        endpoint.rate_limit_per_second = changes["rate_limit_per_second"]
    if changes.get("active") is not None and changes["active"] != endpoint.active:
        endpoint.active = changes["active"]
        endpoint.failing_since = None
        endpoint.disabled_at = None if endpoint.active else datetime.now(UTC)
        endpoint.disabled_reason = None if endpoint.active else "disabled by a user"
    endpoint.row_version += 1
    endpoint.updated_at = datetime.now(UTC)
    await session.flush()
    return endpoint


async def delete_endpoint(
    session: AsyncSession,
    *,
    org_id: uuid.UUID,
    endpoint_id: uuid.UUID,
    expected: ExpectedVersion | None,
) -> None:
    """The endpoint and its deliveries are removed; nothing more is sent to it."""
    endpoint = await get_endpoint(session, org_id=org_id, endpoint_id=endpoint_id, lock=True)
    check_version(
        expected,
        current_row_version=endpoint.row_version,
        current_status="active" if endpoint.active else "disabled",
        what=f"webhook endpoint {endpoint_id}",
    )
    await session.execute(delete(WebhookEndpoint).where(WebhookEndpoint.id == endpoint.id))


async def rotate_secret(
    session: AsyncSession,
    *,
    settings: Settings,
    org_id: uuid.UUID,
    endpoint_id: uuid.UUID,
    grace_period_seconds: int | None,
) -> tuple[WebhookEndpoint, str]:
    """A new secret; the current one keeps signing too until the grace period ends."""
    endpoint = await get_endpoint(session, org_id=org_id, endpoint_id=endpoint_id, lock=True)
    grace = (
        settings.webhook_rotation_grace_seconds
        if grace_period_seconds is None
        else grace_period_seconds
    )
    box = signing.SecretBox(settings)
    secret = signing.new_secret()
    now = datetime.now(UTC)
    if grace > 0:
        endpoint.previous_secret_encrypted = endpoint.secret_encrypted
        endpoint.previous_secret_expires_at = now + timedelta(seconds=grace)
    else:
        endpoint.previous_secret_encrypted = None
        endpoint.previous_secret_expires_at = None
    endpoint.secret_encrypted = box.encrypt(secret)
    endpoint.row_version += 1
    endpoint.updated_at = now
    await session.flush()
    return endpoint, secret
