"""Bulk SQL of a project's bootstrap: every row of a kind in ONE statement (arrays + unnest).

The number of statements of a bootstrap does not depend on the number of deliverables or nodes.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from servicekit.jsonutil import dumps

_ALLOCATE_SERIALS = text(
    """
    INSERT INTO org_counters AS c (org_id, prefix, format, next_value)
    VALUES (CAST(:org_id AS uuid), CAST(:prefix AS text), CAST(:format AS text),
            1 + CAST(:k AS bigint))
    ON CONFLICT (org_id) DO UPDATE SET next_value = c.next_value + CAST(:k AS bigint)
    RETURNING c.next_value - CAST(:k AS bigint) AS first, c.prefix, c.format
    """
)

_INSERT_DELIVERABLES = text(
    """
    INSERT INTO deliverables (id, org_id, project_id, name, position, serial, status,
                              row_version, created_at, updated_at)
    SELECT d.id, CAST(:org_id AS uuid), CAST(:project_id AS uuid), d.name, d.position, d.serial,
           'in_progress', 1, CAST(:now AS timestamptz), CAST(:now AS timestamptz)
    FROM unnest(CAST(:ids AS uuid[]), CAST(:names AS text[]), CAST(:positions AS int[]),
                CAST(:serials AS text[])) AS d(id, name, position, serial)
    """
)

_INSERT_TASKS = text(
    """
    INSERT INTO tasks (id, org_id, project_id, deliverable_id, node_key, title, description,
                       kind, work_kind, priority, status, due_at, completed_at, qc_required,
                       qc_checklist, is_milestone, parent_id, open_blockers, estimate_hours,
                       role_hint, row_version, created_at, updated_at)
    SELECT t.id, CAST(:org_id AS uuid), CAST(:project_id AS uuid), t.deliverable_id,
           t.node_key, t.title, t.description,
           t.kind, t.work_kind, t.priority, t.status, t.due_at, t.completed_at, t.qc_required,
           CAST(t.qc_checklist AS jsonb), t.work_kind = 'milestone', t.parent_id,
           t.open_blockers, t.estimate_hours, t.role_hint, t.row_version,
           CAST(:now AS timestamptz), CAST(:now AS timestamptz)
    FROM unnest(
        CAST(:ids AS uuid[]), CAST(:deliverable_ids AS uuid[]), CAST(:node_keys AS text[]),
        CAST(:titles AS text[]), CAST(:descriptions AS text[]), CAST(:kinds AS text[]),
        CAST(:work_kinds AS text[]), CAST(:priorities AS int[]), CAST(:statuses AS text[]),
        CAST(:due_ats AS timestamptz[]), CAST(:completed_ats AS timestamptz[]),
        CAST(:qc_requireds AS boolean[]), CAST(:qc_checklists AS text[]),
        CAST(:parent_ids AS uuid[]), CAST(:open_blockers AS int[]),
        CAST(:estimates AS numeric[]), CAST(:role_hints AS text[]), CAST(:row_versions AS int[])
    ) AS t(id, deliverable_id, node_key, title, description, kind, work_kind, priority, status,
           due_at, completed_at, qc_required, qc_checklist, parent_id, open_blockers,
           estimate_hours, role_hint, row_version)
    """
)

_INSERT_DEPENDENCIES = text(
    """
    INSERT INTO task_dependencies (task_id, blocker_id, project_id)
    SELECT d.task_id, d.blocker_id, CAST(:project_id AS uuid)
    FROM unnest(CAST(:task_ids AS uuid[]), CAST(:blocker_ids AS uuid[])) AS d(task_id, blocker_id)
    """
)

_INSERT_EVENTS = text(
    """
    INSERT INTO task_events (org_id, task_id, action, from_status, to_status, actor, payload,
                             row_version, request_id, trace_id, created_at)
    SELECT CAST(:org_id AS uuid), e.task_id, e.action, e.from_status, e.to_status, e.actor,
           CAST(e.payload AS jsonb), e.row_version, CAST(:request_id AS text),
           CAST(:trace_id AS text), CAST(:now AS timestamptz)
    FROM unnest(CAST(:task_ids AS uuid[]), CAST(:actions AS text[]),
                CAST(:from_statuses AS text[]), CAST(:to_statuses AS text[]),
                CAST(:actors AS text[]), CAST(:payloads AS text[]), CAST(:row_versions AS int[]))
         WITH ORDINALITY AS e(task_id, action, from_status, to_status, actor, payload,
                              row_version, n)
    ORDER BY e.n
    """
)


@dataclass(frozen=True)
class SerialBlock:
    first: int
    prefix: str
    format: str

    def serial(self, offset: int) -> str:
        return self.format.format(prefix=self.prefix, n=self.first + offset)


async def allocate_serials(
    session: AsyncSession, *, org_id: uuid.UUID, count: int, prefix: str, format: str
) -> SerialBlock:
    """Reserve `count` consecutive serial numbers; the counter row stays locked until commit."""
    row = (
        await session.execute(
            _ALLOCATE_SERIALS,
            {"org_id": org_id, "prefix": prefix, "format": format, "k": count},
        )
    ).one()
    return SerialBlock(int(row.first), row.prefix, row.format)


async def insert_deliverables(
    session: AsyncSession,
    *,
    org_id: uuid.UUID,
    project_id: uuid.UUID,
    now: datetime,
    ids: Sequence[uuid.UUID],
    names: Sequence[str],
    serials: Sequence[str],
) -> None:
    await session.execute(
        _INSERT_DELIVERABLES,
        {
            "org_id": org_id,
            "project_id": project_id,
            "now": now,
            "ids": list(ids),
            "names": list(names),
            "positions": list(range(1, len(ids) + 1)),
            "serials": list(serials),
        },
    )


@dataclass
class TaskRows:
    """Column arrays of the tasks to insert (one entry per task)."""

    ids: list[uuid.UUID] = field(default_factory=list)
    deliverable_ids: list[uuid.UUID] = field(default_factory=list)
    node_keys: list[str] = field(default_factory=list)
    titles: list[str] = field(default_factory=list)
    descriptions: list[str] = field(default_factory=list)
    kinds: list[str] = field(default_factory=list)
    work_kinds: list[str] = field(default_factory=list)
    priorities: list[int] = field(default_factory=list)
    statuses: list[str] = field(default_factory=list)
    due_ats: list[datetime | None] = field(default_factory=list)
    completed_ats: list[datetime | None] = field(default_factory=list)
    qc_requireds: list[bool] = field(default_factory=list)
    qc_checklists: list[str] = field(default_factory=list)
    parent_ids: list[uuid.UUID | None] = field(default_factory=list)
    open_blockers: list[int] = field(default_factory=list)
    estimates: list[Decimal | None] = field(default_factory=list)
    role_hints: list[str | None] = field(default_factory=list)
    row_versions: list[int] = field(default_factory=list)

    def params(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class EventRows:
    task_ids: list[uuid.UUID] = field(default_factory=list)
    actions: list[str] = field(default_factory=list)
    from_statuses: list[str | None] = field(default_factory=list)
    to_statuses: list[str] = field(default_factory=list)
    actors: list[str] = field(default_factory=list)
    payloads: list[str] = field(default_factory=list)
    row_versions: list[int] = field(default_factory=list)

    def add(
        self,
        task_id: uuid.UUID,
        action: str,
        from_status: str | None,
        to_status: str,
        actor: str,
        payload: dict[str, Any],
        row_version: int,
    ) -> None:
        self.task_ids.append(task_id)
        self.actions.append(action)
        self.from_statuses.append(from_status)
        self.to_statuses.append(to_status)
        self.actors.append(actor)
        self.payloads.append(dumps(payload).decode())
        self.row_versions.append(row_version)

    def params(self) -> dict[str, Any]:
        return dict(self.__dict__)


async def insert_tasks(
    session: AsyncSession,
    *,
    org_id: uuid.UUID,
    project_id: uuid.UUID,
    now: datetime,
    rows: TaskRows,
) -> None:
    await session.execute(
        _INSERT_TASKS, {"org_id": org_id, "project_id": project_id, "now": now, **rows.params()}
    )


async def insert_dependencies(
    session: AsyncSession,
    *,
    project_id: uuid.UUID,
    task_ids: list[uuid.UUID],
    blocker_ids: list[uuid.UUID],
) -> None:
    if task_ids:
        await session.execute(
            _INSERT_DEPENDENCIES,
            {"project_id": project_id, "task_ids": task_ids, "blocker_ids": blocker_ids},
        )


async def insert_events(
    session: AsyncSession,
    *,
    org_id: uuid.UUID,
    now: datetime,
    request_id: str | None,
    trace_id: str | None,
    rows: EventRows,
) -> None:
    await session.execute(
        _INSERT_EVENTS,
        {
            "org_id": org_id,
            "now": now,
            "request_id": request_id,
            "trace_id": trace_id,
            **rows.params(),
        },
    )
