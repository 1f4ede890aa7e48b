"""/api/v1/webhooks deliveries: list an endpoint's, read one with its attempts, replay, send a
test event, recover a time window (admin and planner, org-scoped)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Query
from sqlalchemy.ext.asyncio import AsyncSession

from notify_svc.webhooks import deliveries
from notify_svc.webhooks.delivery_schemas import (
    AttemptRead,
    DeliveryDetail,
    DeliveryPage,
    DeliveryRead,
    DeliveryStatus,
    RecoverJobRead,
    RecoverRequest,
)
from notify_svc.webhooks.router import PREFIX, Subscriber
from servicekit.db import unit_of_work
from servicekit.pagination import DEFAULT_LIMIT, Cursor, Limit

router = APIRouter(prefix=PREFIX, tags=["webhook deliveries"])

NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"description": "ENDPOINT_NOT_FOUND / DELIVERY_NOT_FOUND: not in your org"}
}


@router.get(
    "/endpoints/{endpoint_id}/deliveries",
    response_model=DeliveryPage,
    summary="Deliveries to an endpoint, newest first (filters, cursor)",
    responses=NOT_FOUND,
)
async def list_deliveries(
    *,
    endpoint_id: uuid.UUID,
    status: DeliveryStatus | None = Query(default=None),
    event_type: str | None = Query(default=None, max_length=200),
    since: datetime | None = Query(default=None, description="created at or after"),
    until: datetime | None = Query(default=None, description="created before"),
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
    principal: Subscriber,
    session: AsyncSession = unit_of_work(),
) -> DeliveryPage:
    rows, next_cursor = await deliveries.list_deliveries(
        session,
        org_id=principal.org,
        endpoint_id=endpoint_id,
        status=status,
        event_type=event_type,
        since=since,
        until=until,
        limit=limit,
        cursor=cursor,
    )
    return DeliveryPage(
        items=[DeliveryRead.model_validate(r) for r in rows], next_cursor=next_cursor
    )


@router.get(
    "/deliveries/{delivery_id}",
    response_model=DeliveryDetail,
    summary="A delivery with every attempt",
    responses=NOT_FOUND,
)
async def get_delivery(
    delivery_id: uuid.UUID, principal: Subscriber, session: AsyncSession = unit_of_work()
) -> DeliveryDetail:
    delivery = await deliveries.get_delivery(session, org_id=principal.org, delivery_id=delivery_id)
    history = await deliveries.attempts_of(session, delivery.id)
    return DeliveryDetail(
        **DeliveryRead.model_validate(delivery).model_dump(),
        history=[AttemptRead.model_validate(a) for a in history],
    )


@router.post(
    "/deliveries/{delivery_id}/replay",
    status_code=202,
    response_model=DeliveryRead,
    summary="Send a failed or dead delivery again now (same webhook-id)",
    responses={
        **NOT_FOUND,
        409: {
            "description": "DELIVERY_IN_PROGRESS; DELIVERY_SUCCEEDED (without include_succeeded)"
        },
    },
)
async def replay_delivery(
    *,
    delivery_id: uuid.UUID,
    include_succeeded: bool = Query(default=False, description="replay a succeeded one too"),
    principal: Subscriber,
    session: AsyncSession = unit_of_work(),
) -> DeliveryRead:
    delivery = await deliveries.replay(
        session,
        org_id=principal.org,
        delivery_id=delivery_id,
        include_succeeded=include_succeeded,
    )
    return DeliveryRead.model_validate(delivery)


@router.post(
    "/endpoints/{endpoint_id}/test",
    status_code=202,
    response_model=DeliveryRead,
    summary="Send a `webhook.test` event to this endpoint now",
    responses={**NOT_FOUND, 409: {"description": "ENDPOINT_DISABLED"}},
)
async def send_test(
    endpoint_id: uuid.UUID, principal: Subscriber, session: AsyncSession = unit_of_work()
) -> DeliveryRead:
    delivery = await deliveries.send_test(session, org_id=principal.org, endpoint_id=endpoint_id)
    return DeliveryRead.model_validate(delivery)


@router.post(
    "/endpoints/{endpoint_id}/recover",
    status_code=202,
    response_model=RecoverJobRead,
    summary="Send every failed and dead delivery of a time window again (a job, in batches)",
    responses=NOT_FOUND,
)
async def recover(
    endpoint_id: uuid.UUID,
    body: RecoverRequest,
    principal: Subscriber,
    session: AsyncSession = unit_of_work(),
) -> RecoverJobRead:
    job = await deliveries.start_recover(
        session, org_id=principal.org, endpoint_id=endpoint_id, since=body.since, until=body.until
    )
    return RecoverJobRead.model_validate(job)


@router.get(
    "/recover-jobs/{job_id}",
    response_model=RecoverJobRead,
    summary="A recover job's progress",
    responses={404: {"description": "RECOVER_JOB_NOT_FOUND"}},
)
async def get_recover_job(
    job_id: uuid.UUID, principal: Subscriber, session: AsyncSession = unit_of_work()
) -> RecoverJobRead:
    job = await deliveries.get_job(session, org_id=principal.org, job_id=job_id)
    return RecoverJobRead.model_validate(job)
