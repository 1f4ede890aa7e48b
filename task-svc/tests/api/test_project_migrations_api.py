"""Moving running projects to another template version through the API, with the real
template-svc answering the version reads: plans, applying one (one transaction, re-checked,
idempotent, audited), the list of a project's migrations, refusals, and a batch job resumed
after its runner died."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from servicekit.jsonutil import loads
from servicekit.testing.plugin import JwtKeys
from task_svc.project_migrations import batches, job_repository

from ..support.migrations import fold_rows
from ..support.templates import planner_headers
from ..support.transitions import post_action, post_system_action, row_version

START = "2026-12-01T08:00:00Z"

V1_NODES = [
    {"key": "prep", "title": "Prepare the sheet"},
    {"key": "cut", "title": "Cut the panels", "qc_required": True,
     "qc_checklist": [{"code": "CUT-1", "text": "Square edges", "required": True}]},
    {"key": "weld", "title": "Weld the frame"},
    {"key": "paint", "title": "Paint"},
]  # fmt: skip
V1_EDGES = [("prep", "cut"), ("cut", "weld"), ("weld", "paint")]
# Version 2 adds a QC step between cut and weld and drops the painting.
V2_NODES = [
    V1_NODES[0],
    V1_NODES[1],
    {"key": "check-cut", "title": "Check the cut panels", "work_kind": "qc"},
    V1_NODES[2],
]
V2_EDGES = [("prep", "cut"), ("cut", "check-cut"), ("check-cut", "weld")]


def graph(nodes: list[dict[str, Any]], edges: list[tuple[str, str]]) -> dict[str, Any]:
    return {"nodes": nodes, "edges": [{"blocker": b, "dependent": d} for b, d in edges]}


async def publish(
    templates_api: httpx.AsyncClient,
    headers: dict[str, str],
    template_id: uuid.UUID | None,
    nodes: list[dict[str, Any]],
    edges: list[tuple[str, str]],
) -> tuple[uuid.UUID, int]:
    """A published version with this graph: version 1 of a new template, or the next one."""
    if template_id is None:
        r = await templates_api.post(
            "/api/v1/templates",
            json={"key": f"frame-{uuid.uuid4().hex[:8]}", "name": "Frame",
                  "draft": graph(nodes, edges)},
            headers=headers,
        )  # fmt: skip
        assert r.status_code == 201, r.text
        template_id, number = uuid.UUID(r.json()["id"]), 1
    else:
        r = await templates_api.post(
            f"/api/v1/templates/{template_id}/versions",
            json={"graph": graph(nodes, edges)},
            headers=headers,
        )
        assert r.status_code == 201, r.text
        number = int(r.json()["version"])
    r = await templates_api.post(
        f"/api/v1/templates/{template_id}/versions/{number}/publish", headers=headers
    )
    assert r.status_code == 200, r.text
    return template_id, number


async def start_project(
    api: httpx.AsyncClient, headers: dict[str, str], template_id: uuid.UUID, deliverables: int = 1
) -> dict[str, Any]:
    r = await api.post(
        "/api/v1/projects",
        json={"name": "Frames", "template_id": str(template_id), "template_version": 1,
              "deliverables": deliverables, "start_at": START},
        headers=headers,
    )  # fmt: skip
    assert r.status_code == 201, r.text
    return dict(r.json())


async def tasks_by_key(
    api: httpx.AsyncClient, headers: dict[str, str], project_id: str
) -> dict[str, dict[str, Any]]:
    r = await api.get(
        "/api/v1/tasks", params={"project_id": project_id, "limit": 200}, headers=headers
    )
    assert r.status_code == 200, r.text
    return {t["node_key"]: t for t in r.json()["items"]}


async def finish(api: httpx.AsyncClient, headers: dict[str, str], task: dict[str, Any]) -> int:
    """Start and complete a task; its row_version after."""
    r = await post_action(api, headers, task["id"], "start", task["row_version"])
    assert r.status_code == 200, r.text
    r = await post_action(api, headers, task["id"], "complete", row_version(r))
    assert r.status_code == 200, r.text
    return row_version(r)


async def mid_flight(
    api: httpx.AsyncClient, templates_api: httpx.AsyncClient, jwt_keys: JwtKeys
) -> tuple[uuid.UUID, dict[str, str], uuid.UUID, dict[str, Any]]:
    """A project on version 1 with prep done and cut in QC; version 2 published."""
    org = uuid.uuid4()
    headers = planner_headers(jwt_keys, org)
    template_id, _ = await publish(templates_api, headers, None, V1_NODES, V1_EDGES)
    await publish(templates_api, headers, template_id, V2_NODES, V2_EDGES)
    project = await start_project(api, headers, template_id)
    tasks = await tasks_by_key(api, headers, project["id"])
    await finish(api, headers, tasks["prep"])
    tasks = await tasks_by_key(api, headers, project["id"])
    await finish(api, headers, tasks["cut"])  # qc_required: now in QC
    return org, headers, template_id, project


async def make_plan(
    api: httpx.AsyncClient, headers: dict[str, str], project_id: str, **body: Any
) -> httpx.Response:
    return await api.post(
        f"/api/v1/projects/{project_id}/migration-plans",
        json={"to_version": 2, **body},
        headers=headers,
    )


async def history_replays(session: AsyncSession, project_id: str) -> None:
    """Every task's events fold to its row (status, row_version, node key)."""
    rows = (
        await session.execute(
            text("SELECT id, status, row_version, node_key FROM task.tasks WHERE project_id = :p"),
            {"p": project_id},
        )
    ).all()
    for tid, status, version, key in rows:
        res = await session.execute(
            text(
                "SELECT action, from_status, to_status, payload, row_version "
                "FROM task.task_events WHERE task_id = :t ORDER BY id"
            ),
            {"t": tid},
        )
        events = [
            {**e, "payload": loads(e["payload"]) if isinstance(e["payload"], str) else e["payload"]}
            for e in (dict(r) for r in res.mappings())
        ]
        assert fold_rows(events) == (status, version, key), (key, events)


async def test_migration_plan_then_apply_mid_flight(
    api: httpx.AsyncClient,
    templates_api: httpx.AsyncClient,
    jwt_keys: JwtKeys,
    session: AsyncSession,
) -> None:
    org, headers, _template_id, project = await mid_flight(api, templates_api, jwt_keys)
    pid = project["id"]
    r = await make_plan(api, headers, pid)
    assert r.status_code == 201, r.text
    plan = r.json()
    assert plan["state"] == "open" and plan["blocking_conflicts"] == []
    assert plan["graph"]["nodes_added"] == ["check-cut"]
    assert plan["graph"]["nodes_removed"] == ["paint"]
    (d,) = plan["deliverables"]
    assert d["added"] == [
        {"node_key": "check-cut", "status": "blocked", "open_blockers": 1,
         "reason": "node 'check-cut' is added, blocked by cut"}
    ]  # fmt: skip
    assert [(x["node_key"], x["status"], x["outcome"]) for x in d["removed"]] == [
        ("paint", "blocked", "cancel")
    ]
    assert {(c["node_key"], c["from"], c["to"]) for c in d["status_changes"]} == {
        ("paint", "blocked", "cancelled"),
        ("check-cut", None, "blocked"),
    }
    assert d["status_after"] == "in_progress"
    got = await api.get(f"/api/v1/projects/{pid}/migration-plans/{plan['id']}", headers=headers)
    assert got.status_code == 200 and got.json() == plan

    applied = await api.post(
        f"/api/v1/projects/{pid}/migrations",
        json={"plan_id": plan["id"], "expected_row_version": project["row_version"]},
        headers=headers,
    )
    assert applied.status_code == 201, applied.text
    migration = applied.json()
    assert (migration["from_version"], migration["to_version"]) == (1, 2)
    assert migration["counts"]["tasks_added"] == 1 and migration["counts"]["tasks_cancelled"] == 1
    tasks = await tasks_by_key(api, headers, pid)
    assert {k: t["status"] for k, t in tasks.items()} == {
        "prep": "done", "cut": "in_qc", "check-cut": "blocked", "weld": "blocked",
        "paint": "cancelled",
    }  # fmt: skip
    assert tasks["weld"]["open_blockers"] == 1
    read = await api.get(f"/api/v1/projects/{pid}", headers=headers)
    assert read.json()["template"]["version"] == 2
    assert read.json()["row_version"] == migration["project_row_version"]
    outbox = (
        await session.execute(
            text("SELECT type, payload, headers FROM task.outbox WHERE aggregate_id = :p "
                 "AND type = 'project.migrated'"),
            {"p": pid},
        )
    ).all()  # fmt: skip
    assert len(outbox) == 1
    payload = outbox[0].payload if isinstance(outbox[0].payload, dict) else loads(outbox[0].payload)
    assert payload["migration_id"] == migration["id"] and payload["tasks_added"] == 1
    headers_ = (
        outbox[0].headers if isinstance(outbox[0].headers, dict) else loads(outbox[0].headers)
    )
    assert headers_["dataschema"] == "urn:blueprint:event:project.migrated:v1"
    await history_replays(session, pid)

    # Cascades after the migration run through the usual code: cut accepted frees check-cut.
    qc_svc = {"Authorization": f"Bearer {jwt_keys.service_token('qc-svc')}"}
    r = await post_system_action(api, qc_svc, org_id=org, task_id=tasks["cut"]["id"],
                                 action="qc_accept", payload={"inspection_id": str(uuid.uuid4())},
                                 cid=f"qc-{uuid.uuid4()}")  # fmt: skip
    assert r.status_code == 200, r.text
    tasks = await tasks_by_key(api, headers, pid)
    assert tasks["check-cut"]["status"] == "ready"
    await history_replays(session, pid)

    listed = await api.get(
        f"/api/v1/projects/{pid}/migrations", params={"include_snapshot": "true"}, headers=headers
    )
    assert listed.status_code == 200, listed.text
    (item,) = listed.json()["items"]
    assert item["id"] == migration["id"]
    assert {n["key"] for n in item["previous_snapshot"]["nodes"]} == {
        "prep",
        "cut",
        "weld",
        "paint",
    }
    again = await api.get(f"/api/v1/projects/{pid}/migration-plans/{plan['id']}", headers=headers)
    assert again.json()["state"] == "applied" and again.json()["migration_id"] == migration["id"]


async def test_migration_apply_refuses_what_changed_and_replays_its_key(
    api: httpx.AsyncClient, templates_api: httpx.AsyncClient, jwt_keys: JwtKeys
) -> None:
    _org, headers, _t, project = await mid_flight(api, templates_api, jwt_keys)
    pid = project["id"]
    plan = (await make_plan(api, headers, pid)).json()
    # A task moved after the plan was made: 409 naming it, nothing applied.
    tasks = await tasks_by_key(api, headers, pid)
    r = await post_action(api, headers, tasks["weld"]["id"], "assign", tasks["weld"]["row_version"],
                          {"assign_to": str(uuid.uuid4())})  # fmt: skip
    assert r.status_code == 200, r.text
    stale = await api.post(
        f"/api/v1/projects/{pid}/migrations",
        json={"plan_id": plan["id"], "expected_row_version": project["row_version"]},
        headers=headers,
    )
    assert stale.status_code == 409, stale.text
    assert stale.json()["code"] == "MIGRATION_PLAN_STALE"
    assert [c["node_key"] for c in stale.json()["changed"]] == ["weld"]
    assert (await tasks_by_key(api, headers, pid))["paint"]["status"] == "blocked"
    # A stale project version: the usual version conflict.
    plan = (await make_plan(api, headers, pid)).json()
    wrong = await api.post(
        f"/api/v1/projects/{pid}/migrations",
        json={"plan_id": plan["id"], "expected_row_version": project["row_version"] + 5},
        headers=headers,
    )
    assert wrong.status_code == 409 and wrong.json()["code"] == "VERSION_CONFLICT", wrong.text
    # The same Idempotency-Key twice: one migration, the same answer replayed.
    key = {"Idempotency-Key": f"migrate-{uuid.uuid4()}", **headers}
    body = {"plan_id": plan["id"], "expected_row_version": project["row_version"]}
    first = await api.post(f"/api/v1/projects/{pid}/migrations", json=body, headers=key)
    assert first.status_code == 201, first.text
    second = await api.post(f"/api/v1/projects/{pid}/migrations", json=body, headers=key)
    assert second.status_code == 201 and second.json() == first.json()
    assert second.headers["Idempotent-Replayed"] == "true"
    other = await api.post(
        f"/api/v1/projects/{pid}/migrations", json={**body, "expected_row_version": 99}, headers=key
    )
    assert other.status_code == 409 and other.json()["code"] == "IDEMPOTENCY_KEY_REUSED"
    listed = await api.get(f"/api/v1/projects/{pid}/migrations", headers=headers)
    assert len(listed.json()["items"]) == 1
    # Applied once: the plan cannot be applied again.
    again = await api.post(
        f"/api/v1/projects/{pid}/migrations",
        json={"plan_id": plan["id"], "expected_row_version": first.json()["project_row_version"]},
        headers=headers,
    )
    assert again.status_code == 409 and again.json()["code"] == "MIGRATION_PLAN_APPLIED"


async def test_migration_bad_requests_are_precise_problems(
    api: httpx.AsyncClient,
    templates_api: httpx.AsyncClient,
    jwt_keys: JwtKeys,
    session: AsyncSession,
) -> None:
    org, headers, template_id, project = await mid_flight(api, templates_api, jwt_keys)
    pid = project["id"]

    async def plan_problem(body: dict[str, Any]) -> tuple[int, str]:
        r = await api.post(f"/api/v1/projects/{pid}/migration-plans", json=body, headers=headers)
        return r.status_code, r.json().get("code", "")

    assert await plan_problem({"to_version": 9}) == (422, "TEMPLATE_VERSION_NOT_FOUND")
    assert (await plan_problem({"to_version": 2, "rules": {"nope": 1}}))[0] == 422
    assert (await plan_problem({"to_version": 2, "rules": {"removed_started": "x"}}))[0] == 422
    assert await plan_problem({"to_version": 2, "rules": {"rename": {"weld": "gone"}}}) == (
        422, "RENAME_TARGET_UNKNOWN"
    )  # fmt: skip
    viewer = jwt_keys.headers(["viewer"], org_id=org, user_id=uuid.uuid4())
    r = await api.post(f"/api/v1/projects/{pid}/migration-plans", json={"to_version": 2},
                       headers=viewer)  # fmt: skip
    assert r.status_code == 403
    # A plan of another project, and an expired one.
    other = await start_project(api, headers, template_id)
    plan = (await make_plan(api, headers, pid)).json()
    r = await api.post(
        f"/api/v1/projects/{other['id']}/migrations",
        json={"plan_id": plan["id"], "expected_row_version": other["row_version"]},
        headers=headers,
    )
    assert (r.status_code, r.json()["code"]) == (422, "MIGRATION_PLAN_OF_ANOTHER_PROJECT")
    r = await api.post(
        f"/api/v1/projects/{pid}/migrations",
        json={"plan_id": str(uuid.uuid4()), "expected_row_version": 1},
        headers=headers,
    )
    assert (r.status_code, r.json()["code"]) == (422, "MIGRATION_PLAN_NOT_FOUND")
    await session.execute(
        text("UPDATE task.migration_plans SET expires_at = now() - interval '1 second' "
             "WHERE id = :id"), {"id": plan["id"]},
    )  # fmt: skip
    r = await api.post(
        f"/api/v1/projects/{pid}/migrations",
        json={"plan_id": plan["id"], "expected_row_version": project["row_version"]},
        headers=headers,
    )
    assert (r.status_code, r.json()["code"]) == (409, "MIGRATION_PLAN_EXPIRED")


async def test_migration_conflicts_block_the_apply_until_a_rule_settles_them(
    api: httpx.AsyncClient, templates_api: httpx.AsyncClient, jwt_keys: JwtKeys
) -> None:
    _org, headers, template_id, project = await mid_flight(api, templates_api, jwt_keys)
    pid = project["id"]
    # Version 3 drops cut, which is in QC: a conflict without a rule.
    await publish(
        templates_api, headers, template_id, [V1_NODES[0], V1_NODES[2]], [("prep", "weld")]
    )
    r = await make_plan(api, headers, pid, to_version=3)
    plan = r.json()
    assert [c["code"] for c in plan["blocking_conflicts"]] == ["REMOVED_TASK_STARTED"]
    r = await api.post(
        f"/api/v1/projects/{pid}/migrations",
        json={"plan_id": plan["id"], "expected_row_version": project["row_version"]},
        headers=headers,
    )
    assert (r.status_code, r.json()["code"]) == (409, "MIGRATION_PLAN_HAS_CONFLICTS")
    settled = (
        await make_plan(
            api, headers, pid, to_version=3, rules={"removed_started": "keep_as_orphan"}
        )
    ).json()
    assert settled["blocking_conflicts"] == []
    r = await api.post(
        f"/api/v1/projects/{pid}/migrations",
        json={"plan_id": settled["id"], "expected_row_version": project["row_version"]},
        headers=headers,
    )
    assert r.status_code == 201, r.text
    tasks = await tasks_by_key(api, headers, pid)
    assert tasks["cut"]["status"] == "in_qc" and tasks["weld"]["status"] == "ready"


async def test_migration_batch_job_resumes_after_its_runner_died(
    api: httpx.AsyncClient,
    app: Any,
    templates_api: httpx.AsyncClient,
    jwt_keys: JwtKeys,
    session: AsyncSession,
) -> None:
    org = uuid.uuid4()
    headers = planner_headers(jwt_keys, org)
    template_id, _ = await publish(templates_api, headers, None, V1_NODES, V1_EDGES)
    await publish(templates_api, headers, template_id, V2_NODES, V2_EDGES)
    projects = [await start_project(api, headers, template_id) for _ in range(3)]
    # The second project has weld started: adding check-cut in front of it is a conflict.
    tasks = await tasks_by_key(api, headers, projects[1]["id"])
    await finish(api, headers, tasks["prep"])
    tasks = await tasks_by_key(api, headers, projects[1]["id"])
    await finish(api, headers, tasks["cut"])
    qc_svc = {"Authorization": f"Bearer {jwt_keys.service_token('qc-svc')}"}
    r = await post_system_action(api, qc_svc, org_id=org, task_id=tasks["cut"]["id"],
                                 action="qc_accept", payload={"inspection_id": str(uuid.uuid4())},
                                 cid=f"qc-{uuid.uuid4()}")  # fmt: skip
    tasks = await tasks_by_key(api, headers, projects[1]["id"])
    r = await post_action(api, headers, tasks["weld"]["id"], "start", tasks["weld"]["row_version"])
    assert r.status_code == 200, r.text

    path = f"/api/v1/templates/{template_id}/versions/2/migrations"
    created = await api.post(path, json={"from_versions": [1]}, headers=headers)
    assert created.status_code == 202, created.text
    job = created.json()
    assert (job["status"], job["total"], job["processed"]) == ("running", 3, 0)

    # A runner takes the job, migrates the first project and dies (its lease runs out).
    db = app.state.db
    async with db.sessionmaker() as s, s.begin():
        claimed = await job_repository.claim_job(s, worker="dead", lease_seconds=60, job_id=None)
    assert claimed is not None and str(claimed["id"]) == job["id"]
    assert await batches.run_job_step(db, job=claimed, worker="dead", lease=60)
    # Another runner cannot take it while the lease holds; once it ran out, it continues.
    assert not await batches.run_one_job(db, worker="next", lease=60)
    await session.execute(
        text("UPDATE task.migration_jobs SET claimed_until = now() - interval '1 second' "
             "WHERE id = :id"), {"id": job["id"]},
    )  # fmt: skip
    assert await batches.run_one_job(db, worker="next", lease=60)
    # The dead runner, back, has lost the job.
    assert not await batches.run_job_step(db, job=claimed, worker="dead", lease=60)

    done = await api.get(f"{path}/{job['id']}", headers=headers)
    assert done.status_code == 200, done.text
    report = done.json()
    assert (report["status"], report["processed"]) == ("completed", 3)
    by_project = {i["project_id"]: i for i in report["items"]}
    assert [by_project[p["id"]]["status"] for p in projects] == ["migrated", "skipped", "migrated"]
    skipped = by_project[projects[1]["id"]]["detail"]
    assert skipped["blocking_conflicts"][0]["code"] == "BLOCKER_ADDED_TO_STARTED"
    for p, version in zip(projects, (2, 1, 2), strict=True):
        read = await api.get(f"/api/v1/projects/{p['id']}", headers=headers)
        assert read.json()["template"]["version"] == version
        listed = await api.get(f"/api/v1/projects/{p['id']}/migrations", headers=headers)
        assert len(listed.json()["items"]) == (1 if version == 2 else 0)
        await history_replays(session, p["id"])
    missing = await api.get(f"{path}/{uuid.uuid4()}", headers=headers)
    assert (missing.status_code, missing.json()["code"]) == (404, "MIGRATION_JOB_NOT_FOUND")


async def test_a_project_that_cannot_be_migrated_fails_alone_and_the_job_goes_on(
    api: httpx.AsyncClient,
    app: Any,
    templates_api: httpx.AsyncClient,
    jwt_keys: JwtKeys,
    session: AsyncSession,
) -> None:
    org = uuid.uuid4()
    headers = planner_headers(jwt_keys, org)
    template_id, _ = await publish(templates_api, headers, None, V1_NODES, V1_EDGES)
    await publish(templates_api, headers, template_id, V2_NODES, V2_EDGES)
    projects = [await start_project(api, headers, template_id) for _ in range(3)]
    # The second project's snapshot is damaged (a node without a key): not a refusal the
    # planner knows, an error that would come back at every retry.
    await session.execute(
        text("""UPDATE task.projects SET snapshot = '{"nodes": [{"title": "x"}]}'::jsonb """
             "WHERE id = :id"), {"id": projects[1]["id"]},
    )  # fmt: skip
    path = f"/api/v1/templates/{template_id}/versions/2/migrations"
    job = (await api.post(path, json={"from_versions": [1]}, headers=headers)).json()
    assert await batches.run_one_job(app.state.db, worker="one", lease=60)
    report = (await api.get(f"{path}/{job['id']}", headers=headers)).json()
    assert (report["status"], report["processed"]) == ("completed", 3)
    by_project = {i["project_id"]: i for i in report["items"]}
    assert [by_project[p["id"]]["status"] for p in projects] == ["migrated", "failed", "migrated"]
    failed = by_project[projects[1]["id"]]["detail"]
    assert failed["code"] == "INTERNAL_ERROR" and failed["reason"].startswith("KeyError")
