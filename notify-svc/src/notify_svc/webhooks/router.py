"""/api/v1/webhooks/endpoints and /event-types: subscriptions of an org (admin and planner)."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Header, Request, Response
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.catalogue import json_schema
from contracts.registry import all_events
from notify_svc.settings import Settings
from notify_svc.webhooks import service
from notify_svc.webhooks.models import IDEMPOTENCY, WebhookEndpoint
from notify_svc.webhooks.schemas import (
    EndpointCreate,
    EndpointCreated,
    EndpointPage,
    EndpointRead,
    EndpointUpdate,
    EventTypeList,
    EventTypeRead,
    RotateSecret,
    SecretRotated,
)
from servicekit.auth import Principal, require_roles
from servicekit.conditional import etag, expected_version
from servicekit.db import unit_of_work
from servicekit.idempotency import request_fingerprint, run_idempotent
from servicekit.pagination import DEFAULT_LIMIT, Cursor, Limit

PREFIX = "/api/v1/webhooks"
router = APIRouter(prefix=PREFIX, tags=["webhooks"])

Subscriber = Annotated[Principal, Depends(require_roles("planner"))]

REFUSALS: dict[int | str, dict[str, Any]] = {
    404: {"description": "ENDPOINT_NOT_FOUND: no such endpoint in your org"},
    422: {
        "description": "VALIDATION_FAILED (a field); URL_NOT_ALLOWED (`rule`: loopback, private, "
        "link_local, carrier_grade_nat, multicast, metadata, unresolvable, scheme, "
        "https_required...); EVENT_TYPE_UNKNOWN (a pattern no event type matches)"
    },
}


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def _read(endpoint: WebhookEndpoint) -> EndpointRead:
    return EndpointRead.model_validate(endpoint)


@router.post(
    "/endpoints",
    status_code=201,
    response_model=EndpointCreated,
    summary="Subscribe an endpoint; the signing secret is in this answer only",
    responses={422: REFUSALS[422]},
)
async def create_endpoint(
    *,
    body: EndpointCreate,
    request: Request,
    idempotency_key: str | None = Header(default=None, alias="Idempotency-Key"),
    principal: Subscriber,
    session: AsyncSession = unit_of_work(),
) -> Response:
    fingerprint = await request_fingerprint(request)

    async def create() -> tuple[dict[str, Any], dict[str, str]]:
        endpoint, secret = await service.create_endpoint(
            session,
            settings=_settings(request),
            org_id=principal.org,
            url=body.url,
            description=body.description,
            event_types=body.event_types,
            rate_limit_per_second=body.rate_limit_per_second,
            ordering=body.ordering,
        )
        out = EndpointCreated(**_read(endpoint).model_dump(), secret=secret)
        headers = {
            "ETag": etag(endpoint.row_version),
            "Location": f"{PREFIX}/endpoints/{endpoint.id}",
        }
        return out.model_dump(mode="json"), headers

    answer = await run_idempotent(
        session,
        IDEMPOTENCY,
        org_id=principal.org,
        key=idempotency_key,
        req_hash=fingerprint,
        create=create,
    )
    return answer.response()


@router.get("/endpoints", response_model=EndpointPage, summary="List endpoints (cursor)")
async def list_endpoints(
    *,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
    principal: Subscriber,
    session: AsyncSession = unit_of_work(),
) -> EndpointPage:
    rows, next_cursor = await service.list_endpoints(
        session, org_id=principal.org, limit=limit, cursor=cursor
    )
    return EndpointPage(items=[_read(r) for r in rows], next_cursor=next_cursor)


@router.get(
    "/endpoints/{endpoint_id}",
    response_model=EndpointRead,
    summary="Read an endpoint (never its secret)",
    responses={404: REFUSALS[404]},
)
async def get_endpoint(
    endpoint_id: uuid.UUID,
    response: Response,
    principal: Subscriber,
    session: AsyncSession = unit_of_work(),
) -> EndpointRead:
    endpoint = await service.get_endpoint(session, org_id=principal.org, endpoint_id=endpoint_id)
    response.headers["ETag"] = etag(endpoint.row_version)
    return _read(endpoint)


@router.patch(
    "/endpoints/{endpoint_id}",
    response_model=EndpointRead,
    summary="Change url, description, event types, rate limit, ordering; pause or re-enable",
    responses={
        **REFUSALS,
        409: {"description": "VERSION_CONFLICT (expected_row_version is stale)"},
        412: {"description": "VERSION_CONFLICT (If-Match is stale)"},
    },
)
async def update_endpoint(
    *,
    endpoint_id: uuid.UUID,
    body: EndpointUpdate,
    request: Request,
    response: Response,
    if_match: str | None = Header(default=None, alias="If-Match"),
    principal: Subscriber,
    session: AsyncSession = unit_of_work(),
) -> EndpointRead:
    endpoint = await service.update_endpoint(
        session,
        settings=_settings(request),
        org_id=principal.org,
        endpoint_id=endpoint_id,
        expected=expected_version(body.expected_row_version, if_match),
        changes=body.model_dump(exclude_unset=True, exclude={"expected_row_version"}),
    )
    response.headers["ETag"] = etag(endpoint.row_version)
    return _read(endpoint)


@router.delete(
    "/endpoints/{endpoint_id}",
    status_code=204,
    summary="Delete an endpoint and its deliveries",
    responses={404: REFUSALS[404], 412: {"description": "VERSION_CONFLICT (If-Match)"}},
)
async def delete_endpoint(
    endpoint_id: uuid.UUID,
    principal: Subscriber,
    if_match: str | None = Header(default=None, alias="If-Match"),
    session: AsyncSession = unit_of_work(),
) -> Response:
    await service.delete_endpoint(
        session,
        org_id=principal.org,
        endpoint_id=endpoint_id,
        expected=expected_version(None, if_match),
    )
    return Response(status_code=204)


@router.post(
    "/endpoints/{endpoint_id}/rotate-secret",
    response_model=SecretRotated,
    summary="A new signing secret (shown once); the old one signs too during the grace period",
    responses={404: REFUSALS[404]},
)
async def rotate_secret(
    *,
    endpoint_id: uuid.UUID,
    request: Request,
    response: Response,
    body: RotateSecret | None = Body(default=None),
    principal: Subscriber,
    session: AsyncSession = unit_of_work(),
) -> SecretRotated:
    endpoint, secret = await service.rotate_secret(
        session,
        settings=_settings(request),
        org_id=principal.org,
        endpoint_id=endpoint_id,
        grace_period_seconds=body.grace_period_seconds if body else None,
    )
    response.headers["ETag"] = etag(endpoint.row_version)
    return SecretRotated(
        endpoint_id=endpoint.id,
        secret=secret,
        previous_secret_expires_at=endpoint.previous_secret_expires_at,
        row_version=endpoint.row_version,
    )


@router.get(
    "/event-types",
    response_model=EventTypeList,
    summary="Every event type a subscriber can receive, with the JSON Schema of its data",
)
async def event_types(principal: Subscriber) -> EventTypeList:
    latest = {spec.event_type: spec for spec in all_events()}
    return EventTypeList(
        items=[
            EventTypeRead.model_validate(
                {
                    "type": s.event_type,
                    "version": s.version,
                    "producer": s.producer,
                    "description": s.description,
                    "schema": json_schema(s),
                }
            )
            for s in latest.values()
        ]
    )
