"""One organisation with one of everything, built through the gateway: real ids for tests that
call every operation (fuzzing, the tenant and role matrices)."""

from __future__ import annotations

import time
import uuid
from typing import Any

import httpx

from blueprint_stack import Stack
from blueprint_stack.keys import mint_dev_token

ROLES = ("admin", "planner", "operator", "inspector", "approver", "viewer")
GRAPH = {
    "nodes": [
        {"key": "cut", "title": "Cut"},
        {
            "key": "paint",
            "title": "Paint",
            "qc_required": True,
            "qc_checklist": [{"code": "P-1", "text": "No runs"}],
        },
        {"key": "pack", "title": "Pack"},
    ],
    "edges": [
        {"blocker": "cut", "dependent": "paint"},
        {"blocker": "paint", "dependent": "pack"},
    ],
}


def is_event_stream(op: dict[str, Any]) -> bool:
    """An operation that answers an endless text/event-stream (the live stream): matrices that
    read whole answers leave it to its own tests (tests/e2e/test_stream_e2e.py)."""
    ok = op.get("responses", {}).get("200", {})
    return "text/event-stream" in (ok.get("content") or {})


class World:
    """A published template, a project and its tasks, and an inspection with a defect, all in
    one fresh org. `ids` maps each path parameter name to real values of it."""

    def __init__(self, stack: Stack) -> None:
        self.org_id = uuid.uuid4()
        self.user_id = uuid.uuid4()
        self.keys = stack.config.keys_dir
        self.gateway = f"http://127.0.0.1:{stack.config.gateway_port}"
        self.tokens = {role: self.headers(role) for role in ROLES}
        with httpx.Client(base_url=self.gateway, timeout=15, trust_env=False) as client:
            self.client = client
            self.ids = self._build()

    def headers(self, role: str, user_id: uuid.UUID | None = None) -> dict[str, str]:
        token = mint_dev_token(
            self.keys, roles=[role], org_id=self.org_id, user_id=user_id or self.user_id
        )
        return {"Authorization": f"Bearer {token}"}

    def _call(self, method: str, path: str, status: int, **kw: Any) -> Any:
        kw.setdefault("headers", self.tokens["admin"])
        resp = self.client.request(method, path, **kw)
        assert resp.status_code == status, f"{method} {path}: {resp.status_code} {resp.text}"
        return resp.json()

    def _build(self) -> dict[str, list[str]]:
        template = self._call(
            "POST", "/api/v1/templates", 201, json={"key": "world", "name": "W", "draft": GRAPH}
        )
        tid = template["id"]
        self._call("POST", f"/api/v1/templates/{tid}/versions/1/publish", 200)
        project = self._call(
            "POST",
            "/api/v1/projects",
            201,
            json={
                "name": "World",
                "template_id": tid,
                "deliverables": 1,
                "start_at": "2026-12-01T08:00:00Z",
            },
        )
        pid = project["id"]
        page = self._call("GET", f"/api/v1/tasks?project_id={pid}&limit=50", 200)
        tasks = {t["node_key"]: t for t in page["items"]}
        for key in ("cut", "paint"):
            for action in ("start", "complete"):
                self._act(tasks[key]["id"], action)
        inspection = self._inspection(tasks["paint"]["id"])
        inspection = self._command(inspection, "claim", {})
        inspection = self._command(
            inspection,
            "defects",
            {"code": "P-RUN", "severity": "minor", "description": "a run"},
            status=201,
        )
        hook = self._call(
            "POST",
            "/api/v1/webhooks/endpoints",
            201,
            json={"url": "http://127.0.0.1:9/hook", "event_types": ["webhook.test"]},
        )
        delivery = self._call("POST", f"/api/v1/webhooks/endpoints/{hook['id']}/test", 202)
        job = self._call(
            "POST",
            f"/api/v1/webhooks/endpoints/{hook['id']}/recover",
            202,
            json={"since": "2026-01-01T00:00:00Z"},
        )
        plan = self._call(
            "POST", f"/api/v1/projects/{pid}/migration-plans", 201, json={"to_version": 1}
        )
        # Version 2 of the same graph: a dry-run batch from version 1 to it.
        self._call("POST", f"/api/v1/templates/{tid}/versions", 201, json={"graph": GRAPH})
        self._call("POST", f"/api/v1/templates/{tid}/versions/2/publish", 200)
        migration_job = self._call(
            "POST",
            f"/api/v1/templates/{tid}/versions/2/migrations",
            202,
            json={"from_versions": [1], "dry_run": True},
        )
        mail = self._call(
            "POST",
            "/api/v1/notifications/email",
            202,
            json={"to": "world@example.com", "subject": "World", "body": "Hello."},
        )
        return {
            "endpoint_id": [hook["id"]],
            "delivery_id": [delivery["id"]],
            "job_id": [job["id"], mail["job_id"], migration_job["id"]],
            "plan_id": [plan["id"]],
            "user_id": [str(self.user_id)],
            "template_id": [tid],
            "version": ["1"],
            "other": ["1"],
            "project_id": [pid],
            "deliverable_id": [t["deliverable_id"] for t in tasks.values()][:1],
            "task_id": [t["id"] for t in tasks.values()],
            "inspection_id": [inspection["id"]],
            "defect_id": [d["id"] for d in inspection["defects"]],
        }

    def _act(self, task_id: str, action: str) -> None:
        version = self._call("GET", f"/api/v1/tasks/{task_id}", 200)["row_version"]
        self._call(
            "POST",
            f"/api/v1/tasks/{task_id}/transitions",
            200,
            json={
                "action": action,
                "expected_row_version": version,
                "client_event_id": str(uuid.uuid4()),
            },
        )

    def _inspection(self, task_id: str) -> dict[str, Any]:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            items = self._call("GET", f"/api/v1/inspections?task_id={task_id}", 200)["items"]
            if items:
                return dict(items[0])
            time.sleep(0.1)
        raise AssertionError(f"no inspection was created for task {task_id}")

    def _command(
        self, inspection: dict[str, Any], what: str, body: dict[str, Any], status: int = 200
    ) -> dict[str, Any]:
        payload = {
            **body,
            "expected_row_version": inspection["row_version"],
            "client_event_id": str(uuid.uuid4()),
        }
        path = f"/api/v1/inspections/{inspection['id']}/{what}"
        return dict(self._call("POST", path, status, json=payload))
