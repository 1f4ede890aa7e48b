"""A dependency carries its task's project, whether the insert names it or not."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from ..support.taskgraph import ORG, insert_edge, insert_task, project_with_deliverable


async def test_an_edge_inserted_without_its_project_gets_the_tasks_project(
    db_conn: AsyncConnection,
) -> None:
    project, deliverable = await project_with_deliverable(db_conn, org_id=ORG)
    common = {"org_id": ORG, "project_id": project, "deliverable_id": deliverable}
    cut = await insert_task(db_conn, **common, node_key="cut", status="ready")
    weld = await insert_task(db_conn, **common, node_key="weld", status="blocked")
    await insert_edge(db_conn, blocker=cut, dependent=weld)
    stored = await db_conn.scalar(
        text("SELECT project_id FROM task.task_dependencies WHERE task_id = :t"), {"t": weld}
    )
    assert stored == project
