"""The load driver: lanes of users walking projects through the gateway, as a client would.

Each lane is one organisation with a planner, an operator, an inspector and an approver. It
creates and publishes a template (a dependency chain with a QC-required task and a milestone),
then starts projects from it and walks every deliverable to sign-off: assign, start, complete;
QC claim, results or defects, decide (rejects, rejects naming an upstream task, rejects naming a
task that is not upstream, which task-svc refuses and sends back to the inspector, and accepts);
rework; sign-off by the approver.

Every write is recorded (`WriteRecord`) with its client_event_id or Idempotency-Key. A write that
fails (5xx, 429, a connection error or a timeout) is sent again, the same request with the same
id, until it gets a definite answer: the design promises the same id answers the original
result. Writes without an id of their own (publishing a version, signing a deliverable off) are
retried the same way; when the retry is refused because the first attempt did apply, the driver
reads the resource and records the write as reconciled.

The run is bounded by a deadline and a request budget; lanes stop between requests.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from blueprint_stack.keys import mint_dev_token

# Answers that say nothing about whether the request was applied: send it again.
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})

CHECKLIST = [
    {"code": "PAINT-1", "text": "No runs or sags", "required": True},
    {"code": "PAINT-2", "text": "Colour matches the sample", "required": True},
]
# prep -> paint (QC) -> pack -> finish (milestone); prep -> label -> pack.
NODES: list[dict[str, Any]] = [
    {"key": "prep", "title": "Prepare the panel", "estimate_hours": 2},
    {"key": "label", "title": "Print the label", "estimate_hours": 1},
    {
        "key": "paint",
        "title": "Paint the panel",
        "estimate_hours": 3,
        "qc_required": True,
        "qc_checklist": CHECKLIST,
    },
    {"key": "pack", "title": "Pack it", "estimate_hours": 1},
    {"key": "finish", "title": "Ready to ship", "work_kind": "milestone"},
]
EDGES = [
    ("prep", "paint"),
    ("prep", "label"),
    ("paint", "pack"),
    ("label", "pack"),
    ("pack", "finish"),
]
WORK_NODES = ("prep", "label", "paint", "pack")


class Stopped(Exception):
    """The run's deadline or request budget is reached: the lane stops between requests."""


class Stalled(Exception):
    """Something a lane waits for (an event's effect) did not happen within the wait deadline."""


class Unexpected(Exception):
    """The platform answered something a correct platform would not have."""


@dataclass
class WriteRecord:
    """One write as the client sent it, every attempt's failure, and its definite answer."""

    op: str  # e.g. "transition:start", "qc:claim", "project:create", "signoff"
    method: str
    path: str
    key: str | None  # client_event_id or Idempotency-Key
    subject: str | None  # the task / inspection / deliverable / template it acts on
    body: dict[str, Any] | None
    failures: list[str] = field(default_factory=list)
    status: int | None = None  # the definite answer; None: none came before the retry deadline
    replayed: bool = False
    response: Any = None
    reconciled: bool = False  # refused on retry because the first attempt had applied

    @property
    def acked(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    @property
    def effective(self) -> bool:
        """Applied, as far as the client knows (acknowledged, or reconciled after a retry)."""
        return self.acked or self.reconciled


@dataclass(frozen=True)
class Subscription:
    """A lane's webhook endpoint: its id and the secret its deliveries are signed with."""

    id: str
    secret: str


@dataclass
class Records:
    """Everything the driver did, for the report and the checker."""

    writes: list[WriteRecord] = field(default_factory=list)
    reads: int = 0
    read_failures: int = 0
    orgs: list[uuid.UUID] = field(default_factory=list)
    # Where each lane's webhook endpoint points (a local receiver; None: no subscription), and
    # the endpoint each org subscribed for its task events.
    webhook_url: str | None = None
    endpoints: dict[uuid.UUID, Subscription] = field(default_factory=dict)
    stalls: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)

    def count(self, what: str, n: int = 1) -> None:
        self.counts[what] = self.counts.get(what, 0) + n

    @property
    def requests_sent(self) -> int:
        return self.reads + sum(1 + len(w.failures) for w in self.writes)


@dataclass
class Budget:
    deadline: float  # time.monotonic()
    max_requests: int
    sent: int = 0
    # Past the deadline, the run goes on while this says so (e.g. until every kind of fault
    # was injected at least once under traffic); the request budget still holds.
    keep_going: Callable[[], bool] = lambda: False

    def take(self) -> None:
        late = time.monotonic() >= self.deadline and not self.keep_going()
        if late or self.sent >= self.max_requests:
            raise Stopped
        self.sent += 1


class Api:
    """The gateway, with the client's retry rule and a record of every write."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        records: Records,
        budget: Budget,
        *,
        retry_deadline: float = 120.0,
    ) -> None:
        self.client = client
        self.records = records
        self.budget = budget
        self.retry_deadline = retry_deadline

    async def _send(
        self, method: str, path: str, headers: dict[str, str], json: Any
    ) -> httpx.Response | str:
        try:
            resp = await self.client.request(method, path, headers=headers, json=json)
        except httpx.TransportError as exc:
            return type(exc).__name__
        if resp.status_code in RETRY_STATUSES:
            return str(resp.status_code)
        return resp

    async def write(
        self,
        op: str,
        method: str,
        path: str,
        headers: dict[str, str],
        json: dict[str, Any] | None = None,
        *,
        key: str | None = None,
        subject: str | None = None,
    ) -> WriteRecord:
        """Send a write until it has a definite answer (or the retry deadline passes)."""
        self.budget.take()
        rec = WriteRecord(op, method, path, key, subject, json)
        self.records.writes.append(rec)
        give_up = time.monotonic() + self.retry_deadline
        pause = 0.1
        while True:
            out = await self._send(method, path, headers, json)
            if isinstance(out, httpx.Response):
                rec.status = out.status_code
                rec.replayed = out.headers.get("idempotent-replayed") == "true"
                try:
                    rec.response = out.json()
                except ValueError:
                    rec.response = out.text[:500]
                return rec
            rec.failures.append(out)
            if time.monotonic() > give_up:
                return rec  # no definite answer: the checker reports it
            # Retries are not counted against the budget: a started request is always finished.
            await asyncio.sleep(pause)
            pause = min(pause * 2, 1.0)

    async def read(self, path: str, headers: dict[str, str]) -> Any:
        """GET until a definite answer; 2xx gives the body, anything else is Unexpected."""
        give_up = time.monotonic() + self.retry_deadline
        pause = 0.1
        while True:
            self.records.reads += 1
            out = await self._send("GET", path, headers, None)
            if isinstance(out, httpx.Response):
                if out.status_code != 200:
                    raise Unexpected(f"GET {path}: {out.status_code} {out.text[:300]}")
                return out.json()
            self.records.read_failures += 1
            if time.monotonic() > give_up:
                raise Stalled(f"GET {path}: no answer for {self.retry_deadline:.0f}s ({out})")
            await asyncio.sleep(pause)
            pause = min(pause * 2, 1.0)


def expect(rec: WriteRecord, *statuses: int) -> Any:
    if rec.status is None:
        raise Stalled(
            f"{rec.op} {rec.path}: no definite answer after {len(rec.failures)} failures "
            f"({', '.join(rec.failures[-3:])})"
        )
    if rec.status not in statuses:
        raise Unexpected(f"{rec.op} {rec.path}: {rec.status} {str(rec.response)[:400]}")
    return rec.response


@dataclass
class User:
    user_id: uuid.UUID
    headers: dict[str, str]


class Lane:
    """One organisation's people walking projects, one step after another."""

    def __init__(
        self,
        index: int,
        api: Api,
        keys_dir: Path,
        rng: random.Random,
        *,
        wait_deadline: float = 120.0,
        poll: float = 0.25,
    ) -> None:
        self.index = index
        self.api = api
        self.rng = rng
        self.records = api.records
        self.wait_deadline = wait_deadline
        self.poll = poll
        self.org_id = uuid.uuid4()
        self.records.orgs.append(self.org_id)

        def user(role: str) -> User:
            uid = uuid.uuid4()
            token = mint_dev_token(keys_dir, roles=[role], org_id=self.org_id, user_id=uid)
            return User(uid, {"Authorization": f"Bearer {token}"})

        self.planner = user("planner")
        self.operator = user("operator")
        self.inspector = user("inspector")
        self.approver = user("approver")

    # --- the walk -------------------------------------------------------------------------

    async def run(self) -> None:
        """Walk projects until the run stops; a stalled or unexpected step abandons its project
        (recorded) and the lane carries on with a new one."""
        try:
            await self.subscribe()
            template_id = await self.make_template()
            while True:
                try:
                    await self.walk_project(template_id)
                except (Stalled, Unexpected) as exc:
                    kind = "stalls" if isinstance(exc, Stalled) else "unexpected"
                    getattr(self.records, kind).append(f"lane {self.index}: {exc}")
        except Stopped:
            return
        except (Stalled, Unexpected) as exc:  # the template itself
            kind = "stalls" if isinstance(exc, Stalled) else "unexpected"
            getattr(self.records, kind).append(f"lane {self.index}: {exc}")

    async def subscribe(self) -> None:
        """The org's webhook endpoint for every task event, before its first task exists."""
        if self.records.webhook_url is None:
            return
        idem = f"endpoint-{uuid.uuid4()}"
        rec = await self.api.write(
            "webhook:subscribe",
            "POST",
            "/api/v1/webhooks/endpoints",
            {**self.planner.headers, "Idempotency-Key": idem},
            {"url": f"{self.records.webhook_url}/lane/{self.index}", "event_types": ["task.*"]},
            key=idem,
        )
        created = expect(rec, 201)
        self.records.endpoints[self.org_id] = Subscription(str(created["id"]), created["secret"])

    async def make_template(self) -> str:
        key = f"chaos-{self.index}-{uuid.uuid4().hex[:8]}"
        body = {
            "key": key,
            "name": f"Chaos panel {self.index}",
            "draft": {
                "nodes": NODES,
                "edges": [{"blocker": b, "dependent": d} for b, d in EDGES],
            },
        }
        idem = f"template-{uuid.uuid4()}"
        rec = await self.api.write(
            "template:create",
            "POST",
            "/api/v1/templates",
            {**self.planner.headers, "Idempotency-Key": idem},
            body,
            key=idem,
        )
        template_id = str(expect(rec, 201)["id"])
        rec.subject = template_id
        path = f"/api/v1/templates/{template_id}/versions/1/publish"
        rec = await self.api.write(
            "template:publish", "POST", path, self.planner.headers, subject=template_id
        )
        if rec.status != 200 and rec.failures and rec.status is not None:
            # Not idempotent by id: a retry after an applied first attempt is refused.
            version = await self.api.read(
                f"/api/v1/templates/{template_id}/versions/1", self.planner.headers
            )
            if version["status"] == "published":
                rec.reconciled = True
        if not rec.effective:
            expect(rec, 200)
        self.records.count("templates published")
        return template_id

    async def walk_project(self, template_id: str) -> None:
        idem = f"project-{uuid.uuid4()}"
        deliverables = self.rng.choice((1, 1, 2))
        body = {
            "name": f"Chaos order {uuid.uuid4().hex[:6]}",
            "template_id": template_id,
            "template_version": 1,
            "deliverables": deliverables,
            "start_at": "2026-12-01T08:00:00Z",
        }
        rec = await self.api.write(
            "project:create",
            "POST",
            "/api/v1/projects",
            {**self.planner.headers, "Idempotency-Key": idem},
            body,
            key=idem,
        )
        project = expect(rec, 201)
        project_id = str(project["id"])
        rec.subject = project_id
        self.records.count("projects started")
        page = await self.api.read(
            f"/api/v1/tasks?project_id={project_id}&limit=200", self.planner.headers
        )
        by_deliverable: dict[str, dict[str, str]] = {}
        for t in page["items"]:
            by_deliverable.setdefault(str(t["deliverable_id"]), {})[t["node_key"]] = str(t["id"])
        for deliverable_id, ids in by_deliverable.items():
            await self.walk_deliverable(deliverable_id, ids)
        shown = await self.api.read(f"/api/v1/projects/{project_id}", self.planner.headers)
        if shown["status"] != "completed":
            raise Unexpected(
                f"project {project_id}: every deliverable signed off, yet it is {shown['status']}"
            )
        self.records.count("projects completed")

    async def walk_deliverable(self, deliverable_id: str, ids: dict[str, str]) -> None:
        for key in WORK_NODES:
            await self.act(
                ids[key], "assign", self.planner, {"assign_to": str(self.operator.user_id)}
            )
        await self.work(ids["prep"])
        await self.work(ids["label"])
        await self.work(ids["paint"])
        await self.qc_loop(ids)
        await self.work(ids["pack"])
        await self.sign_off(deliverable_id)

    async def work(self, task_id: str) -> None:
        await self.act(task_id, "start", self.operator)
        await self.act(task_id, "complete", self.operator)

    # --- task transitions -------------------------------------------------------------------

    async def task(self, task_id: str, user: User | None = None) -> dict[str, Any]:
        task: dict[str, Any] = await self.api.read(
            f"/api/v1/tasks/{task_id}", (user or self.planner).headers
        )
        return task

    async def act(
        self, task_id: str, action: str, user: User, payload: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """One transition as a client does it: read the row version, send the action with a
        new client_event_id (the same one on every retry)."""
        for _ in range(5):
            current = await self.task(task_id, user)
            body: dict[str, Any] = {
                "action": action,
                "expected_row_version": current["row_version"],
                "client_event_id": f"chaos-{uuid.uuid4()}",
            }
            if payload:
                body["payload"] = payload
            rec = await self.api.write(
                f"transition:{action}",
                "POST",
                f"/api/v1/tasks/{task_id}/transitions",
                user.headers,
                body,
                key=body["client_event_id"],
                subject=task_id,
            )
            if rec.status == 409 and (rec.response or {}).get("code") == "VERSION_CONFLICT":
                # Something else moved the task between the read and the write: read again.
                self.records.count("version conflicts")
                continue
            result: dict[str, Any] = expect(rec, 200)
            self.records.count(f"transition {action}")
            return result
        raise Unexpected(f"{action} on task {task_id}: version conflict five times in a row")

    async def wait_for(self, what: str, check: Callable[[], Awaitable[Any]]) -> Any:
        """Poll `check` until it returns something truthy (an event's effect arriving)."""
        give_up = time.monotonic() + self.wait_deadline
        while True:
            found = await check()
            if found:
                return found
            if time.monotonic() > give_up:
                raise Stalled(f"waited {self.wait_deadline:.0f}s for {what}")
            self.api.budget.take()
            await asyncio.sleep(self.poll)

    async def wait_status(self, task_id: str, *statuses: str) -> dict[str, Any]:
        async def reached() -> dict[str, Any] | None:
            task = await self.task(task_id)
            return task if task["status"] in statuses else None

        result: dict[str, Any] = await self.wait_for(f"task {task_id} to be {statuses}", reached)
        return result

    # --- QC ----------------------------------------------------------------------------

    async def inspection(self, task_id: str, round_: int) -> dict[str, Any] | None:
        page = await self.api.read(
            f"/api/v1/inspections?task_id={task_id}&round={round_}", self.inspector.headers
        )
        items: list[dict[str, Any]] = page["items"]
        if len(items) > 1:
            raise Unexpected(f"task {task_id} has {len(items)} inspections of round {round_}")
        return items[0] if items else None

    async def command(
        self, inspection: dict[str, Any], method: str, what: str, status: int, **fields: Any
    ) -> dict[str, Any]:
        ceid = str(uuid.uuid4())
        body = {
            **fields,
            "expected_row_version": inspection["row_version"],
            "client_event_id": ceid,
        }
        rec = await self.api.write(
            f"qc:{what}",
            method,
            f"/api/v1/inspections/{inspection['id']}/{what}",
            self.inspector.headers,
            body,
            key=ceid,
            subject=str(inspection["id"]),
        )
        result: dict[str, Any] = expect(rec, status)
        return result

    async def qc_loop(self, ids: dict[str, str]) -> None:
        paint = ids["paint"]
        round_ = 1
        while True:
            found = await self.wait_for(
                f"inspection round {round_} of task {paint}",
                lambda round_=round_: self.inspection(paint, round_),  # type: ignore[misc]
            )
            self.records.count("inspections found")
            inspection = await self.command(found, "POST", "claim", 200)
            reject_chance = {1: 0.5, 2: 0.35}.get(round_, 0.0)
            if self.rng.random() >= reject_chance:
                results = [{"code": i["code"], "result": "pass"} for i in inspection["checklist"]]
                inspection = await self.command(inspection, "PUT", "results", 200, results=results)
                await self.command(inspection, "POST", "decision", 200, decision="accept")
                self.records.count("QC accepts")
                await self.wait_status(paint, "done")
                return
            inspection = await self.command(
                inspection,
                "POST",
                "defects",
                201,
                code="PAINT-RUN",
                severity="major",
                description=f"runs on the left side (round {round_})",
            )
            roll = self.rng.random()
            if roll < 0.2:
                # Naming a task that is not upstream: task-svc refuses, the inspection comes
                # back to the inspector, who decides again.
                await self.command(
                    inspection,
                    "POST",
                    "decision",
                    200,
                    decision="reject",
                    reason="the label is wrong",
                    rework_from_task_id=ids["label"],
                )
                inspection = await self.wait_refused(str(inspection["id"]))
                self.records.count("QC decisions refused and decided again")
                roll = 1.0
            upstream = roll < 0.45
            decision: dict[str, Any] = {"decision": "reject", "reason": "repaint the left side"}
            if upstream:
                decision["rework_from_task_id"] = ids["prep"]
            await self.command(inspection, "POST", "decision", 200, **decision)
            self.records.count("QC rejects naming an upstream task" if upstream else "QC rejects")
            await self.wait_status(paint, "rework")
            if upstream:
                await self.wait_status(ids["prep"], "rework")
                await self.work(ids["prep"])
            await self.work(paint)
            round_ += 1

    async def wait_refused(self, inspection_id: str) -> dict[str, Any]:
        async def back() -> dict[str, Any] | None:
            shown: dict[str, Any] = await self.api.read(
                f"/api/v1/inspections/{inspection_id}", self.inspector.headers
            )
            return shown if shown["status"] == "claimed" and shown["outcome"] == "refused" else None

        result: dict[str, Any] = await self.wait_for(f"inspection {inspection_id} refused", back)
        return result

    # --- sign-off ----------------------------------------------------------------------

    async def sign_off(self, deliverable_id: str) -> None:
        path = f"/api/v1/deliverables/{deliverable_id}"

        async def ready() -> dict[str, Any] | None:
            shown: dict[str, Any] = await self.api.read(path, self.approver.headers)
            return shown if shown["status"] == "ready_for_signoff" else None

        deliverable = await self.wait_for(f"deliverable {deliverable_id} ready", ready)
        rec = await self.api.write(
            "signoff",
            "POST",
            f"{path}/signoff",
            self.approver.headers,
            {"decision": "approved", "expected_row_version": deliverable["row_version"]},
            subject=deliverable_id,
        )
        if rec.status != 200 and rec.failures and rec.status is not None:
            # Sign-off has no id of its own: a retry after an applied first attempt is refused.
            shown = await self.api.read(path, self.approver.headers)
            if shown["status"] == "signed_off":
                rec.reconciled = True
        if not rec.effective:
            expect(rec, 200)
        self.records.count("deliverables signed off")


async def drive(
    gateway_url: str,
    keys_dir: Path,
    *,
    seconds: float,
    lanes: int,
    max_requests: int,
    seed: int,
    records: Records | None = None,
    keep_going: Callable[[], bool] = lambda: False,
) -> Records:
    """Run `lanes` lanes against the gateway for `seconds` (or `max_requests` requests)."""
    records = records or Records()
    budget = Budget(time.monotonic() + seconds, max_requests, keep_going=keep_going)
    limits = httpx.Limits(max_connections=4 * lanes, max_keepalive_connections=2 * lanes)
    timeout = httpx.Timeout(15.0, connect=5.0)
    async with httpx.AsyncClient(
        base_url=gateway_url, timeout=timeout, limits=limits, trust_env=False
    ) as client:
        api = Api(client, records, budget)
        rng = random.Random(seed)
        workers = [Lane(i, api, keys_dir, random.Random(rng.random())).run() for i in range(lanes)]
        await asyncio.gather(*workers)
    return records
