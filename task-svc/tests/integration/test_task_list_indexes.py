"""Every filter of the task list can be answered from an index (no scan of the tasks table)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from sqlalchemy import text
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncSession

from task_svc.tasks.queries import TaskFilters, list_statement

ORG = uuid.UUID("00000000-0000-4000-8000-0000000000c1")
OTHER = uuid.UUID("00000000-0000-4000-8000-0000000000c2")


@pytest.mark.parametrize(
    "filters",
    [
        TaskFilters(project_id=OTHER),
        TaskFilters(deliverable_id=OTHER),
        TaskFilters(statuses=["ready", "rework"]),
        TaskFilters(assignee=OTHER),
        TaskFilters(kind="weld"),
        TaskFilters(milestone=True),
        TaskFilters(overdue=True),
        TaskFilters(blocked=True),
        TaskFilters(text="weld frame"),
    ],
    ids=lambda f: next(k for k, v in vars(f).items() if v not in (None, False)),
)
async def test_filter_uses_an_index(session: AsyncSession, filters: TaskFilters) -> None:
    stmt = list_statement(
        org_id=ORG,
        filters=filters,
        sort="created_at",
        after=None,
        limit=50,
        now=datetime(2026, 12, 1, tzinfo=UTC),
    )
    sql = str(stmt.compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True}))
    await session.execute(text("SET LOCAL enable_seqscan = off"))
    plan = "\n".join(r[0] for r in await session.execute(text(f"EXPLAIN {sql}")))
    assert "Seq Scan on tasks" not in plan, plan
