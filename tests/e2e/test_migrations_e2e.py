"""A running project moved to a new template version through the gateway, on the real
platform: a project mid-flight (prep done, cut in QC) moves to a version that adds a QC step
after cut and drops the unstarted painting. The plan says exactly that, applying it gives the
expected statuses, and a webhook subscriber receives the signed `project.migrated` event."""

from __future__ import annotations

import time
import uuid
from typing import Any

import httpx
import pytest
from standardwebhooks.webhooks import Webhook

from blueprint_stack import Stack
from blueprint_stack.keys import mint_dev_token
from blueprint_stack.testing import wait_for
from notify_svc.receiver import Receiver

pytestmark = pytest.mark.e2e

DEADLINE = 30.0
V1 = {
    "nodes": [
        {"key": "prep", "title": "Prepare the sheet"},
        {
            "key": "cut",
            "title": "Cut the panels",
            "qc_required": True,
            "qc_checklist": [{"code": "CUT-1", "text": "Square edges", "required": True}],
        },
        {"key": "weld", "title": "Weld the frame"},
        {"key": "paint", "title": "Paint"},
    ],
    "edges": [
        {"blocker": "prep", "dependent": "cut"},
        {"blocker": "cut", "dependent": "weld"},
        {"blocker": "weld", "dependent": "paint"},
    ],
}
V2 = {
    "nodes": [
        V1["nodes"][0],
        V1["nodes"][1],
        {"key": "check-cut", "title": "Check the cut panels", "work_kind": "qc"},
        V1["nodes"][2],
    ],
    "edges": [
        {"blocker": "prep", "dependent": "cut"},
        {"blocker": "cut", "dependent": "check-cut"},
        {"blocker": "check-cut", "dependent": "weld"},
    ],
}


class Planner:
    def __init__(self, stack: Stack, gateway: httpx.Client) -> None:
        self.gateway = gateway
        token = mint_dev_token(
            stack.config.keys_dir, roles=["planner"], org_id=uuid.uuid4(), user_id=uuid.uuid4()
        )
        self.headers = {"Authorization": f"Bearer {token}"}

    def call(self, method: str, path: str, status: int, **kw: Any) -> Any:
        for _ in range(50):  # the gateway's write limit answers 429: wait it out
            resp = self.gateway.request(method, path, headers=self.headers, **kw)
            if resp.status_code != 429:
                break
            time.sleep(0.2)
        assert resp.status_code == status, f"{method} {path}: {resp.status_code} {resp.text}"
        return resp.json() if resp.content else {}

    def tasks(self, project_id: str) -> dict[str, dict[str, Any]]:
        page = self.call(
            "GET", "/api/v1/tasks", 200, params={"project_id": project_id, "limit": "100"}
        )
        return {t["node_key"]: t for t in page["items"]}

    def act(self, task: dict[str, Any], action: str) -> dict[str, Any]:
        body = {
            "action": action,
            "expected_row_version": task["row_version"],
            "client_event_id": f"{action}-{uuid.uuid4().hex[:12]}",
        }
        result: dict[str, Any] = self.call(
            "POST", f"/api/v1/tasks/{task['id']}/transitions", 200, json=body
        )
        return dict(result["task"])


def test_a_project_mid_flight_moves_to_a_version_with_a_new_qc_step(
    stack: Stack, gateway: httpx.Client
) -> None:
    planner = Planner(stack, gateway)
    template = planner.call(
        "POST",
        "/api/v1/templates",
        201,
        json={"key": f"mig-{uuid.uuid4().hex[:8]}", "name": "Frame", "draft": V1},
    )
    tid = template["id"]
    planner.call("POST", f"/api/v1/templates/{tid}/versions/1/publish", 200)
    v2 = planner.call("POST", f"/api/v1/templates/{tid}/versions", 201, json={"graph": V2})
    planner.call("POST", f"/api/v1/templates/{tid}/versions/{v2['version']}/publish", 200)
    project = planner.call(
        "POST",
        "/api/v1/projects",
        201,
        json={
            "name": "Frames",
            "template_id": tid,
            "template_version": 1,
            "deliverables": 1,
            "start_at": "2026-12-01T08:00:00Z",
        },
    )
    pid = project["id"]
    tasks = planner.tasks(pid)
    planner.act(planner.act(tasks["prep"], "start"), "complete")
    cut = planner.act(planner.tasks(pid)["cut"], "start")
    assert planner.act(cut, "complete")["status"] == "in_qc"

    with Receiver() as receiver:
        hook = planner.call(
            "POST",
            "/api/v1/webhooks/endpoints",
            201,
            json={"url": receiver.url, "event_types": ["project.migrated"]},
        )
        plan = planner.call(
            "POST", f"/api/v1/projects/{pid}/migration-plans", 201, json={"to_version": 2}
        )
        assert plan["blocking_conflicts"] == []
        assert plan["graph"]["nodes_added"] == ["check-cut"]
        assert plan["graph"]["nodes_removed"] == ["paint"]
        (d,) = plan["deliverables"]
        assert [(a["node_key"], a["status"]) for a in d["added"]] == [("check-cut", "blocked")]
        assert [(r["node_key"], r["outcome"]) for r in d["removed"]] == [("paint", "cancel")]
        assert sorted((c["node_key"], c["from"], c["to"]) for c in d["status_changes"]) == [
            ("check-cut", None, "blocked"),
            ("paint", "blocked", "cancelled"),
        ]
        assert d["kept"] == []

        migration = planner.call(
            "POST",
            f"/api/v1/projects/{pid}/migrations",
            201,
            json={"plan_id": plan["id"], "expected_row_version": project["row_version"]},
        )
        statuses = {k: t["status"] for k, t in planner.tasks(pid).items()}
        assert statuses == {
            "prep": "done",
            "cut": "in_qc",
            "check-cut": "blocked",
            "weld": "blocked",
            "paint": "cancelled",
        }
        assert planner.call("GET", f"/api/v1/projects/{pid}", 200)["template"]["version"] == 2

        wait_for(lambda: receiver.requests(), "the project.migrated webhook", DEADLINE)
        (event,) = [Webhook(hook["secret"]).verify(r.body, r.headers) for r in receiver.requests()]
        assert event["type"] == "project.migrated"
        data = event["data"]
        assert (data["project_id"], data["migration_id"]) == (pid, migration["id"])
        assert (data["from_version"], data["to_version"]) == (1, 2)
        assert (data["tasks_added"], data["tasks_cancelled"]) == (1, 1)

    listed = planner.call("GET", f"/api/v1/projects/{pid}/migrations", 200)
    assert [m["id"] for m in listed["items"]] == [migration["id"]]
