"""A whole project walked through the API, as its people would: from a real published template
(the 12-node cabinet: a diamond, a task needing QC, QC steps and a closing milestone) to a
completed project.

Every round takes the tasks the API lists as ready, a planner assigns each, its operator starts
and completes it; a task needing QC is accepted through the internal system route, as qc-svc
does. Nothing is started out of order (a blocked start would be refused), every deliverable ends
ready for sign-off, an approver signs each off, and the last sign-off completes the project.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from servicekit.testing.plugin import JwtKeys
from task_svc.projects import repository
from task_svc.projects.dashboard import build_dashboard
from task_svc.tasks import queries

from ..support.graphs import CABINET_EDGES, CABINET_NODES
from ..support.templates import planner_headers, publish_template
from ..support.transitions import post_action, post_system_action, row_version

DELIVERABLES = 2
NODES = len(CABINET_NODES)
MILESTONES = {n["key"] for n in CABINET_NODES if n.get("work_kind") == "milestone"}
NEEDS_QC = {n["key"] for n in CABINET_NODES if n.get("qc_required")}


async def ready_tasks(
    api: httpx.AsyncClient, headers: dict[str, str], project_id: str
) -> list[dict[str, Any]]:
    resp = await api.get(
        "/api/v1/tasks",
        params={"project_id": project_id, "status": "ready", "limit": 200},
        headers=headers,
    )
    assert resp.status_code == 200, resp.text
    assert resp.json()["next_cursor"] is None
    return list(resp.json()["items"])


async def dashboard_matches_its_definition(
    api: httpx.AsyncClient,
    session: AsyncSession,
    headers: dict[str, str],
    org: uuid.UUID,
    project_id: str,
) -> dict[str, Any]:
    """The dashboard the API computes in SQL equals the pure one computed from every task and
    edge of the project (all but the clock-dependent fields)."""
    resp = await api.get(f"/api/v1/projects/{project_id}/dashboard", headers=headers)
    assert resp.status_code == 200, resp.text
    served = resp.json()
    pid = uuid.UUID(project_id)
    project = await repository.get_project(session, org_id=org, project_id=pid)
    deliverables = await repository.list_deliverables(session, org_id=org, project_id=pid)
    tasks, edges = await queries.project_graph(session, org_id=org, project_id=pid)
    as_of = datetime.fromisoformat(served["critical_path"]["as_of"])
    expected = build_dashboard(
        project=project, deliverables=deliverables, tasks=tasks, edges=edges, now=as_of
    ).model_dump(mode="json")
    assert served == expected
    return served


async def test_walk_whole_project_to_completion(
    api: httpx.AsyncClient,
    templates_api: httpx.AsyncClient,
    jwt_keys: JwtKeys,
    session: AsyncSession,
) -> None:
    org = uuid.uuid4()
    planner = planner_headers(jwt_keys, org)
    operator_id = uuid.uuid4()
    operator = jwt_keys.headers(["operator"], org_id=org, user_id=operator_id)
    approver = jwt_keys.headers(["approver"], org_id=org, user_id=uuid.uuid4())
    qc_svc = {"Authorization": f"Bearer {jwt_keys.service_token('qc-svc')}"}
    template_id = await publish_template(templates_api, jwt_keys, org)

    created = await api.post(
        "/api/v1/projects",
        json={
            "name": "Two cabinets",
            "template_id": str(template_id),
            "deliverables": DELIVERABLES,
            "start_at": "2026-12-01T08:00:00Z",
        },
        headers=planner,
    )
    assert created.status_code == 201, created.text
    project = created.json()
    pid = project["id"]

    finished: list[tuple[str, str]] = []  # (deliverable id, node key), in completion order
    qc_accepted = 0
    for _round in range(NODES + 1):
        dashboard = await dashboard_matches_its_definition(api, session, planner, org, pid)
        # Milestones (the closing `ship`) complete themselves with the last work task.
        all_work = len(finished) == DELIVERABLES * (NODES - len(MILESTONES))
        milestones_done = DELIVERABLES * len(MILESTONES) if all_work else 0
        assert dashboard["counts"]["done"] == len(finished) + milestones_done
        ready = await ready_tasks(api, planner, pid)
        if not ready:
            break
        for task in ready:
            tid, key = task["id"], task["node_key"]
            assert key not in MILESTONES  # a milestone completes by itself once unblocked
            r = await post_action(
                api, planner, tid, "assign", task["row_version"], {"assign_to": str(operator_id)}
            )
            assert r.status_code == 200, r.text
            r = await post_action(api, operator, tid, "start", row_version(r))
            assert r.status_code == 200, r.text
            r = await post_action(
                api, operator, tid, "complete", row_version(r), {"note": "done right"}
            )
            assert r.status_code == 200, r.text
            if key in NEEDS_QC:
                assert r.json()["task"]["status"] == "in_qc"
                r = await post_system_action(
                    api,
                    qc_svc,
                    org_id=org,
                    task_id=tid,
                    action="qc_accept",
                    payload={"inspection_id": str(uuid.uuid4())},
                    cid=f"walk-qc-{tid}",
                )
                assert r.status_code == 200, r.text
                qc_accepted += 1
            assert r.json()["task"]["status"] == "done"
            finished.append((task["deliverable_id"], key))
    else:
        raise AssertionError("the walk did not run out of ready tasks")

    # Every work task was done by hand, in dependency order, in every deliverable.
    assert len(finished) == DELIVERABLES * (NODES - len(MILESTONES))
    assert qc_accepted == DELIVERABLES * len(NEEDS_QC)
    for d in project["deliverables"]:
        order = [key for dl, key in finished if dl == d["id"]]
        position = {key: i for i, key in enumerate(order)}
        for edge in CABINET_EDGES:
            if edge["dependent"] not in MILESTONES:
                assert position[edge["blocker"]] < position[edge["dependent"]], edge

    dashboard = await dashboard_matches_its_definition(api, session, planner, org, pid)
    assert dashboard["counts"]["done"] == DELIVERABLES * NODES
    assert dashboard["progress"]["by_count"] == 1.0
    assert dashboard["critical_path"]["steps"] == []

    deliverables = []
    for d in project["deliverables"]:
        resp = await api.get(f"/api/v1/deliverables/{d['id']}", headers=planner)
        assert resp.status_code == 200, resp.text
        assert resp.json()["status"] == "ready_for_signoff"
        deliverables.append(resp.json())

    for i, d in enumerate(deliverables):
        resp = await api.post(
            f"/api/v1/deliverables/{d['id']}/signoff",
            json={
                "decision": "approved",
                "comment": "inspected",
                "expected_row_version": d["row_version"],
            },
            headers=approver,
        )
        assert resp.status_code == 200, resp.text
        result = resp.json()
        assert result["status"] == "signed_off"
        assert result["project_completed"] is (i == len(deliverables) - 1)

    final = (await api.get(f"/api/v1/projects/{pid}", headers=planner)).json()
    assert final["status"] == "completed"
    assert final["completed_at"] is not None
    assert [d["status"] for d in final["deliverables"]] == ["signed_off"] * DELIVERABLES
