"""/internal/tasks for notify-svc: open tasks due in a window (every org, by due date, cursor
pages, through the partial index), one task's summary, and service tokens only."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from servicekit.testing.plugin import JwtKeys

NOW = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)


async def seed(conn: AsyncConnection, org: uuid.UUID, tasks: list[tuple[str, str, int | None]]):
    """A project of `org` with tasks (title, status, due in minutes from NOW or None)."""
    project, dl = uuid.uuid4(), uuid.uuid4()
    await conn.execute(
        text(
            "INSERT INTO task.projects (id, org_id, name, template_id, template_key, "
            "template_version, template_checksum, snapshot, status, start_at, created_by) "
            "VALUES (:id, :org, 'Order 7', :tid, 'tpl', 1, 'x', '{}'::jsonb, 'active', now(), "
            "'planner-1')"
        ),
        {"id": project, "org": org, "tid": uuid.uuid4()},
    )
    await conn.execute(
        text(
            "INSERT INTO task.deliverables (id, org_id, project_id, name, position, serial) "
            "VALUES (:id, :org, :p, 'D1', 1, :serial)"
        ),
        {"id": dl, "org": org, "p": project, "serial": f"N-{uuid.uuid4().hex[:10]}"},
    )
    ids = {}
    for title, status, due in tasks:
        ids[title] = uuid.uuid4()
        await conn.execute(
            text(
                "INSERT INTO task.tasks (id, org_id, project_id, deliverable_id, node_key, "
                "title, kind, work_kind, status, due_at, assigned_to) "
                "VALUES (:id, :org, :p, :d, :k, :k, 'step', 'work', :st, :due, :who)"
            ),
            {
                "id": ids[title], "org": org, "p": project, "d": dl, "k": title, "st": status,
                "due": None if due is None else NOW + timedelta(minutes=due),
                "who": uuid.uuid4(),
            },
        )  # fmt: skip
    return ids


async def test_due_window_lists_open_tasks_of_every_org_in_due_order(
    client: httpx.AsyncClient, db_conn: AsyncConnection, jwt_keys: JwtKeys
) -> None:
    a, b = uuid.uuid4(), uuid.uuid4()
    ids = await seed(
        db_conn, a, [("soon", "ready", 30), ("later", "in_progress", 90), ("done", "done", 10),
                     ("undated", "ready", None), ("late", "rework", -20)],
    )  # fmt: skip
    ids |= await seed(db_conn, b, [("other-org", "blocked", 45)])
    service = {"Authorization": f"Bearer {jwt_keys.service_token('notify-svc')}"}
    params = {
        "due_after": (NOW - timedelta(hours=1)).isoformat(),
        "due_before": (NOW + timedelta(minutes=60)).isoformat(),
        "limit": "2",
    }
    first = await client.get("/internal/tasks/due", params=params, headers=service)
    assert first.status_code == 200, first.text
    page = first.json()
    second = await client.get(
        "/internal/tasks/due", params={**params, "cursor": page["next_cursor"]}, headers=service
    )
    items = page["items"] + second.json()["items"]
    assert second.json()["next_cursor"] is None
    assert [i["title"] for i in items] == ["late", "soon", "other-org"]
    soon = items[1]
    assert soon["task_id"] == str(ids["soon"]) and soon["org_id"] == str(a)
    assert (soon["project_name"], soon["planner"], soon["status"]) == ("Order 7", "planner-1",
                                                                       "ready")  # fmt: skip
    one = await client.get(
        f"/internal/tasks/{ids['soon']}", params={"org_id": str(a)}, headers=service
    )
    assert one.status_code == 200 and one.json() == soon
    elsewhere = await client.get(
        f"/internal/tasks/{ids['soon']}", params={"org_id": str(b)}, headers=service
    )
    assert elsewhere.status_code == 404 and elsewhere.json()["code"] == "TASK_NOT_FOUND"
    user = await client.get("/internal/tasks/due", params=params, headers=jwt_keys.headers())
    assert user.status_code == 403


async def test_the_window_read_uses_the_due_index(db_conn: AsyncConnection) -> None:
    await db_conn.execute(text("SET LOCAL enable_seqscan = off"))
    plan = (
        (
            await db_conn.execute(
                text(
                    "EXPLAIN SELECT id FROM task.tasks WHERE status NOT IN ('done', 'cancelled') "
                    "AND due_at IS NOT NULL AND due_at >= now() AND due_at < now() + interval '1h' "
                    "ORDER BY due_at, id"
                )
            )
        )
        .scalars()
        .all()
    )
    assert any("ix_tasks_due_at_open" in line for line in plan), plan
