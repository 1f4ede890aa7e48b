"""Whole-project reads: the dashboard and the graph (a constant number of queries each)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from servicekit.errors import NotFound
from task_svc.graph.mermaid import MermaidNode, render
from task_svc.projects import dashboard_sql, repository
from task_svc.projects.models import Project
from task_svc.projects.schemas import Dashboard, GraphEdge, GraphNode, ProjectGraph
from task_svc.tasks import queries as task_queries


async def _project(session: AsyncSession, *, org_id: uuid.UUID, project_id: uuid.UUID) -> Project:
    project = await repository.get_project(session, org_id=org_id, project_id=project_id)
    if project is None:
        raise NotFound(f"project {project_id} does not exist", code="PROJECT_NOT_FOUND")
    return project


async def get_dashboard(
    session: AsyncSession, *, org_id: uuid.UUID, project_id: uuid.UUID, now: datetime | None = None
) -> Dashboard:
    return await dashboard_sql.get_dashboard(
        session, org_id=org_id, project_id=project_id, now=now or datetime.now(UTC)
    )


async def get_graph(
    session: AsyncSession, *, org_id: uuid.UUID, project_id: uuid.UUID
) -> ProjectGraph:
    await _project(session, org_id=org_id, project_id=project_id)
    tasks, edges = await task_queries.project_graph(session, org_id=org_id, project_id=project_id)
    return ProjectGraph(
        project_id=project_id,
        nodes=[
            GraphNode(
                id=t.id,
                deliverable_id=t.deliverable_id,
                node_key=t.node_key,
                title=t.title,
                status=t.status,
                is_milestone=t.is_milestone,
                assigned_to=t.assigned_to,
            )
            for t in tasks
        ],
        edges=[GraphEdge(blocker=b, dependent=d) for b, d in edges],
    )


async def get_graph_mermaid(
    session: AsyncSession, *, org_id: uuid.UUID, project_id: uuid.UUID
) -> str:
    await _project(session, org_id=org_id, project_id=project_id)
    deliverables = await repository.list_deliverables(session, org_id=org_id, project_id=project_id)
    serials = {d.id: f"{d.serial} {d.name}" for d in deliverables}
    tasks, edges = await task_queries.project_graph(session, org_id=org_id, project_id=project_id)
    nodes = [
        MermaidNode(
            id=str(t.id), title=t.title, status=t.status, group=serials.get(t.deliverable_id)
        )
        for t in tasks
    ]
    return render(nodes, [(str(b), str(d)) for b, d in edges])
