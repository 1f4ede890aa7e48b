"""Applying project migrations on real PostgreSQL: what follows from a migration runs through
the state machine's cascade code, so a migrated project looks exactly like one that reached the
same state by transitions (statuses, counters, `task_events` rows, outbox events).

Projects are written straight into the tables in the state each test needs (tasks on version 1
of a graph, with their `create` events) and moved with `migrate.migrate` on the locked rows, as a
plan's apply does; every example runs in a transaction rolled back at the end.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from servicekit.conditional import ExpectedVersion
from servicekit.jsonutil import dumps, loads
from task_svc.project_migrations.migrate import migrate
from task_svc.project_migrations.planning import RESOLVED, Rules
from task_svc.project_migrations.service import compute, db_now, read_state
from task_svc.tasks.transitions import Caller, apply_transition

from ..support.migrations import Pair, fold_rows, node, project_states, version, version_pairs

ORG = uuid.UUID("00000000-0000-4000-8000-00000000e001")
ADMIN = Caller(actor="user:admin", roles=frozenset({"admin"}), user_id=uuid.uuid4())


@asynccontextmanager
async def rolled_back(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    async with engine.connect() as conn:
        outer = await conn.begin()
        try:
            yield conn
        finally:
            await outer.rollback()


async def seed(
    conn: AsyncConnection, v1: Mapping[str, Any], statuses: Mapping[str, str]
) -> tuple[uuid.UUID, uuid.UUID, dict[str, uuid.UUID]]:
    """A project on `v1` with one deliverable, each task in its status with exact counters and
    its `create` event: (project, deliverable, task ids by key)."""
    project, deliverable = uuid.uuid4(), uuid.uuid4()
    await conn.execute(
        text(
            "INSERT INTO task.projects (id, org_id, name, template_id, template_key, "
            "template_version, template_checksum, snapshot, status, start_at, created_by) "
            "VALUES (:id, :org, 'P', :tid, 'tpl', 1, 'x', CAST(:snap AS jsonb), 'active', "
            "now(), 'test')"
        ),
        {"id": project, "org": ORG, "tid": uuid.uuid4(), "snap": dumps(v1).decode()},
    )
    finished = all(s in RESOLVED for s in statuses.values())
    await conn.execute(
        text(
            "INSERT INTO task.deliverables (id, org_id, project_id, name, position, serial, "
            "status) VALUES (:id, :org, :p, 'D1', 1, :serial, :status)"
        ),
        {
            "id": deliverable,
            "org": ORG,
            "p": project,
            "serial": f"M-{uuid.uuid4().hex[:10]}",
            "status": "ready_for_signoff" if finished else "in_progress",
        },
    )
    blockers: dict[str, list[str]] = {n["key"]: [] for n in v1["nodes"]}
    for e in v1["edges"]:
        blockers[e["dependent"]].append(e["blocker"])
    ids = {n["key"]: uuid.uuid4() for n in v1["nodes"]}
    for n in v1["nodes"]:
        key, status = n["key"], statuses[n["key"]]
        milestone = n.get("work_kind") == "milestone"
        await conn.execute(
            text(
                "INSERT INTO task.tasks (id, org_id, project_id, deliverable_id, node_key, title, "
                "kind, work_kind, status, is_milestone, open_blockers, completed_at) "
                "VALUES (:id, :org, :p, :d, :k, :title, 'task', :wk, :st, :ms, :ob, "
                "CASE WHEN :st = 'done' THEN now() END)"
            ),
            {
                "id": ids[key],
                "org": ORG,
                "p": project,
                "d": deliverable,
                "k": key,
                "title": n["title"],
                "wk": "milestone" if milestone else "work",
                "st": status,
                "ms": milestone,
                "ob": sum(1 for b in blockers[key] if statuses[b] not in RESOLVED),
            },
        )
        await conn.execute(
            text(
                "INSERT INTO task.task_events (org_id, task_id, action, from_status, to_status, "
                "actor, payload, row_version) VALUES (:org, :t, 'create', NULL, :st, 'test', "
                "CAST(:payload AS jsonb), 1)"
            ),
            {"org": ORG, "t": ids[key], "st": status, "payload": dumps({"node_key": key}).decode()},
        )
    for e in v1["edges"]:
        await conn.execute(
            text(
                "INSERT INTO task.task_dependencies (project_id, task_id, blocker_id) "
                "VALUES (:p, :t, :b)"
            ),
            {"p": project, "t": ids[e["dependent"]], "b": ids[e["blocker"]]},
        )
    return project, deliverable, ids


async def apply_migration(
    conn: AsyncConnection, project_id: uuid.UUID, v2: Mapping[str, Any], rules: Rules = Rules()
) -> Any:
    """Plan and apply the move to `v2` on the locked rows, as a plan's apply does: the plan."""
    async with AsyncSession(bind=conn, join_transaction_mode="create_savepoint") as s, s.begin():
        project = (
            (
                await s.execute(
                    text(
                        "SELECT id, org_id, name, status, template_id, template_key, "
                        "template_version, template_checksum, snapshot, start_at, row_version "
                        "FROM task.projects WHERE id = :id"
                    ),
                    {"id": project_id},
                )
            )
            .mappings()
            .one()
        )
        state = await read_state(s, org_id=ORG, project=dict(project), lock=True)
        target = {**v2, "version": 2, "checksum": "v2"}
        plan = compute(state, target, rules)
        assert plan.conflicts == [], plan.conflicts
        await migrate(
            s,
            state=state,
            target=target,
            rules=rules,
            actor="user:planner",
            plan_id=uuid.uuid4(),
            job_id=None,
            now=await db_now(s),
            plan=plan,
        )
    return plan


async def tasks_of(conn: AsyncConnection, project_id: uuid.UUID) -> dict[str, dict[str, Any]]:
    res = await conn.execute(
        text(
            "SELECT id, node_key, status, open_blockers, row_version, is_milestone, "
            "(SELECT count(*) FROM task.task_dependencies d JOIN task.tasks b "
            " ON b.id = d.blocker_id WHERE d.task_id = t.id "
            " AND b.status NOT IN ('done', 'cancelled')) AS unresolved "
            "FROM task.tasks t WHERE project_id = :p"
        ),
        {"p": project_id},
    )
    return {r["node_key"]: dict(r) for r in res.mappings()}


async def events_of(conn: AsyncConnection, task_id: uuid.UUID) -> list[dict[str, Any]]:
    res = await conn.execute(
        text(
            "SELECT action, from_status, to_status, actor, payload, row_version "
            "FROM task.task_events WHERE task_id = :t ORDER BY id"
        ),
        {"t": task_id},
    )
    return [
        {**r, "payload": loads(r["payload"]) if isinstance(r["payload"], str) else r["payload"]}
        for r in (dict(m) for m in res.mappings())
    ]


async def outbox_of(conn: AsyncConnection, aggregate_id: uuid.UUID) -> list[dict[str, Any]]:
    res = await conn.execute(
        text("SELECT type, payload FROM task.outbox WHERE aggregate_id = :a"),
        {"a": str(aggregate_id)},
    )
    return [
        {
            "type": r["type"],
            **(loads(r["payload"]) if isinstance(r["payload"], str) else r["payload"]),
        }
        for r in res.mappings()
    ]


async def transition(
    conn: AsyncConnection, task_id: uuid.UUID, action: str, payload: dict[str, Any] | None = None
) -> None:
    version = (
        await conn.execute(text("SELECT row_version FROM task.tasks WHERE id = :t"), {"t": task_id})
    ).scalar_one()
    async with AsyncSession(bind=conn, join_transaction_mode="create_savepoint") as s, s.begin():
        await apply_transition(
            s,
            org_id=ORG,
            task_id=task_id,
            action=action,
            payload=payload or {},
            expected=ExpectedVersion(version),
            client_event_id=None,
            caller=ADMIN,
        )


def cascade_part(events: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """The events the cascade writes, without what differs by nature (ids, times)."""
    return [
        (e["action"], e["from_status"], e["to_status"], e["actor"], e["payload"])
        for e in events
        if e["action"] in ("unblock", "auto_complete")
    ]


async def test_a_removed_blocker_frees_its_dependent_as_a_resolved_one_would(
    engine: AsyncEngine,
) -> None:
    # a -> m (milestone) -> b; a in progress. Version 2 drops the edge a -> m: m is free and
    # completes, which frees b. A project where a is completed instead gets the same cascade.
    v1 = version([node("a"), node("m", milestone=True), node("b")], [("a", "m"), ("m", "b")])
    v2 = version([node("a"), node("m", milestone=True), node("b")], [("m", "b")])
    state = {"a": "in_progress", "m": "blocked", "b": "blocked"}
    async with rolled_back(engine) as conn:
        migrated, _, ids = await seed(conn, v1, state)
        await apply_migration(conn, migrated, v2)
        tasks = await tasks_of(conn, migrated)
        assert {k: (t["status"], t["open_blockers"]) for k, t in tasks.items()} == {
            "a": ("in_progress", 0),
            "m": ("done", 0),
            "b": ("ready", 0),
        }
        m_events = await events_of(conn, ids["m"])
        assert [e["action"] for e in m_events] == ["create", "migrated", "unblock", "auto_complete"]
        assert m_events[1]["payload"]["after"] == {"open_blockers": 0}
        b_events = await events_of(conn, ids["b"])
        assert [e["action"] for e in b_events] == ["create", "unblock"]
        unblocked = [e for e in await outbox_of(conn, ids["b"]) if e["type"] == "task.unblocked"]
        assert [e["resolved_blocker_id"] for e in unblocked] == [str(ids["m"])]
        m_unblocked = [e for e in await outbox_of(conn, ids["m"]) if e["type"] == "task.unblocked"]
        assert [e["resolved_blocker_id"] for e in m_unblocked] == [str(ids["a"])]

        # The same consequences reached by a transition: a completed.
        by_transition, _, other = await seed(conn, v1, state)
        await transition(conn, other["a"], "complete")
        reached = await tasks_of(conn, by_transition)
        for key in ("m", "b"):
            assert (reached[key]["status"], reached[key]["open_blockers"]) == (
                tasks[key]["status"],
                tasks[key]["open_blockers"],
            )
            assert cascade_part(await events_of(conn, other[key])) == cascade_part(
                await events_of(conn, ids[key])
            )
        types = sorted(e["type"] for e in await outbox_of(conn, ids["b"]))
        assert types == sorted(e["type"] for e in await outbox_of(conn, other["b"]))
        assert types == ["task.status_changed", "task.unblocked"]


async def test_removing_the_last_open_task_completes_the_deliverable_as_a_transition_would(
    engine: AsyncEngine,
) -> None:
    v1 = version([node("a"), node("b")], [("a", "b")])
    v2 = version([node("a")], [])
    state = {"a": "done", "b": "ready"}
    async with rolled_back(engine) as conn:
        migrated, deliverable, _ = await seed(conn, v1, state)
        plan = await apply_migration(conn, migrated, v2)
        assert plan.deliverables[0].status_after == "ready_for_signoff"
        _, other_deliverable, other = await seed(conn, v1, state)
        await transition(conn, other["b"], "cancel", {"reason": "no longer made"})

        async def deliverable_state(d: uuid.UUID) -> tuple[Any, ...]:
            row = (
                await conn.execute(
                    text("SELECT status, row_version FROM task.deliverables WHERE id = :d"),
                    {"d": d},
                )
            ).one()
            events = [
                (e["type"], e["row_version"], e["serial"][:2]) for e in await outbox_of(conn, d)
            ]
            return (row.status, row.row_version, events)

        assert await deliverable_state(deliverable) == await deliverable_state(other_deliverable)
        assert (await deliverable_state(deliverable))[0] == "ready_for_signoff"
        assert (await tasks_of(conn, migrated))["b"]["status"] == "cancelled"


def settling_rules(data: st.DataObject, rename: dict[str, str]) -> Rules:
    return Rules(
        rename=rename,
        removed_started=data.draw(st.sampled_from(["cancel", "keep_as_orphan"])),
        blocker_added_to_started=data.draw(st.sampled_from(["keep", "reopen"])),
        added_behind_started=data.draw(st.sampled_from(["open", "done"])),
        update_finished=data.draw(st.booleans()),
    )


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(pair=version_pairs(), data=st.data())
async def test_migration_apply_properties_on_the_database(
    engine: AsyncEngine, pair: Pair, data: st.DataObject
) -> None:
    """Random version pairs and project states, applied: counters exact, blocked iff open, every
    task's history folds to its row (one row version per change), every status change has its
    `task.status_changed`, and the cascades reach exactly what the plan said."""
    statuses = data.draw(project_states(pair.v1))
    rules = settling_rules(data, pair.rename)
    async with rolled_back(engine) as conn:
        project, _, _ = await seed(conn, pair.v1, statuses)
        before = await tasks_of(conn, project)
        plan = await apply_migration(conn, project, pair.v2, rules)
        after = {t["id"]: t for t in (await tasks_of(conn, project)).values()}
        predicted = {}
        for d in plan.deliverables:
            predicted.update({o.task.id: (o.final_status, o.open_blockers) for o in d.outcomes})
            predicted.update({n.id: (n.final_status, n.open_blockers) for n in d.added})
        for tid, t in after.items():
            assert t["open_blockers"] == t["unresolved"], t
            if t["status"] in ("blocked", "ready"):
                assert (t["status"] == "blocked") == (t["open_blockers"] > 0), t
            assert (t["status"], t["open_blockers"]) == predicted[tid], t
            events = await events_of(conn, tid)
            status, row_version, key = fold_rows(events)
            assert (status, row_version, key) == (t["status"], t["row_version"], t["node_key"])
            old = next((b for b in before.values() if b["id"] == tid), None)
            if old is not None and len(events) == 1:
                assert t["row_version"] == old["row_version"], t  # unchanged: no new version
            changes = sorted(
                (e["action"], e["row_version"])
                for e in events[1:]
                if e["from_status"] != e["to_status"]
            )
            published = sorted(
                (e["action"], e["row_version"])
                for e in await outbox_of(conn, tid)
                if e["type"] == "task.status_changed"
            )
            assert published == changes, (t, events)
