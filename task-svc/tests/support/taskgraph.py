"""Task graphs written straight into task-svc's tables, and a client with the transition routes.

For tests of the state machine that need tasks in a given state without going through a
template and a project start.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from task_svc.deliverables.signoff_router import router as signoff_router
from task_svc.tasks.transitions_router import router as transitions_router

ORG = uuid.UUID("00000000-0000-4000-8000-00000000a001")
OTHER_ORG = uuid.UUID("00000000-0000-4000-8000-00000000a002")
PLANNER = uuid.UUID("00000000-0000-4000-8000-0000000000b1")
OPERATOR = uuid.UUID("00000000-0000-4000-8000-0000000000b2")
OPERATOR2 = uuid.UUID("00000000-0000-4000-8000-0000000000b3")
APPROVER = uuid.UUID("00000000-0000-4000-8000-0000000000b4")


def include_routers(app: FastAPI) -> FastAPI:
    """The app with the transition and sign-off routes (added once)."""
    paths = {getattr(r, "path", None) for r in app.routes}
    if "/api/v1/tasks/{task_id}/transitions" not in paths:
        app.include_router(transitions_router)
    if "/api/v1/deliverables/{deliverable_id}/signoff" not in paths:
        app.include_router(signoff_router)
    return app


@asynccontextmanager
async def asgi_client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """A client on `app` (with the transition routes) that answers errors instead of raising."""
    transport = httpx.ASGITransport(app=include_routers(app), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


async def insert_project(
    conn: AsyncConnection, *, org_id: uuid.UUID, status: str = "active"
) -> uuid.UUID:
    project = uuid.uuid4()
    await conn.execute(
        text(
            "INSERT INTO task.projects (id, org_id, name, template_id, template_key, "
            "template_version, template_checksum, snapshot, status, start_at, created_by) "
            "VALUES (:id, :org, 'P', :tid, 'tpl', 1, 'x', '{}'::jsonb, :status, now(), 'test')"
        ),
        {"id": project, "org": org_id, "tid": uuid.uuid4(), "status": status},
    )
    return project


async def insert_deliverable(
    conn: AsyncConnection,
    *,
    org_id: uuid.UUID,
    project_id: uuid.UUID,
    position: int = 1,
    serial_prefix: str = "T",
) -> uuid.UUID:
    deliverable = uuid.uuid4()
    await conn.execute(
        text(
            "INSERT INTO task.deliverables (id, org_id, project_id, name, position, serial) "
            "VALUES (:id, :org, :p, :n, :pos, :serial)"
        ),
        {
            "id": deliverable,
            "org": org_id,
            "p": project_id,
            "n": f"D{position}",
            "pos": position,
            "serial": f"{serial_prefix}-{uuid.uuid4().hex[:10]}",
        },
    )
    return deliverable


async def project_with_deliverable(
    conn: AsyncConnection, *, org_id: uuid.UUID, serial_prefix: str = "T"
) -> tuple[uuid.UUID, uuid.UUID]:
    """An active project with one deliverable: (project id, deliverable id)."""
    project = await insert_project(conn, org_id=org_id)
    deliverable = await insert_deliverable(
        conn, org_id=org_id, project_id=project, serial_prefix=serial_prefix
    )
    return project, deliverable


async def insert_task(
    conn: AsyncConnection,
    *,
    org_id: uuid.UUID,
    project_id: uuid.UUID,
    deliverable_id: uuid.UUID,
    node_key: str,
    status: str,
    title: str | None = None,
    qc: bool = False,
    milestone: bool = False,
    open_blockers: int = 0,
    assigned_to: uuid.UUID | None = None,
    create_event: bool = False,
) -> uuid.UUID:
    """One task (row_version 1); with `create_event`, also its `create` event in the history."""
    task = uuid.uuid4()
    await conn.execute(
        text(
            "INSERT INTO task.tasks (id, org_id, project_id, deliverable_id, node_key, title, "
            "kind, work_kind, status, qc_required, is_milestone, open_blockers, assigned_to) "
            "VALUES (:id, :org, :p, :d, :k, :title, 'step', :wk, :st, :qc, :ms, :ob, :who)"
        ),
        {
            "id": task,
            "org": org_id,
            "p": project_id,
            "d": deliverable_id,
            "k": node_key,
            "title": title if title is not None else node_key,
            "wk": "milestone" if milestone else "work",
            "st": status,
            "qc": qc,
            "ms": milestone,
            "ob": open_blockers,
            "who": assigned_to,
        },
    )
    if create_event:
        await conn.execute(
            text(
                "INSERT INTO task.task_events (org_id, task_id, action, from_status, to_status, "
                "actor, payload, row_version) "
                "VALUES (:org, :t, 'create', NULL, :st, 'test', '{}'::jsonb, 1)"
            ),
            {"org": org_id, "t": task, "st": status},
        )
    return task


async def insert_edge(conn: AsyncConnection, *, blocker: uuid.UUID, dependent: uuid.UUID) -> None:
    await conn.execute(
        text("INSERT INTO task.task_dependencies (task_id, blocker_id) VALUES (:t, :b)"),
        {"t": dependent, "b": blocker},
    )


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
    project = await insert_project(conn, org_id=org_id)
    blockers_of = {n: sum(1 for _, d in edges if d == n) for n in nodes}
    dl_ids: list[uuid.UUID] = []
    all_tasks: list[dict[str, uuid.UUID]] = []
    for pos in range(1, deliverables + 1):
        dl = await insert_deliverable(conn, org_id=org_id, project_id=project, position=pos)
        dl_ids.append(dl)
        ids = {
            n: await insert_task(
                conn,
                org_id=org_id,
                project_id=project,
                deliverable_id=dl,
                node_key=n,
                title=f"Task {n}",
                status="blocked" if blockers_of[n] else "ready",
                qc=n in qc,
                milestone=n in milestones,
                open_blockers=blockers_of[n],
                create_event=True,
            )
            for n in nodes
        }
        for b, d in edges:
            await insert_edge(conn, blocker=ids[b], dependent=ids[d])
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
