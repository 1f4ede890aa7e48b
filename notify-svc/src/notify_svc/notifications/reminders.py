"""Deadline reminders and overdue notices, from beat every `reminder_interval_seconds`.

One scan asks task-svc for the open tasks due from `reminder_overdue_window_hours` ago to the
longest lead time of any org from now, then writes, per task and org rule, a reminder (due
within the org's lead time) or an overdue notice (due date passed). The dedup key holds the task,
its due date and the recipient: a second scan writes nothing, a moved due date (or a new
assignee) makes a new one. task-svc is read before the transaction opens.
"""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from notify_svc.events.handlers import WAKE_SQL
from notify_svc.notifications import metrics, rules
from notify_svc.notifications.repository import (
    DEFAULT_LEAD_MINUTES,
    effective_rules,
    insert_new,
    notification_row,
    org_settings,
)
from servicekit.db import transaction

if TYPE_CHECKING:
    from notify_svc.delivery.context import DeliveryContext

log = logging.getLogger("notify_svc.reminders")


def due_label(due: datetime) -> str:
    return due.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def classify(
    due: datetime, now: datetime, *, lead_minutes: int, overdue_notices: bool
) -> str | None:
    """Which deadline rule a task due at `due` falls under now, if any."""
    if due <= now:
        return rules.DEADLINE_OVERDUE if overdue_notices else None
    if due <= now + timedelta(minutes=lead_minutes):
        return rules.DEADLINE_REMINDER
    return None


async def scan(ctx: DeliveryContext, *, now: datetime | None = None) -> int:
    """One scan; returns how many reminders and notices were written."""
    now = now or datetime.now(UTC)
    settings = ctx.settings
    async with transaction(ctx.db) as session:
        per_org = await org_settings(session)
    longest = max([DEFAULT_LEAD_MINUTES, *(s.reminder_lead_minutes for s in per_org.values())])
    tasks = await ctx.tasks.due(
        due_after=now - timedelta(hours=settings.reminder_overdue_window_hours),
        due_before=now + timedelta(minutes=longest) + timedelta(seconds=1),
    )
    if not tasks:
        return 0
    rows: list[dict[str, Any]] = []
    async with transaction(ctx.db) as session:
        org_rules = await effective_rules(session, (uuid.UUID(t["org_id"]) for t in tasks))
        for task in tasks:
            org_id = uuid.UUID(task["org_id"])
            org = per_org.get(org_id)
            due = datetime.fromisoformat(task["due_at"])
            rule_name = classify(
                due,
                now,
                lead_minutes=org.reminder_lead_minutes if org else DEFAULT_LEAD_MINUTES,
                overdue_notices=org.overdue_notices if org else True,
            )
            if rule_name is None:
                continue
            rule = org_rules[org_id][rule_name]
            if not rule["enabled"]:
                continue
            context = {"task": task, "due_at": due_label(due), "due_at_iso": due.isoformat()}
            subject = f"task:{task['task_id']}|due:{due.isoformat()}"
            for spec in rule["recipients"]:
                recipient = dict(spec)
                if spec["kind"] == "assignee":
                    if not task.get("assigned_to"):
                        continue  # nobody to remind yet; an assignment makes a new key
                    recipient["user_id"] = task["assigned_to"]
                rows.append(
                    notification_row(
                        org_id=org_id,
                        rule=rule_name,
                        subject=subject,
                        recipient=recipient,
                        context=context,
                        max_attempts=settings.notification_max_attempts,
                    )
                )
        created = await insert_new(session, rows)
        if created:
            await session.execute(WAKE_SQL)
            metrics.CREATED.labels("reminder").inc(len(created))
    return len(created)
