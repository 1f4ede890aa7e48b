"""What a transition records: `task_events` rows and outbox events, collected, then written in
one statement (`repository.write_history`, or with the task's own update).

Every outbox event is a libs/contracts model turned into a row by servicekit's `outbox_event`,
so it carries its type and `dataschema` exactly as `emit` writes them. Pure: no I/O.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import BaseModel

from contracts.tasks import TaskStatusChangedV1
from servicekit.outbox import OutboxEvent, outbox_event
from task_svc.tasks.fsm import Action, Status

SOURCE = "task-svc"
SYSTEM_ACTOR = "system"

TaskRow = Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class EventRow:
    """One `task_events` row to write."""

    org_id: uuid.UUID
    task_id: uuid.UUID
    action: str
    from_status: str | None
    to_status: str
    actor: str
    payload: dict[str, Any]
    row_version: int
    client_event_id: str | None = None
    response: dict[str, Any] | None = None
    status_code: int | None = None


def task_event_fields(row: TaskRow, *, row_version: int, now: datetime) -> dict[str, Any]:
    """What every task event's payload starts with (the contracts' task event base)."""
    return {
        "task_id": row["id"],
        "org_id": row["org_id"],
        "project_id": row["project_id"],
        "deliverable_id": row["deliverable_id"],
        "node_key": row["node_key"],
        "row_version": row_version,
        "occurred_at": now,
    }


@dataclass
class History:
    """Events and outbox rows collected during one transition, written together."""

    events: list[EventRow] = field(default_factory=list)
    outbox: list[OutboxEvent] = field(default_factory=list)

    def publish(self, event: BaseModel, *, aggregate_type: str, aggregate_id: Any) -> None:
        """Add a contracts event to the outbox rows."""
        self.outbox.append(
            outbox_event(event, aggregate_type=aggregate_type, aggregate_id=aggregate_id)
        )

    def status_change(
        self,
        row: TaskRow,
        *,
        action: str,
        from_status: str,
        to_status: str,
        actor: str,
        row_version: int,
        payload: dict[str, Any],
        now: datetime,
        client_event_id: str | None = None,
        response: dict[str, Any] | None = None,
    ) -> None:
        """Record a task's status change: its `task_events` row and its `task.status_changed`."""
        self.events.append(
            EventRow(
                row["org_id"],
                row["id"],
                action,
                from_status,
                to_status,
                actor,
                payload,
                row_version,
                client_event_id,
                response,
                200 if response is not None else None,
            )
        )
        event = TaskStatusChangedV1(
            **task_event_fields(row, row_version=row_version, now=now),
            action=action,
            from_status=from_status,
            to_status=to_status,
            actor=actor,
            assigned_to=row.get("assigned_to"),
            payload=payload,
        )
        self.publish(event, aggregate_type="task", aggregate_id=row["id"])

    def auto_complete(self, row: TaskRow, *, row_version: int, now: datetime) -> None:
        """Record a milestone completing by itself (system `auto_complete`, ready -> done)."""
        self.status_change(
            row,
            action=Action.AUTO_COMPLETE,
            from_status=Status.READY,
            to_status=Status.DONE,
            actor=SYSTEM_ACTOR,
            row_version=row_version,
            payload={},
            now=now,
        )

    def clear(self) -> None:
        self.events.clear()
        self.outbox.clear()

    def __bool__(self) -> bool:
        return bool(self.events or self.outbox)
