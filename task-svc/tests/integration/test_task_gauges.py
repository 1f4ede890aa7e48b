"""The task gauges are the database's counts: every status present (0 when none), overdue open
tasks only."""

from __future__ import annotations

from prometheus_client import REGISTRY
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from task_svc.tasks.fsm import Status
from task_svc.tasks.gauges import sample_tasks

from ..support.taskgraph import ORG, insert_task, project_with_deliverable


def _gauges() -> tuple[dict[str, float], float]:
    by_status = {
        s.value: REGISTRY.get_sample_value("tasks_in_status", {"status": s.value}) for s in Status
    }
    assert all(v is not None for v in by_status.values()), by_status
    overdue = REGISTRY.get_sample_value("tasks_overdue")
    assert overdue is not None
    return {k: float(v or 0) for k, v in by_status.items()}, overdue


async def test_gauges_count_tasks_by_status_and_overdue(db_conn: AsyncConnection) -> None:
    await sample_tasks(db_conn)
    before, overdue_before = _gauges()
    project, deliverable = await project_with_deliverable(db_conn, org_id=ORG)
    common = {"org_id": ORG, "project_id": project, "deliverable_id": deliverable}
    late_open = await insert_task(db_conn, **common, node_key="cut", status="ready")
    late_done = await insert_task(db_conn, **common, node_key="weld", status="done")
    await insert_task(db_conn, **common, node_key="paint", status="blocked")
    await db_conn.execute(
        text("UPDATE task.tasks SET due_at = now() - interval '1 hour' WHERE id IN (:a, :b)"),
        {"a": late_open, "b": late_done},
    )
    await sample_tasks(db_conn)
    after, overdue_after = _gauges()
    changed = {s: after[s] - before[s] for s in after if after[s] != before[s]}
    assert changed == {"ready": 1, "done": 1, "blocked": 1}
    assert overdue_after == overdue_before + 1, "a done task is never overdue"
