"""The bootstrap writes every row of a project in bulk, consistently, in one transaction."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from servicekit.auth import Principal
from task_svc.graph.bootstrap import plan_graph
from task_svc.projects import creation
from task_svc.projects.schemas import ProjectCreate
from task_svc.settings import Settings
from task_svc.tasks.models import Task, TaskEvent

from ..support.graphs import CABINET_READY, version_json

START = datetime(2026, 12, 1, 8, tzinfo=UTC)


def principal(org_id: uuid.UUID) -> Principal:
    return Principal(sub=str(uuid.uuid4()), org_id=org_id, roles=frozenset({"planner"}))


async def bootstrap(
    session: AsyncSession, org_id: uuid.UUID, deliverables: int, settings: Settings
) -> creation.ProjectRead:
    version = version_json(org_id=org_id)
    body = ProjectCreate(
        name="Cabinets",
        template_id=uuid.UUID(version["template_id"]),
        deliverables=deliverables,
        start_at=START,
    )
    return await creation._bootstrap(
        session,
        principal=principal(org_id),
        body=body,
        names=body.deliverable_names(),
        version=version,
        plan=plan_graph(version["nodes"], version["edges"]),
        settings=settings,
    )


async def test_rows_of_a_bootstrapped_project(session: AsyncSession, settings: Settings) -> None:
    org_id = uuid.uuid4()
    read = await bootstrap(session, org_id, 3, settings)
    assert read.task_count == 36
    assert [d.serial for d in read.deliverables] == ["DLV-000001", "DLV-000002", "DLV-000003"]

    tasks = (await session.execute(select(Task).where(Task.project_id == read.id))).scalars().all()
    assert len(tasks) == 36
    ready = {t.node_key for t in tasks if t.status == "ready"}
    assert ready == CABINET_READY
    assert sum(1 for t in tasks if t.status == "ready") == 3
    assert all(t.org_id == org_id for t in tasks)

    # open_blockers equals the number of unresolved blockers, from the dependency rows.
    rows = await session.execute(
        text(
            "SELECT t.id, t.open_blockers, count(b.id) FILTER "
            "(WHERE b.status NOT IN ('done', 'cancelled')) AS open "
            "FROM tasks t LEFT JOIN task_dependencies d ON d.task_id = t.id "
            "LEFT JOIN tasks b ON b.id = d.blocker_id WHERE t.project_id = :p GROUP BY t.id"
        ),
        {"p": read.id},
    )
    assert all(r.open_blockers == r.open for r in rows)
    deps = await session.scalar(
        text(
            "SELECT count(*) FROM task_dependencies d JOIN tasks t ON t.id = d.task_id "
            "WHERE t.project_id = :p"
        ),
        {"p": read.id},
    )
    assert deps == 13 * 3
    # No edge crosses deliverables.
    crossing = await session.scalar(
        text(
            "SELECT count(*) FROM task_dependencies d JOIN tasks t ON t.id = d.task_id "
            "JOIN tasks b ON b.id = d.blocker_id WHERE t.project_id = :p "
            "AND t.deliverable_id <> b.deliverable_id"
        ),
        {"p": read.id},
    )
    assert crossing == 0

    by_key = {(t.deliverable_id, t.node_key): t for t in tasks}
    sand = next(t for t in tasks if t.node_key == "sand")
    assert sand.parent_id == by_key[(sand.deliverable_id, "assemble")].id
    cut = next(t for t in tasks if t.node_key == "cut")
    assert cut.due_at == datetime(2026, 12, 2, 0, tzinfo=UTC)
    paint = next(t for t in tasks if t.node_key == "paint")
    assert paint.qc_required and paint.qc_checklist[0]["code"] == "PAINT-1"
    ship = next(t for t in tasks if t.node_key == "ship")
    assert ship.is_milestone and ship.status == "blocked"


async def test_each_task_has_a_creation_event_matching_its_row(
    session: AsyncSession, settings: Settings
) -> None:
    read = await bootstrap(session, uuid.uuid4(), 2, settings)
    events = (
        (
            await session.execute(
                select(TaskEvent)
                .join(Task, Task.id == TaskEvent.task_id)
                .where(Task.project_id == read.id)
                .order_by(TaskEvent.id)
            )
        )
        .scalars()
        .all()
    )
    tasks = (await session.execute(select(Task).where(Task.project_id == read.id))).scalars().all()
    assert len(events) == len(tasks) == 24
    for t in tasks:
        mine = [e for e in events if e.task_id == t.id]
        assert [e.action for e in mine] == ["create"]
        assert mine[-1].to_status == t.status and mine[-1].row_version == t.row_version


async def test_milestones_without_blockers_complete_with_an_event(
    session: AsyncSession, settings: Settings
) -> None:
    org_id = uuid.uuid4()
    nodes = [
        {"key": "kickoff", "title": "Kick-off", "work_kind": "milestone"},
        {"key": "cut", "title": "Cut"},
    ]
    version = version_json(
        org_id=org_id, nodes=nodes, edges=[{"blocker": "kickoff", "dependent": "cut"}]
    )
    body = ProjectCreate(
        name="P", template_id=uuid.UUID(version["template_id"]), deliverables=1, start_at=START
    )
    read = await creation._bootstrap(
        session,
        principal=principal(org_id),
        body=body,
        names=["#1"],
        version=version,
        plan=plan_graph(version["nodes"], version["edges"]),
        settings=settings,
    )
    tasks = {
        t.node_key: t
        for t in (await session.execute(select(Task).where(Task.project_id == read.id))).scalars()
    }
    assert tasks["kickoff"].status == "done" and tasks["kickoff"].row_version == 2
    assert tasks["kickoff"].completed_at is not None
    assert tasks["cut"].status == "ready" and tasks["cut"].open_blockers == 0
    events = (
        await session.execute(
            select(TaskEvent.action, TaskEvent.to_status, TaskEvent.row_version)
            .where(TaskEvent.task_id == tasks["kickoff"].id)
            .order_by(TaskEvent.id)
        )
    ).all()
    assert [tuple(e) for e in events] == [("create", "ready", 1), ("auto_complete", "done", 2)]


async def test_serials_continue_per_org_and_are_independent_between_orgs(
    session: AsyncSession, settings: Settings
) -> None:
    org_a, org_b = uuid.uuid4(), uuid.uuid4()
    first = await bootstrap(session, org_a, 2, settings)
    other = await bootstrap(session, org_b, 1, settings)
    second = await bootstrap(session, org_a, 2, settings)
    assert [d.serial for d in first.deliverables] == ["DLV-000001", "DLV-000002"]
    assert [d.serial for d in other.deliverables] == ["DLV-000001"]
    assert [d.serial for d in second.deliverables] == ["DLV-000003", "DLV-000004"]
