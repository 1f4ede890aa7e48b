"""Task gauges read from the tasks table (servicekit.sampling: one process per service).

- `tasks_in_status{status}`: tasks in each status of the state machine, all at 0 when none.
- `tasks_overdue`: open tasks (not done, not cancelled) whose due_at has passed.
"""

from __future__ import annotations

from prometheus_client import Gauge
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from task_svc.tasks.fsm import Status
from task_svc.tasks.models import Task

TASKS_IN_STATUS = Gauge(
    "tasks_in_status",
    "Tasks in each status, read from the database",
    ["status"],
    multiprocess_mode="livemax",
)
TASKS_OVERDUE = Gauge(
    "tasks_overdue",
    "Open tasks (not done or cancelled) past their due_at, read from the database",
    multiprocess_mode="livemax",
)
_CLOSED = (Status.DONE.value, Status.CANCELLED.value)


async def sample_tasks(conn: AsyncConnection) -> None:
    rows = await conn.execute(select(Task.status, func.count()).group_by(Task.status))
    counts = {status: n for status, n in rows}
    for status in Status:
        TASKS_IN_STATUS.labels(status.value).set(counts.get(status.value, 0))
    overdue = await conn.scalar(
        select(func.count())
        .select_from(Task)
        .where(Task.status.not_in(_CLOSED), Task.due_at.is_not(None), Task.due_at < func.now())
    )
    TASKS_OVERDUE.set(overdue or 0)
