"""E-mail notifications on the real platform: services, events processes, the Celery worker and
beat, the stack's SMTP sink (mails as .eml files in var/mail/) and, for refusals, an SMTP server
of the test's own on the sink's port."""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from typing import Any

import asyncpg
import httpx
import pytest

from blueprint_stack import Stack
from blueprint_stack.keys import mint_dev_token
from blueprint_stack.smtp_sink import MailCatcher, read_mail_dir
from blueprint_stack.stack import service
from blueprint_stack.testing import wait_for
from notify_svc.delivery.context import DeliveryContext
from notify_svc.notifications import reminders
from notify_svc.settings import Settings

pytestmark = pytest.mark.e2e

NOTIFY = "/api/v1/notifications"
# The stack retries mails after 1 s and 2 s: failed after about 3 s.
DEADLINE = 30.0


class Shop:
    """One org with a planner and an operator (with a contact), via the gateway."""

    def __init__(self, stack: Stack, gateway: httpx.Client) -> None:
        self.stack = stack
        self.gateway = gateway
        self.org_id = uuid.uuid4()
        self.operator_id = uuid.uuid4()
        self.address = f"operator-{self.operator_id.hex[:8]}@example.com"

        def headers(role: str, user: uuid.UUID) -> dict[str, str]:
            token = mint_dev_token(
                stack.config.keys_dir, roles=[role], org_id=self.org_id, user_id=user
            )
            return {"Authorization": f"Bearer {token}"}

        self.planner = headers("planner", uuid.uuid4())
        self.operator = headers("operator", self.operator_id)
        self.inspector = headers("inspector", uuid.uuid4())
        self.call(
            "PUT", f"{NOTIFY}/contacts/{self.operator_id}", 200, headers=self.operator,
            json={"email": self.address, "name": "Olga Operator"},
        )  # fmt: skip

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

    def project(self, nodes: list[dict[str, Any]], start_at: datetime) -> dict[str, str]:
        """A published template of independent `nodes`, started once: task ids by node key."""
        template = self.call(
            "POST", "/api/v1/templates", 201,
            json={"key": f"mail-{uuid.uuid4().hex[:8]}", "name": "Mail",
                  "draft": {"nodes": nodes, "edges": []}},
        )  # fmt: skip
        self.call("POST", f"/api/v1/templates/{template['id']}/versions/1/publish", 200)
        project = self.call(
            "POST", "/api/v1/projects", 201,
            json={"name": "Mail order", "template_id": template["id"], "template_version": 1,
                  "deliverables": 1, "start_at": start_at.isoformat()},
        )  # fmt: skip
        page = self.call("GET", f"/api/v1/tasks?project_id={project['id']}&limit=200", 200)
        return {t["node_key"]: t["id"] for t in page["items"]}

    def assign(self, task_id: str, client_event_id: str | None = None) -> httpx.Response:
        task = self.call("GET", f"/api/v1/tasks/{task_id}", 200)
        body = {
            "action": "assign",
            "payload": {"assign_to": str(self.operator_id)},
            "expected_row_version": task["row_version"],
            "client_event_id": client_event_id or str(uuid.uuid4()),
        }
        resp = self.gateway.post(
            f"/api/v1/tasks/{task_id}/transitions", json=body, headers=self.planner
        )
        assert resp.status_code == 200, resp.text
        return resp

    def act(self, task_id: str, action: str, **payload: Any) -> None:
        version = self.call("GET", f"/api/v1/tasks/{task_id}", 200)["row_version"]
        self.call(
            "POST", f"/api/v1/tasks/{task_id}/transitions", 200, headers=self.operator,
            json={"action": action, "payload": payload, "expected_row_version": version,
                  "client_event_id": str(uuid.uuid4())},
        )  # fmt: skip

    def inspect(self, task_id: str, path: str, inspection: dict[str, Any], **body: Any) -> Any:
        body |= {"expected_row_version": inspection["row_version"],
                 "client_event_id": str(uuid.uuid4())}  # fmt: skip
        status = 201 if path == "defects" else 200
        return self.call(
            "POST", f"/api/v1/inspections/{inspection['id']}/{path}", status,
            headers=self.inspector, json=body,
        )  # fmt: skip

    def mails(self, address: str | None = None) -> list[EmailMessage]:
        to = address or self.address
        return [m for m in read_mail_dir(self.stack.config.mail_dir) if m["To"] == to]

    def mails_with(self, prefix: str, count: int, address: str | None = None) -> list[EmailMessage]:
        def arrived() -> list[EmailMessage] | None:
            found = [m for m in self.mails(address) if str(m["Subject"]).startswith(prefix)]
            return found if len(found) >= count else None

        to = address or self.address
        return wait_for(arrived, f"{count} mail(s) '{prefix}...' to {to}", DEADLINE)

    def job(self, job_id: str) -> dict[str, Any]:
        return self.call("GET", f"{NOTIFY}/jobs/{job_id}", 200)


def text_of(mail: EmailMessage) -> str:
    part = mail.get_body(("plain",))
    assert part is not None
    content: str = part.get_content()
    return content


def test_assignment_mails_the_assignee_with_a_working_link_and_a_replay_sends_nothing(
    stack: Stack, gateway: httpx.Client
) -> None:
    shop = Shop(stack, gateway)
    tasks = shop.project(
        [{"key": "weld", "title": "Weld the frame"}, {"key": "paint", "title": "Paint it"}],
        datetime.now(UTC),
    )
    cid = str(uuid.uuid4())
    shop.assign(tasks["weld"], cid)
    [mail] = shop.mails_with("Assigned to you: Weld the frame", 1)
    link = f"{stack.config.gateway_url}/api/v1/tasks/{tasks['weld']}"
    assert link in text_of(mail)
    opened = httpx.get(link, headers=shop.operator, timeout=10, trust_env=False)
    assert opened.status_code == 200 and opened.json()["title"] == "Weld the frame"

    replay = shop.assign(tasks["weld"], cid)  # the same transition again
    assert replay.headers.get("idempotent-replayed") == "true"
    shop.assign(tasks["paint"])  # a later event through the same consumer: the barrier
    shop.mails_with("Assigned to you: Paint it", 1)
    subjects = sorted(str(m["Subject"]) for m in shop.mails())
    assert subjects == ["Assigned to you: Paint it", "Assigned to you: Weld the frame"]


def test_a_qc_reject_mails_the_assignee_and_a_finished_deliverable_the_approvers(
    stack: Stack, gateway: httpx.Client
) -> None:
    shop = Shop(stack, gateway)
    approvers = f"approvers-{shop.org_id.hex[:8]}@example.com"
    shop.call("PUT", f"{NOTIFY}/settings", 200, json={"approvers_email": approvers})
    checklist = [{"code": "PAINT-1", "text": "No runs", "required": True}]
    tasks = shop.project(
        [{"key": "paint", "title": "Paint the door", "qc_required": True,
          "qc_checklist": checklist}],
        datetime.now(UTC),
    )  # fmt: skip
    shop.act(tasks["paint"], "start")  # an unassigned task goes to whoever starts it
    shop.act(tasks["paint"], "complete")

    def pending() -> dict[str, Any] | None:
        page = shop.call("GET", f"/api/v1/inspections?task_id={tasks['paint']}", 200,
                         headers=shop.inspector)  # fmt: skip
        return next((i for i in page["items"] if i["status"] == "pending"), None)

    inspection = wait_for(pending, "the inspection", DEADLINE)
    inspection = shop.inspect(tasks["paint"], "claim", inspection)
    inspection = shop.inspect(tasks["paint"], "defects", inspection, code="PAINT-RUN",
                              severity="major", description="runs on the left side")  # fmt: skip
    shop.inspect(tasks["paint"], "decision", inspection, decision="reject",
                 reason="repaint the left side")  # fmt: skip
    [rejected] = shop.mails_with("QC rejected: Paint the door", 1)
    body = text_of(rejected)
    assert "repaint the left side" in body and "PAINT-RUN (major)" in body

    def accepted() -> dict[str, Any] | None:
        page = shop.call("GET", f"/api/v1/inspections?task_id={tasks['paint']}", 200,
                         headers=shop.inspector)  # fmt: skip
        return next((i for i in page["items"] if i["round"] == 2 and i["status"] == "pending"),
                    None)  # fmt: skip

    shop.act(tasks["paint"], "start")
    shop.act(tasks["paint"], "complete")
    second = wait_for(accepted, "the second inspection", DEADLINE)
    second = shop.inspect(tasks["paint"], "claim", second)
    shop.call(
        "PUT", f"/api/v1/inspections/{second['id']}/results", 200, headers=shop.inspector,
        json={"results": [{"code": "PAINT-1", "result": "pass"}],
              "expected_row_version": second["row_version"],
              "client_event_id": str(uuid.uuid4())},
    )  # fmt: skip
    second = shop.call("GET", f"/api/v1/inspections/{second['id']}", 200, headers=shop.inspector)
    shop.inspect(tasks["paint"], "decision", second, decision="accept")
    [ready] = shop.mails_with("Ready for sign-off:", 1, approvers)
    assert "/api/v1/deliverables/" in text_of(ready)


@pytest.fixture
def notify_context(stack: Stack) -> Iterator[Settings]:
    """notify-svc's settings as the stack gives them to its processes."""
    env = stack.service_env(service("notify-svc"))
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield Settings()
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def run_scans(settings: Settings, times: int) -> list[int]:
    """The beat task's scan, `times` times in a row (what beat running that often does)."""

    async def scans() -> list[int]:
        ctx = DeliveryContext.create(settings, pool_size=1)
        try:
            return [await reminders.scan(ctx) for _ in range(times)]
        finally:
            await ctx.close()

    return asyncio.run(scans())


def move_due_date(stack: Stack, task_id: str, minutes: int) -> None:
    """task-svc has no API that moves one task's due date yet: the test moves it in place."""

    async def move() -> None:
        conn = await asyncpg.connect(stack.postgres.admin_dsn, database=stack.config.database)
        try:
            await conn.execute(
                "UPDATE task.tasks SET due_at = due_at + make_interval(mins => $2) WHERE id = $1",
                uuid.UUID(task_id),
                minutes,
            )
        finally:
            await conn.close()

    asyncio.run(move())


def test_a_task_due_in_30_minutes_gets_one_reminder_and_a_new_due_date_one_more(
    stack: Stack, gateway: httpx.Client, notify_context: Settings
) -> None:
    shop = Shop(stack, gateway)
    tasks = shop.project(
        [{"key": "ship", "title": "Ship order 7", "due_offset_hours": 0.5}], datetime.now(UTC)
    )
    shop.assign(tasks["ship"])
    written = run_scans(notify_context, 5)
    assert sum(written) <= 1 and written[1:] == [0, 0, 0, 0]  # beat may have been first
    [reminder] = shop.mails_with("Due soon: Ship order 7", 1)
    assert f"/api/v1/tasks/{tasks['ship']}" in text_of(reminder)

    move_due_date(stack, tasks["ship"], 10)
    assert sum(run_scans(notify_context, 5)) <= 1
    shop.mails_with("Due soon: Ship order 7", 2)
    listed = shop.call("GET", f"{NOTIFY}/jobs", 200, params={"limit": 50})["items"]
    reminders_sent = [j for j in listed if j["rule"] == "deadline.reminder"]
    assert len(reminders_sent) == 2 and {j["status"] for j in reminders_sent} == {"sent"}
    assert len([m for m in shop.mails() if str(m["Subject"]).startswith("Due soon")]) == 2


def test_an_overdue_task_gets_one_notice(
    stack: Stack, gateway: httpx.Client, notify_context: Settings
) -> None:
    shop = Shop(stack, gateway)
    tasks = shop.project(
        [{"key": "late", "title": "Late part", "due_offset_hours": 0.5}],
        datetime.now(UTC) - timedelta(hours=1),
    )
    shop.assign(tasks["late"])
    run_scans(notify_context, 3)
    [notice] = shop.mails_with("Overdue: Late part", 1)
    assert "is still open" in text_of(notice)


@pytest.fixture
def own_smtp(stack: Stack) -> Iterator[MailCatcher]:
    """An SMTP server of the test's own in place of the stack's sink (same port)."""
    stack.stop_process("smtp-sink")
    catcher = MailCatcher(port=stack.config.smtp_port).start()
    try:
        yield catcher
    finally:
        catcher.stop()
        stack.start_process("smtp-sink")


def test_refusals_retry_then_fail_after_3_attempts_and_a_retry_sends_once(
    stack: Stack, gateway: httpx.Client, own_smtp: MailCatcher
) -> None:
    shop = Shop(stack, gateway)
    own_smtp.refuse = 2
    job = {"to": shop.address, "subject": "Line 2 stops", "body": "From 14:00 to 15:00."}
    first = shop.call("POST", f"{NOTIFY}/email", 202, json=job)["job_id"]
    sent = wait_for(
        lambda: (j := shop.job(first))["status"] == "sent" and j, "the third attempt", DEADLINE
    )
    assert [a["outcome"] for a in sent["history"]] == ["error", "error", "sent"]
    assert [m["Message-ID"] for m in own_smtp.messages()] == [f"<{first}@blueprint.notifications>"]

    own_smtp.refuse_always = True
    second = shop.call("POST", f"{NOTIFY}/email", 202, json={**job, "subject": "Again"})["job_id"]
    failed = wait_for(
        lambda: (j := shop.job(second))["status"] == "failed" and j, "3 refusals", DEADLINE
    )
    assert failed["attempts"] == 3 and "451" in failed["last_error"]
    listed = shop.call("GET", f"{NOTIFY}/jobs", 200, params={"status": "failed"})["items"]
    assert [j["id"] for j in listed] == [second]

    own_smtp.refuse_always = False
    shop.call("POST", f"{NOTIFY}/jobs/{second}/retry", 202)
    wait_for(lambda: shop.job(second)["status"] == "sent", "the retried job", DEADLINE)
    ids = [m["Message-ID"] for m in own_smtp.messages()]
    assert ids.count(f"<{second}@blueprint.notifications>") == 1
