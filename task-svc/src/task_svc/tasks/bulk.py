"""Bulk transitions: up to MAX_BULK items, each in its own transaction with its own result."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from servicekit.conditional import expected_version
from servicekit.db import Database
from servicekit.errors import AppError, problem_body
from task_svc.tasks.transitions import Caller, apply_transition

MAX_BULK = 500


@dataclass(frozen=True)
class BulkItem:
    task_id: uuid.UUID
    action: str
    payload: Any
    expected_row_version: int | None
    client_event_id: str | None


async def apply_bulk(
    db: Database, *, org_id: uuid.UUID, items: Sequence[BulkItem], caller: Caller
) -> list[dict[str, Any]]:
    """Apply items in the order given, each in its own transaction, each with its own result:
    the transition's answer, or the problem it was refused with."""
    results: list[dict[str, Any]] = []
    for index, item in enumerate(items):
        result: dict[str, Any] = {"index": index, "task_id": str(item.task_id)}
        try:
            async with db.sessionmaker() as session, session.begin():
                outcome = await apply_transition(
                    session,
                    org_id=org_id,
                    task_id=item.task_id,
                    action=item.action,
                    payload=item.payload,
                    expected=expected_version(item.expected_row_version, None),
                    client_event_id=item.client_event_id,
                    caller=caller,
                )
            result.update(status=outcome.status_code, replayed=outcome.replayed, body=outcome.body)
        except AppError as exc:
            body = problem_body(
                status=exc.status, code=exc.code, title=exc.title, detail=exc.detail, **exc.extra
            )
            result.update(status=exc.status, replayed=False, body=body)
        results.append(result)
    return results
