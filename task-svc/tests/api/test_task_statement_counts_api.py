"""The number of SQL statements of a list, dashboard or bootstrap does not grow with size."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from servicekit.testing.plugin import JwtKeys

from ..support.templates import planner_headers, publish_template


class StatementCounter:
    def __init__(self) -> None:
        self.statements: list[str] = []

    def __call__(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        # The test app's units of work run in savepoints of the test's transaction: not ours.
        if "SAVEPOINT" not in statement:
            self.statements.append(statement)


@contextmanager
def counting(engine: AsyncEngine) -> Iterator[StatementCounter]:
    counter = StatementCounter()
    event.listen(engine.sync_engine, "before_cursor_execute", counter)
    try:
        yield counter
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", counter)


async def count(
    engine: AsyncEngine, api: httpx.AsyncClient, method: str, url: str, **kw: Any
) -> tuple[int, httpx.Response]:
    with counting(engine) as counter:
        resp = await api.request(method, url, **kw)
    assert resp.status_code < 300, resp.text
    return len(counter.statements), resp


async def test_statements_do_not_grow_with_project_or_page_size(
    api: httpx.AsyncClient,
    templates_api: httpx.AsyncClient,
    jwt_keys: JwtKeys,
    engine: AsyncEngine,
) -> None:
    org = uuid.uuid4()
    headers = planner_headers(jwt_keys, org)
    template_id = await publish_template(templates_api, jwt_keys, org)

    def create(n: int) -> dict[str, Any]:
        return {
            "name": f"{n}",
            "template_id": str(template_id),
            "deliverables": n,
            "start_at": "2026-12-01T08:00:00Z",
        }

    small_boot, small = await count(
        engine, api, "POST", "/api/v1/projects", json=create(1), headers=headers
    )
    big_boot, big = await count(
        engine, api, "POST", "/api/v1/projects", json=create(8), headers=headers
    )
    assert small_boot == big_boot <= 12
    assert big.json()["task_count"] == 96

    results: dict[str, list[int]] = {}
    for project in (small.json(), big.json()):
        pid = project["id"]
        urls = {
            "project": f"/api/v1/projects/{pid}",
            "dashboard": f"/api/v1/projects/{pid}/dashboard",
            "graph": f"/api/v1/projects/{pid}/graph",
            "mermaid": f"/api/v1/projects/{pid}/graph?format=mermaid",
            "tasks-page-5": f"/api/v1/tasks?project_id={pid}&limit=5",
            "tasks-page-200": f"/api/v1/tasks?project_id={pid}&limit=200",
            "task": f"/api/v1/tasks/{project['deliverables'][0]['id']}",
            "deliverable": f"/api/v1/deliverables/{project['deliverables'][-1]['id']}",
            "projects": "/api/v1/projects?limit=1",
        }
        task_id = (await api.get(urls["tasks-page-5"], headers=headers)).json()["items"][0]["id"]
        urls["task"] = f"/api/v1/tasks/{task_id}"
        for name, url in urls.items():
            n, _ = await count(engine, api, "GET", url, headers=headers)
            results.setdefault(name, []).append(n)
    for name, (small_n, big_n) in results.items():
        assert small_n == big_n, (name, small_n, big_n)
        assert small_n <= 4, (name, small_n)
    assert results["tasks-page-5"] == results["tasks-page-200"]
