"""Concurrency against real PostgreSQL: one winner per row_version, converging cascades."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from task_svc.deliverables.signoff_router import router as signoff_router
from task_svc.tasks.transitions_router import router as transitions_router

ORG = uuid.UUID("00000000-0000-4000-8000-00000000a001")
OTHER_ORG = uuid.UUID("00000000-0000-4000-8000-00000000a002")
PLANNER = uuid.UUID("00000000-0000-4000-8000-0000000000b1")
OPERATOR = uuid.UUID("00000000-0000-4000-8000-0000000000b2")
OPERATOR2 = uuid.UUID("00000000-0000-4000-8000-0000000000b3")
APPROVER = uuid.UUID("00000000-0000-4000-8000-0000000000b4")


def include_routers(app: FastAPI) -> FastAPI:
    paths = {getattr(r, "path", None) for r in app.routes}
    if "/api/v1/tasks/{task_id}/transitions" not in paths:
        app.include_router(transitions_router)
    if "/api/v1/deliverables/{deliverable_id}/signoff" not in paths:
        app.include_router(signoff_router)
    return app


async def make_graph(
    conn: AsyncConnection,
    nodes: Iterable[str],
    edges: Iterable[tuple[str, str]] = (),
    *,
    org_id: uuid.UUID = ORG,
    qc: Iterable[str] = (),
    milestones: Iterable[str] = (),
    deliverables: int = 1,
) -> dict[str, Any]:
    """A project with `deliverables` deliverables, each with one task per node.

    Returns {"project": id, "deliverables": [ids], "tasks": {node: id} (first deliverable),
    "all_tasks": [{node: id}, ...]}. Edges are (blocker, dependent).
    """
    nodes = list(nodes)
    edges = list(edges)
    qc, milestones = set(qc), set(milestones)
    project = uuid.uuid4()
    await conn.execute(
        text(
            "INSERT INTO task.projects (id, org_id, name, template_id, template_key, "
            "template_version, template_checksum, snapshot, status, start_at, row_version, "
            "created_by) VALUES (:id, :org, 'P', :tid, 'tpl', 1, 'x', '{}'::jsonb, 'active', "
            "now(), 1, 'test')"
        ),
        {"id": project, "org": org_id, "tid": uuid.uuid4()},
    )
    blockers_of = {n: sum(1 for _, d in edges if d == n) for n in nodes}
    dl_ids: list[uuid.UUID] = []
    all_tasks: list[dict[str, uuid.UUID]] = []
    for pos in range(1, deliverables + 1):
        dl = uuid.uuid4()
        dl_ids.append(dl)
        await conn.execute(
            text(
                "INSERT INTO task.deliverables (id, org_id, project_id, name, position, serial) "
                "VALUES (:id, :org, :p, :n, :pos, :serial)"
            ),
            {
                "id": dl,
                "org": org_id,
                "p": project,
                "n": f"D{pos}",
                "pos": pos,
                "serial": f"T-{uuid.uuid4().hex[:10]}",
            },
        )
        ids = {n: uuid.uuid4() for n in nodes}
        for n in nodes:
            ms = n in milestones
            await conn.execute(
                text(
                    "INSERT INTO task.tasks (id, org_id, project_id, deliverable_id, node_key, "
                    "title, kind, work_kind, status, qc_required, is_milestone, open_blockers) "
                    "VALUES (:id, :org, :p, :d, :k, :title, 'step', :wk, :st, :qc, :ms, :ob)"
                ),
                {
                    "id": ids[n],
                    "org": org_id,
                    "p": project,
                    "d": dl,
                    "k": n,
                    "title": f"Task {n}",
                    "wk": "milestone" if ms else "work",
                    "st": "blocked" if blockers_of[n] else "ready",
                    "qc": n in qc,
                    "ms": ms,
                    "ob": blockers_of[n],
                },
            )
            await conn.execute(
                text(
                    "INSERT INTO task.task_events (org_id, task_id, action, from_status, "
                    "to_status, actor, payload, row_version) VALUES (:org, :t, 'create', NULL, "
                    ":st, 'test', '{}'::jsonb, 1)"
                ),
                {"org": org_id, "t": ids[n], "st": "blocked" if blockers_of[n] else "ready"},
            )
        for b, d in edges:
            await conn.execute(
                text("INSERT INTO task.task_dependencies (task_id, blocker_id) VALUES (:t, :b)"),
                {"t": ids[d], "b": ids[b]},
            )
        all_tasks.append(ids)
    return {
        "project": project,
        "deliverables": dl_ids,
        "tasks": all_tasks[0],
        "all_tasks": all_tasks,
    }


async def task_row(conn: AsyncConnection, task_id: uuid.UUID) -> dict[str, Any]:
    res = await conn.execute(text("SELECT * FROM task.tasks WHERE id = :id"), {"id": task_id})
    return dict(res.mappings().one())


@pytest.fixture
async def racing_client(committing_app: FastAPI) -> Any:
    include_routers(committing_app)
    transport = httpx.ASGITransport(app=committing_app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


async def test_transitions_concurrent_same_version_one_winner(
    racing_client: httpx.AsyncClient, engine: AsyncEngine, jwt_keys: Any
) -> None:
    async with engine.begin() as conn:
        g = await make_graph(conn, ["a"])
    a = g["tasks"]["a"]
    planner = jwt_keys.headers(["planner"], org_id=ORG, user_id=PLANNER)
    users = [uuid.uuid4() for _ in range(12)]

    async def assign(u: uuid.UUID) -> httpx.Response:
        return await racing_client.post(
            f"/api/v1/tasks/{a}/transitions",
            headers=planner,
            json={"action": "assign", "payload": {"assign_to": str(u)}, "expected_row_version": 1},
        )

    responses = await asyncio.gather(*(assign(u) for u in users))
    codes = sorted(r.status_code for r in responses)
    assert codes == [200] + [409] * 11
    winner = next(r for r in responses if r.status_code == 200).json()
    async with engine.connect() as conn:
        row = await task_row(conn, a)
        n = await conn.execute(
            text("SELECT count(*) FROM task.task_events WHERE task_id = :t AND action = 'assign'"),
            {"t": a},
        )
    assert row["row_version"] == 2
    assert str(row["assigned_to"]) == winner["task"]["assigned_to"]
    assert n.scalar_one() == 1


async def test_transitions_concurrent_cascades_converge_without_deadlock(
    racing_client: httpx.AsyncClient, engine: AsyncEngine, jwt_keys: Any
) -> None:
    blockers = [f"b{i}" for i in range(8)]
    async with engine.begin() as conn:
        g = await make_graph(conn, [*blockers, "d"], [(b, "d") for b in blockers])
    op = jwt_keys.headers(["operator"], org_id=ORG, user_id=OPERATOR)
    for b in blockers:
        r = await racing_client.post(
            f"/api/v1/tasks/{g['tasks'][b]}/transitions",
            headers=op,
            json={"action": "start", "expected_row_version": 1},
        )
        assert r.status_code == 200, r.text

    async def complete(b: str) -> httpx.Response:
        return await racing_client.post(
            f"/api/v1/tasks/{g['tasks'][b]}/transitions",
            headers=op,
            json={"action": "complete", "expected_row_version": 2},
        )

    responses = await asyncio.gather(*(complete(b) for b in blockers))
    assert [r.status_code for r in responses] == [200] * len(blockers)
    d = g["tasks"]["d"]
    async with engine.connect() as conn:
        row = await task_row(conn, d)
        ev = await conn.execute(
            text("SELECT action FROM task.task_events WHERE task_id = :t ORDER BY id"), {"t": d}
        )
        actions = [e[0] for e in ev]
    assert (row["status"], row["open_blockers"], row["row_version"]) == ("ready", 0, 2)
    assert actions == ["create", "unblock"]
