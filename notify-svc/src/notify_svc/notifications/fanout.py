"""Events that e-mail people: in the consumer's transaction, one notification per recipient of
the org's rule for the event type, unique per (rule, event, recipient), so a redelivered event
adds nothing. No HTTP here: what the event does not carry (a task's title, its assignee after a
QC reject) is looked up when the mail is sent, with no transaction open.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from contracts.envelope import CloudEvent
from notify_svc.notifications import metrics, rules
from notify_svc.notifications.repository import effective_rules, insert_new, notification_row

HANDLED = (rules.TASK_ASSIGNED, rules.QC_FAILED, rules.READY_FOR_SIGNOFF)


def _recipient(spec: dict[str, Any], data: dict[str, Any], event_type: str) -> dict[str, Any]:
    """A rule's recipient for this event: the assignee of `task.assigned` is in the event."""
    if spec["kind"] == "assignee" and event_type == rules.TASK_ASSIGNED:
        return {"kind": "assignee", "user_id": data.get("assigned_to")}
    return dict(spec)


async def notify_event(
    session: AsyncSession, event: CloudEvent[Any], *, max_attempts: int
) -> list[uuid.UUID]:
    """Write the event's notifications; returns the ids of the new ones."""
    if event.type not in HANDLED:
        return []
    data: dict[str, Any] = event.data.model_dump(mode="json")
    org_id = uuid.UUID(str(data["org_id"]))
    if event.type == rules.TASK_ASSIGNED and data.get("assigned_to") is None:
        return []  # an unassignment tells nobody
    rule = (await effective_rules(session, [org_id]))[org_id][event.type]
    if not rule["enabled"]:
        return []
    context: dict[str, Any] = {"event": data}
    if data.get("task_id"):
        context["task_id"] = str(data["task_id"])
    rows = [
        notification_row(
            org_id=org_id,
            rule=event.type,
            subject=f"event:{event.id}",
            recipient=_recipient(spec, data, event.type),
            context=context,
            max_attempts=max_attempts,
            event_id=event.id,
        )
        for spec in rule["recipients"]
    ]
    created = await insert_new(session, rows)
    if created:
        metrics.CREATED.labels("event").inc(len(created))
    return created
