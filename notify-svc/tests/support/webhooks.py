"""What the webhook tests share: a task event as task-svc emits it, an endpoint subscribed
through the API, and a dispatcher round."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import httpx

from contracts.envelope import CloudEvent
from contracts.tasks import TaskStatusChangedV1
from notify_svc.delivery import dispatch
from notify_svc.delivery.context import DeliveryContext
from servicekit.testing.plugin import JwtKeys

BASE = "/api/v1/webhooks"


def task_event(org: uuid.UUID, subject: uuid.UUID | None = None) -> CloudEvent[Any]:
    """A `task.status_changed` of `org` whose subject is the task (a new one unless given)."""
    task_id = subject or uuid.uuid4()
    now = datetime.now(UTC)
    data = TaskStatusChangedV1(
        task_id=task_id, org_id=org, project_id=uuid.uuid4(), deliverable_id=uuid.uuid4(),
        node_key="cut", row_version=2, occurred_at=now, action="start", from_status="ready",
        to_status="in_progress", actor=str(uuid.uuid4()),
    )  # fmt: skip
    return CloudEvent[TaskStatusChangedV1](
        id=str(uuid.uuid4()), source="task-svc", type="task.status_changed", time=now,
        subject=str(task_id), aggregatetype="task", data=data,
    )  # fmt: skip


async def subscribe(
    client: httpx.AsyncClient, jwt_keys: JwtKeys, org: uuid.UUID, url: str, **extra: Any
) -> dict[str, Any]:
    """An endpoint of `org` for `task.*` (unless `extra` says otherwise); the API's answer,
    with the secret."""
    body = {"url": url, "event_types": ["task.*"], **extra}
    resp = await client.post(
        f"{BASE}/endpoints", json=body, headers=jwt_keys.headers(["planner"], org_id=org)
    )
    assert resp.status_code == 201, resp.text
    created: dict[str, Any] = resp.json()
    return created


async def handed_out(ctx: DeliveryContext) -> list[uuid.UUID]:
    """One dispatcher round as the events process and beat run it: the delivery ids of the
    messages it would enqueue (marked as enqueued)."""
    batches, _count = await dispatch.due_batches(ctx)
    return [delivery_id for _endpoint, ids in batches for delivery_id in ids]
