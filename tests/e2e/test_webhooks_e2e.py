"""Webhooks on the real platform: services, events processes, the Celery worker and beat, and
real receivers on this machine; every request verified with the `standardwebhooks` package."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from blueprint_stack import Stack
from blueprint_stack.keys import mint_dev_token
from blueprint_stack.testing import wait_for
from notify_svc.receiver import Received, Receiver, always, sequence

pytestmark = pytest.mark.e2e

HOOKS = "/api/v1/webhooks"
# The stack retries on [1, 2, 4] s: dead after about 7 s.
DEADLINE = 30.0


class Subscriber:
    """One org with a planner and an operator, and its webhook endpoints, via the gateway."""

    def __init__(self, stack: Stack, gateway: httpx.Client) -> None:
        self.gateway = gateway
        self.org_id = uuid.uuid4()

        def headers(role: str) -> dict[str, str]:
            token = mint_dev_token(
                stack.config.keys_dir, roles=[role], org_id=self.org_id, user_id=uuid.uuid4()
            )
            return {"Authorization": f"Bearer {token}"}

        self.planner = headers("planner")
        self.operator = headers("operator")

    def call(self, method: str, path: str, status: int, **kw: Any) -> dict[str, Any]:
        headers = kw.pop("headers", self.planner)
        for _ in range(50):  # the gateway's write limit answers 429: wait it out
            resp = self.gateway.request(method, path, headers=headers, **kw)
            if resp.status_code != 429:
                break
            time.sleep(0.2)
        assert resp.status_code == status, f"{method} {path}: {resp.status_code} {resp.text}"
        body: dict[str, Any] = resp.json() if resp.content else {}
        return body

    def subscribe(self, url: str, event_types: list[str], **extra: Any) -> dict[str, Any]:
        body = {"url": url, "event_types": event_types, **extra}
        return self.call("POST", f"{HOOKS}/endpoints", 201, json=body)

    def deliveries(self, endpoint_id: str, **params: str) -> list[dict[str, Any]]:
        page = self.call("GET", f"{HOOKS}/endpoints/{endpoint_id}/deliveries", 200, params=params)
        items: list[dict[str, Any]] = page["items"]
        return items

    def walk_project(self) -> None:
        """A three-task line, started and completed task by task."""
        graph = {
            "nodes": [{"key": k, "title": k} for k in ("cut", "weld", "pack")],
            "edges": [
                {"blocker": "cut", "dependent": "weld"},
                {"blocker": "weld", "dependent": "pack"},
            ],
        }
        template = self.call(
            "POST", "/api/v1/templates", 201,
            json={"key": f"hooks-{uuid.uuid4().hex[:8]}", "name": "Hooks", "draft": graph},
        )  # fmt: skip
        self.call("POST", f"/api/v1/templates/{template['id']}/versions/1/publish", 200)
        project = self.call(
            "POST", "/api/v1/projects", 201,
            json={"name": "Hooks order", "template_id": template["id"], "template_version": 1,
                  "deliverables": 1, "start_at": "2026-12-01T08:00:00Z"},
        )  # fmt: skip
        page = self.call("GET", f"/api/v1/tasks?project_id={project['id']}&limit=200", 200)
        tasks = {t["node_key"]: t["id"] for t in page["items"]}
        for key in ("cut", "weld", "pack"):
            for action in ("start", "complete"):
                self._act(tasks[key], action)

    def _act(self, task_id: str, action: str) -> None:
        def ready() -> dict[str, Any] | None:
            task = self.call("GET", f"/api/v1/tasks/{task_id}", 200)
            return task if action != "start" or task["status"] == "ready" else None

        task = wait_for(ready, f"task {task_id} ready", DEADLINE)
        self.call(
            "POST", f"/api/v1/tasks/{task_id}/transitions", 200, headers=self.operator,
            json={"action": action, "expected_row_version": task["row_version"],
                  "client_event_id": str(uuid.uuid4())},
        )  # fmt: skip


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as r:
        yield r


def verified(secret: str, requests: list[Received]) -> list[dict[str, Any]]:
    """Each request's payload, verified as a subscriber would verify it."""
    return [Webhook(secret).verify(r.body, r.headers) for r in requests]


def test_a_task_subscriber_gets_every_task_event_of_a_walk_and_nothing_else(
    stack: Stack, gateway: httpx.Client
) -> None:
    sub = Subscriber(stack, gateway)
    with Receiver() as tasks_only, Receiver() as everything:
        task_hook = sub.subscribe(tasks_only.url, ["task.*"])
        all_hook = sub.subscribe(everything.url, ["*"])
        sub.walk_project()

        def settled() -> bool:
            completes = {
                r.webhook_id
                for r in everything.requests()
                if r.json()["type"] == "task.status_changed"
                and r.json()["data"]["action"] == "complete"
            }
            if len(completes) < 3:
                return False
            for hook, got in ((task_hook, tasks_only), (all_hook, everything)):
                rows = sub.deliveries(hook["id"], limit="200")
                if any(d["status"] != "succeeded" for d in rows):
                    return False
                if len({r.webhook_id for r in got.requests()}) != len(rows):
                    return False
            return True

        wait_for(settled, "the walk's events to arrive", DEADLINE)
        time.sleep(1.0)  # stragglers would show up here
        task_events = verified(task_hook["secret"], tasks_only.requests())
        all_events = verified(all_hook["secret"], everything.requests())
    assert task_events and all(e["type"].startswith("task.") for e in task_events)
    expected = {e["id"] for e in all_events if e["type"].startswith("task.")}
    assert {e["id"] for e in task_events} == expected
    assert any(not e["type"].startswith("task.") for e in all_events)  # project.created...
    changes = [e["data"] for e in task_events if e["type"] == "task.status_changed"]
    assert sorted(c["action"] for c in changes).count("complete") == 3
    assert sorted(c["action"] for c in changes).count("start") == 3
    for request in tasks_only.requests():
        assert request.webhook_id == request.json()["id"]


def test_500_500_then_200_arrives_on_the_third_attempt_with_one_webhook_id(
    stack: Stack, gateway: httpx.Client, receiver: Receiver
) -> None:
    sub = Subscriber(stack, gateway)
    receiver.answer = sequence(500, 500)
    hook = sub.subscribe(receiver.url, ["webhook.test"])
    delivery = sub.call("POST", f"{HOOKS}/endpoints/{hook['id']}/test", 202)
    wait_for(lambda: len(receiver.requests()) >= 3, "three attempts", DEADLINE)
    got = receiver.requests()
    assert {r.webhook_id for r in got} == {delivery["event_id"]}
    verified(hook["secret"], got)

    def succeeded() -> dict[str, Any] | None:
        d = sub.call("GET", f"{HOOKS}/deliveries/{delivery['id']}", 200)
        return d if d["status"] == "succeeded" else None

    detail = wait_for(succeeded, "the delivery to succeed", DEADLINE)
    assert [a["status_code"] for a in detail["history"]] == [500, 500, 200]


def test_a_dead_delivery_is_replayed_and_recovered_once_the_receiver_is_back(
    stack: Stack, gateway: httpx.Client
) -> None:
    sub = Subscriber(stack, gateway)
    with Receiver() as placeholder:
        url, port = placeholder.url, placeholder.port
    hook = sub.subscribe(url, ["webhook.test"])
    first = sub.call("POST", f"{HOOKS}/endpoints/{hook['id']}/test", 202)
    second = sub.call("POST", f"{HOOKS}/endpoints/{hook['id']}/test", 202)

    def dead() -> bool:
        return len(sub.deliveries(hook["id"], status="dead")) == 2

    wait_for(dead, "both deliveries to be dead", DEADLINE)
    with Receiver(port=port) as back:
        sub.call("POST", f"{HOOKS}/deliveries/{first['id']}/replay", 202)
        wait_for(lambda: back.requests(), "the replay", DEADLINE)
        assert [r.webhook_id for r in back.requests()] == [first["event_id"]]
        job = sub.call(
            "POST", f"{HOOKS}/endpoints/{hook['id']}/recover", 202,
            json={"since": "2026-01-01T00:00:00Z"},
        )  # fmt: skip

        def done() -> dict[str, Any] | None:
            j = sub.call("GET", f"{HOOKS}/recover-jobs/{job['id']}", 200)
            return j if j["status"] == "done" else None

        assert wait_for(done, "the recover job", DEADLINE)["requeued"] == 1
        wait_for(lambda: len(back.requests()) == 2, "the recovered delivery", DEADLINE)
        assert back.requests()[1].webhook_id == second["event_id"]
        verified(hook["secret"], back.requests())


def test_ssrf_refusals_through_the_gateway(stack: Stack, gateway: httpx.Client) -> None:
    sub = Subscriber(stack, gateway)
    for url, rule in (
        ("http://10.0.0.1/hook", "private"),
        ("http://169.254.169.254/latest/meta-data/", "metadata"),
    ):
        problem = sub.call(
            "POST", f"{HOOKS}/endpoints", 422, json={"url": url, "event_types": ["*"]}
        )
        assert (problem["code"], problem["rule"]) == ("URL_NOT_ALLOWED", rule)


def test_rotation_signs_with_both_secrets_during_the_grace_period_then_only_the_new(
    stack: Stack, gateway: httpx.Client, receiver: Receiver
) -> None:
    sub = Subscriber(stack, gateway)
    hook = sub.subscribe(receiver.url, ["webhook.test"])
    rotated = sub.call(
        "POST", f"{HOOKS}/endpoints/{hook['id']}/rotate-secret", 200,
        json={"grace_period_seconds": 3},
    )  # fmt: skip
    sub.call("POST", f"{HOOKS}/endpoints/{hook['id']}/test", 202)
    wait_for(lambda: receiver.requests(), "the test event", DEADLINE)
    during = receiver.requests()[0]
    verified(hook["secret"], [during])
    verified(rotated["secret"], [during])
    expires = rotated["previous_secret_expires_at"]
    time.sleep(3.5)
    sub.call("POST", f"{HOOKS}/endpoints/{hook['id']}/test", 202)
    wait_for(lambda: len(receiver.requests()) == 2, "the second test event", DEADLINE)
    after = receiver.requests()[1]
    verified(rotated["secret"], [after])
    with pytest.raises(WebhookVerificationError):
        verified(hook["secret"], [after])
    assert expires is not None


def test_a_410_disables_the_endpoint(
    stack: Stack, gateway: httpx.Client, receiver: Receiver
) -> None:
    sub = Subscriber(stack, gateway)
    receiver.answer = always(410)
    hook = sub.subscribe(receiver.url, ["webhook.test"])
    sub.call("POST", f"{HOOKS}/endpoints/{hook['id']}/test", 202)

    def disabled() -> dict[str, Any] | None:
        e = sub.call("GET", f"{HOOKS}/endpoints/{hook['id']}", 200)
        return e if not e["active"] else None

    assert wait_for(disabled, "the endpoint disabled", DEADLINE)["disabled_reason"]
