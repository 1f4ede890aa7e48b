"""The checker: after a chaos run, prove from the databases, the streams and the driver's records
that nothing was lost, doubled or left inconsistent.

It reads PostgreSQL as the superuser (schemas template, task, qc, notify) and Redis, and checks:

- the driver's writes: every acknowledged transition is in its task's history exactly once (by
  client_event_id) with the row_version and status it answered; every acknowledged QC command is
  in qc's command log once; a write refused after failed attempts left no trace (never a
  half-applied change); every write got a definite answer; retried creations made one template
  or project each;
- every task's history replays to its row (status, assigned_to, row_version), and its
  `open_blockers` equals its unresolved blockers;
- every outbox row of every service is published (after waiting for quiescence) and on its
  stream; every event of a type a service consumes is in that service's inbox once, and nothing
  else is; no dead letters;
- the effects of events: one inspection per QC submission (task, round) and none without one;
  every QC decision applied to its task once or refused once; a refusal returned to its
  inspection; the open inspection round matches a task in QC;
- deliverables and projects agree with their tasks and sign-off records.

- webhooks: every lane's org subscribed an endpoint for `task.*` before its first task; every
  task event of that org reached the local receiver (deduplicated by `webhook-id`; duplicates on
  the wire are counted, not faulted), each verified with the endpoint's secret by the
  `standardwebhooks` package as a subscriber would, no other event arrived, and no delivery
  ended dead.
"""

from __future__ import annotations

import asyncio
import hmac
import importlib
import json
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import asyncpg
import redis.asyncio as aioredis
from standardwebhooks.webhooks import Webhook

from blueprint_stack.config import SERVICES
from notify_svc.receiver import Received
from servicekit.events import EventHandlers
from servicekit.events.names import dead_letter_stream, stream_for

from .driver import Records, Subscription, WriteRecord

RESOLVED = ("done", "cancelled")
# History entries that record something without changing the row.
NO_CHANGE_ACTIONS = frozenset({"blocker_reopened"})
MAX_LISTED = 20  # findings of one check listed one by one; the rest are counted


@dataclass
class Consumer:
    service: str  # also its consumer group
    schema: str
    types: dict[str, str]  # event type -> producing service


@dataclass
class Report:
    verified: dict[str, int] = field(default_factory=dict)
    findings: dict[str, list[str]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def ok(self, what: str, n: int = 1) -> None:
        self.verified[what] = self.verified.get(what, 0) + n

    def bad(self, check: str, detail: str) -> None:
        self.findings.setdefault(check, []).append(detail)

    @property
    def finding_count(self) -> int:
        return sum(len(v) for v in self.findings.values())

    def summary(self) -> str:
        lines = ["verified:"]
        lines += [f"  {what}: {n}" for what, n in self.verified.items()]
        if self.notes:
            lines.append("notes:")
            lines += [f"  {n}" for n in self.notes]
        if not self.findings:
            lines.append("findings: none (nothing lost, duplicated or inconsistent)")
        else:
            lines.append(f"findings: {self.finding_count}")
            for check, items in self.findings.items():
                lines.append(f"  {check}: {len(items)}")
                lines += [f"    - {d}" for d in items[:MAX_LISTED]]
                if len(items) > MAX_LISTED:
                    lines.append(f"    ... and {len(items) - MAX_LISTED} more")
        return "\n".join(lines)


def schema_of(service: str) -> str:
    for svc in SERVICES:
        if svc.name == service:
            schema: str = importlib.import_module(svc.package).SCHEMA
            return schema
    raise KeyError(service)


def consumers() -> list[Consumer]:
    """Every service with event handlers, and the types it consumes (from its registry)."""
    found = []
    for svc in SERVICES:
        try:
            module = importlib.import_module(f"{svc.package}.events.handlers")
        except ModuleNotFoundError:
            continue
        registries = [v for v in vars(module).values() if isinstance(v, EventHandlers)]
        types: dict[str, str] = {}
        for registry in registries:
            for event_type in registry.types():
                registered = registry.get(event_type)
                assert registered is not None
                types[event_type] = registered.producer
        if types:
            found.append(Consumer(svc.name, schema_of(svc.name), types))
    return found


class Checker:
    def __init__(
        self,
        dsn: str,
        redis_url: str,
        records: Records,
        *,
        prefix: str = "events",
        receipts: Callable[[], list[Received]] | None = None,
    ) -> None:
        self.dsn = dsn
        self.redis_url = redis_url
        self.records = records
        self.prefix = prefix
        self.receipts = receipts
        self.webhook_deadline = 180.0
        self.report = Report()
        self.consumers = consumers()

    async def run(self, quiescence_deadline: float = 180.0) -> Report:
        conn = await asyncpg.connect(self.dsn)
        redis = aioredis.from_url(self.redis_url)
        try:
            await self.wait_quiescent(conn, redis, quiescence_deadline)
            self.webhook_deadline = quiescence_deadline
            await self.check_driver_writes(conn)
            await self.check_creations(conn)
            await self.check_task_histories(conn)
            await self.check_open_blockers(conn)
            await self.check_outboxes_and_streams(conn, redis)
            await self.check_inboxes(conn)
            await self.check_dead_letters(redis)
            await self.check_inspections(conn)
            await self.check_decisions(conn)
            await self.check_deliverables_and_projects(conn)
            await self.check_webhook_receipts(conn)
        finally:
            await conn.close()
            await redis.aclose()  # type: ignore[attr-defined]
        return self.report

    # --- quiescence -------------------------------------------------------------------------

    async def backlog(self, conn: asyncpg.Connection, redis: aioredis.Redis) -> dict[str, int]:
        """What is still on its way: unpublished outbox rows, entries not yet read or not yet
        acknowledged by a consumer group."""
        out: dict[str, int] = {}
        for svc in SERVICES:
            schema = schema_of(svc.name)
            n = await conn.fetchval(
                f'SELECT count(*) FROM "{schema}".outbox WHERE published_at IS NULL'
            )
            out[f"{schema}.outbox unpublished"] = int(n)
        for consumer in self.consumers:
            for producer in sorted(set(consumer.types.values())):
                stream = stream_for(producer, self.prefix)
                groups = await redis.xinfo_groups(stream) if await redis.exists(stream) else []
                for g in groups:
                    name = g["name"].decode() if isinstance(g["name"], bytes) else g["name"]
                    if name != consumer.service:
                        continue
                    out[f"{stream} {name} pending"] = int(g["pending"])
                    lag = g.get("lag")
                    out[f"{stream} {name} unread"] = int(lag) if lag is not None else 0
        return out

    async def wait_quiescent(
        self, conn: asyncpg.Connection, redis: aioredis.Redis, deadline: float
    ) -> None:
        give_up = time.monotonic() + deadline
        started = time.monotonic()
        quiet_polls = 0
        while True:
            left = {k: v for k, v in (await self.backlog(conn, redis)).items() if v}
            quiet_polls = 0 if left else quiet_polls + 1
            if quiet_polls >= 3:  # three quiet looks in a row: nothing more is coming
                self.report.notes.append(
                    f"quiescent (outbox backlog 0, every consumer group caught up) after "
                    f"{time.monotonic() - started:.1f}s"
                )
                return
            if time.monotonic() > give_up:
                self.report.bad(
                    "quiescence",
                    f"still on its way after {deadline:.0f}s: "
                    + ", ".join(f"{k}={v}" for k, v in sorted(left.items())),
                )
                return
            await asyncio.sleep(0.5)

    # --- the driver's writes ----------------------------------------------------------------

    async def check_driver_writes(self, conn: asyncpg.Connection) -> None:
        writes = self.records.writes
        for w in writes:
            if w.status is None:
                self.report.bad(
                    "write without a definite answer",
                    f"{w.op} {w.path} key={w.key}: {len(w.failures)} failed attempts "
                    f"({', '.join(w.failures[-3:])})",
                )
        retried = [w for w in writes if w.failures]
        self.report.ok(
            "writes failed then retried to a definite answer",
            sum(1 for w in retried if w.status is not None),
        )
        self.report.ok(
            "retries answered by an idempotent replay", sum(1 for w in retried if w.replayed)
        )
        transitions = [w for w in writes if w.op.startswith("transition:") and w.key]
        rows = await conn.fetch(
            "SELECT task_id, client_event_id, action, to_status, row_version FROM task.task_events "
            "WHERE client_event_id = ANY($1::text[])",
            [w.key for w in transitions],
        )
        by_key: dict[str, list[asyncpg.Record]] = defaultdict(list)
        for r in rows:
            by_key[r["client_event_id"]].append(r)
        for w in transitions:
            found = by_key.get(w.key or "", [])
            self._check_one_write(w, found, lambda r, w=w: self._transition_matches(w, r))
        qc = [w for w in writes if w.op.startswith("qc:") and w.key]
        rows = await conn.fetch(
            "SELECT key, inspection_id, status_code FROM qc.inspection_command "
            "WHERE key = ANY($1::text[])",
            [w.key for w in qc if w.key],
        )
        by_key = defaultdict(list)
        for r in rows:
            by_key[r["key"]].append(r)
        for w in qc:
            found = by_key.get(w.key or "", [])
            self._check_one_write(
                w,
                found,
                lambda r, w=w: (
                    None
                    if str(r["inspection_id"]) == w.subject and r["status_code"] == w.status
                    else f"recorded for inspection {r['inspection_id']} with {r['status_code']}, "
                    f"answered {w.status} for {w.subject}"
                ),
            )

    def _transition_matches(self, w: WriteRecord, r: asyncpg.Record) -> str | None:
        body = w.response if isinstance(w.response, dict) else {}
        want = (w.subject, w.op.split(":", 1)[1], body.get("to_status"), body.get("row_version"))
        got = (str(r["task_id"]), r["action"], r["to_status"], r["row_version"])
        return None if want == got else f"history has {got}, the answer said {want}"

    def _check_one_write(self, w: WriteRecord, found: list[Any], mismatch: Any) -> None:
        what = f"{w.op} key={w.key} on {w.subject}"
        if w.acked:
            if len(found) != 1:
                self.report.bad(
                    "acknowledged write not recorded exactly once",
                    f"{what}: answered {w.status}, recorded {len(found)} times",
                )
                return
            problem = mismatch(found[0])
            if problem:
                self.report.bad("acknowledged write differs from its record", f"{what}: {problem}")
                return
            self.report.ok(f"acknowledged {w.op.split(':')[0]} writes recorded exactly once")
        elif w.status is not None:
            if found:
                self.report.bad(
                    "refused write left a trace",
                    f"{what}: answered {w.status} after {len(w.failures)} failed attempts, "
                    f"yet recorded {len(found)} times",
                )
            elif w.failures:
                self.report.ok("writes refused after a failure that left no trace")
        elif len(found) > 1:
            self.report.bad("write applied twice", f"{what}: recorded {len(found)} times")

    async def check_creations(self, conn: asyncpg.Connection) -> None:
        """Retried creations (same Idempotency-Key) made one row each, and no row exists that no
        acknowledged answer named."""
        for op, table in (
            ("project:create", "task.projects"),
            ("template:create", "template.template"),
        ):
            acked = {w.subject for w in self.records.writes if w.op == op and w.acked}
            rows = await conn.fetch(
                f"SELECT id FROM {table} WHERE org_id = ANY($1::uuid[])",
                self.records.orgs,
            )
            in_db = {str(r["id"]) for r in rows}
            unanswered = {w.key for w in self.records.writes if w.op == op and w.status is None}
            extra = in_db - acked
            if len(extra) > len(unanswered):
                self.report.bad(
                    "creation duplicated",
                    f"{table}: {len(extra)} rows no acknowledged answer names "
                    f"(only {len(unanswered)} creations went unanswered): {sorted(extra)[:5]}",
                )
            missing = acked - in_db
            for m in missing:
                self.report.bad("acknowledged creation lost", f"{table} {m}")
            self.report.ok(f"{table} rows created exactly once", len(acked & in_db))

    # --- tasks ------------------------------------------------------------------------------

    async def check_task_histories(self, conn: asyncpg.Connection) -> None:
        tasks = {
            r["id"]: r
            for r in await conn.fetch("SELECT id, status, assigned_to, row_version FROM task.tasks")
        }
        events: dict[Any, list[asyncpg.Record]] = defaultdict(list)
        async with conn.transaction():
            async for e in conn.cursor(
                "SELECT task_id, action, from_status, to_status, row_version, payload, "
                "client_event_id FROM task.task_events ORDER BY task_id, id"
            ):
                events[e["task_id"]].append(e)
        n_events = 0
        for task_id, row in tasks.items():
            history = events.get(task_id, [])
            n_events += len(history)
            problem = replay_problem(history, row)
            if problem:
                self.report.bad(
                    "task history does not replay to its row", f"task {task_id}: {problem}"
                )
            else:
                self.report.ok("tasks whose history replays to their row")
            keys = Counter(e["client_event_id"] for e in history if e["client_event_id"])
            for key, n in keys.items():
                if n > 1:
                    self.report.bad(
                        "client_event_id twice in a history", f"task {task_id}: {key} x{n}"
                    )
        self.report.ok("task history entries replayed", n_events)

    async def check_open_blockers(self, conn: asyncpg.Connection) -> None:
        rows = await conn.fetch(
            """
            SELECT t.id, t.status, t.open_blockers,
              (SELECT count(*) FROM task.task_dependencies d
               JOIN task.tasks b ON b.id = d.blocker_id
               WHERE d.task_id = t.id AND b.status NOT IN ('done', 'cancelled'))::int AS unresolved
            FROM task.tasks t
            """
        )
        for r in rows:
            if r["open_blockers"] != r["unresolved"]:
                self.report.bad(
                    "open_blockers differs from the unresolved blockers",
                    f"task {r['id']} ({r['status']}): open_blockers {r['open_blockers']}, "
                    f"unresolved blockers {r['unresolved']}",
                )
            elif (r["status"] == "ready" and r["unresolved"]) or (
                r["status"] == "blocked" and not r["unresolved"]
            ):
                self.report.bad(
                    "status disagrees with the blockers",
                    f"task {r['id']} is {r['status']} with {r['unresolved']} unresolved blockers",
                )
            else:
                self.report.ok("tasks whose open_blockers equals their unresolved blockers")

    # --- events -----------------------------------------------------------------------------

    async def check_outboxes_and_streams(
        self, conn: asyncpg.Connection, redis: aioredis.Redis
    ) -> None:
        for svc in SERVICES:
            schema = schema_of(svc.name)
            rows = await conn.fetch(f'SELECT id, published_at FROM "{schema}".outbox')
            unpublished = [r["id"] for r in rows if r["published_at"] is None]
            for event_id in unpublished[:MAX_LISTED]:
                self.report.bad("outbox row never published", f"{schema}.outbox {event_id}")
            if not rows:
                continue
            on_stream = Counter(await self._stream_ids(redis, stream_for(svc.name, self.prefix)))
            missing = [r["id"] for r in rows if r["published_at"] and str(r["id"]) not in on_stream]
            for event_id in missing:
                self.report.bad(
                    "published event missing from its stream",
                    f"{schema}.outbox {event_id} (stream {stream_for(svc.name, self.prefix)})",
                )
            self.report.ok(
                "outbox rows published and on their stream",
                len(rows) - len(missing) - len(unpublished),
            )
            dupes = sum(n - 1 for n in on_stream.values() if n > 1)
            if dupes:
                self.report.notes.append(
                    f"{stream_for(svc.name, self.prefix)}: {dupes} events published more than "
                    "once (at least once on the wire; consumers absorb them)"
                )

    async def _stream_ids(self, redis: aioredis.Redis, stream: str) -> list[str]:
        ids: list[str] = []
        start = "-"
        while True:
            batch = await redis.xrange(stream, min=start, max="+", count=1000)
            if not batch:
                return ids
            for _, fields in batch:
                raw = fields.get(b"event") or fields.get("event")
                if raw is not None:
                    ids.append(str(json.loads(raw)["id"]))
            last = batch[-1][0].decode() if isinstance(batch[-1][0], bytes) else batch[-1][0]
            start = "(" + last
            if len(batch) < 1000:
                return ids

    async def check_inboxes(self, conn: asyncpg.Connection) -> None:
        for consumer in self.consumers:
            by_producer: dict[str, list[str]] = defaultdict(list)
            for event_type, producer in consumer.types.items():
                by_producer[producer].append(event_type)
            expected: dict[str, str] = {}
            for producer, types in by_producer.items():
                rows = await conn.fetch(
                    f'SELECT id, type FROM "{schema_of(producer)}".outbox '
                    "WHERE type = ANY($1::text[])",
                    types,
                )
                expected.update({str(r["id"]): r["type"] for r in rows})
            rows = await conn.fetch(f'SELECT event_id, event_type FROM "{consumer.schema}".inbox')
            inbox = Counter(str(r["event_id"]) for r in rows)
            for event_id, event_type in expected.items():
                if event_id not in inbox:
                    self.report.bad(
                        "event never handled by its consumer",
                        f"{consumer.service} has no inbox row for {event_type} {event_id}",
                    )
            for event_id in set(inbox) - set(expected):
                self.report.bad(
                    "inbox row without its event",
                    f"{consumer.service} inbox {event_id} is no consumed event of any outbox",
                )
            self.report.ok(
                f"events handled once by {consumer.service} (inbox = consumed outbox events)",
                len(set(expected) & set(inbox)),
            )

    async def check_dead_letters(self, redis: aioredis.Redis) -> None:
        for consumer in self.consumers:
            stream = dead_letter_stream(consumer.service, self.prefix)
            entries = await redis.xrange(stream, count=MAX_LISTED)
            total = await redis.xlen(stream)
            for _, fields in entries:
                decoded = {
                    (k.decode() if isinstance(k, bytes) else k): (
                        v.decode(errors="replace") if isinstance(v, bytes) else v
                    )
                    for k, v in fields.items()
                }
                self.report.bad(
                    "event dead-lettered",
                    f"{stream}: error {decoded.get('error', '?')[:300]} "
                    f"(attempts {decoded.get('attempts')})",
                )
            if total > len(entries):
                self.report.bad("event dead-lettered", f"{stream}: {total - len(entries)} more")
            self.report.ok("consumer groups without dead letters", 1 if not total else 0)

    # --- effects of events ----------------------------------------------------------------

    async def check_inspections(self, conn: asyncpg.Connection) -> None:
        submissions = await conn.fetch(
            "SELECT id, (payload->>'task_id')::uuid AS task_id, (payload->>'round')::int AS round "
            "FROM task.outbox WHERE type = 'task.submitted_for_qc'"
        )
        inspections = await conn.fetch(
            "SELECT id, task_id, round, status, source_event_id FROM qc.inspection"
        )
        per_round = Counter((r["task_id"], r["round"]) for r in inspections)
        submitted = Counter((r["task_id"], r["round"]) for r in submissions)
        for key, n in submitted.items():
            if n > 1:
                self.report.bad(
                    "QC round submitted twice", f"task {key[0]} round {key[1]}: {n} submissions"
                )
            if per_round.get(key, 0) != 1:
                self.report.bad(
                    "QC submission without exactly one inspection",
                    f"task {key[0]} round {key[1]}: {per_round.get(key, 0)} inspections",
                )
            else:
                self.report.ok("QC rounds with exactly one inspection")
        for key in set(per_round) - set(submitted):
            self.report.bad("inspection without a submission", f"task {key[0]} round {key[1]}")
        # The newest round is open (pending / claimed) exactly when its task is in QC.
        latest: dict[Any, asyncpg.Record] = {}
        for r in inspections:
            if r["task_id"] not in latest or r["round"] > latest[r["task_id"]]["round"]:
                latest[r["task_id"]] = r
        statuses = {
            r["id"]: r["status"]
            for r in await conn.fetch(
                "SELECT id, status FROM task.tasks WHERE id = ANY($1::uuid[])", list(latest)
            )
        }
        for task_id, r in latest.items():
            open_round = r["status"] in ("pending", "claimed")
            in_qc = statuses.get(task_id) == "in_qc"
            if open_round != in_qc:
                self.report.bad(
                    "inspection and task disagree",
                    f"task {task_id} is {statuses.get(task_id)}, its round {r['round']} "
                    f"inspection is {r['status']}",
                )
            else:
                self.report.ok("tasks whose QC state matches their newest inspection")

    async def check_decisions(self, conn: asyncpg.Connection) -> None:
        decisions = await conn.fetch(
            "SELECT id, type, (payload->>'inspection_id')::uuid AS inspection_id, "
            "(payload->>'task_id')::uuid AS task_id FROM qc.outbox "
            "WHERE type IN ('qc.inspection.passed', 'qc.inspection.failed')"
        )
        applied = {
            r["client_event_id"]: r
            for r in await conn.fetch(
                "SELECT client_event_id, action, payload->>'inspection_id' AS inspection_id "
                "FROM task.task_events WHERE client_event_id LIKE 'qc:%'"
            )
        }
        refusals = Counter(
            r["inspection_id"]
            for r in await conn.fetch(
                "SELECT (payload->>'inspection_id')::uuid AS inspection_id FROM task.outbox "
                "WHERE type = 'task.qc_decision_refused'"
            )
        )
        inspections = {
            r["id"]: r for r in await conn.fetch("SELECT id, status, refusals FROM qc.inspection")
        }
        not_applied: Counter[Any] = Counter()
        for d in decisions:
            key = f"qc:{d['id']}"
            want = "qc_accept" if d["type"] == "qc.inspection.passed" else "qc_reject"
            got = applied.get(key)
            if got is None:
                not_applied[d["inspection_id"]] += 1
            elif got["action"] != want or got["inspection_id"] != str(d["inspection_id"]):
                self.report.bad(
                    "QC decision applied wrongly",
                    f"{d['type']} {d['id']}: applied as {got['action']} of {got['inspection_id']}",
                )
            else:
                self.report.ok("QC decisions applied to their task once")
        for inspection_id in set(not_applied) | set(refusals):
            if not_applied[inspection_id] != refusals[inspection_id]:
                self.report.bad(
                    "QC decision neither applied nor refused",
                    f"inspection {inspection_id}: {not_applied[inspection_id]} decisions not "
                    f"applied, {refusals[inspection_id]} refusals",
                )
            else:
                self.report.ok("QC decisions refused once", refusals[inspection_id])
            row = inspections.get(inspection_id)
            recorded = (
                json.loads(row["refusals"])
                if row and isinstance(row["refusals"], str)
                else (row["refusals"] if row else [])
            )
            if len(recorded) != refusals[inspection_id]:
                self.report.bad(
                    "refusal not returned to the inspection",
                    f"inspection {inspection_id}: {refusals[inspection_id]} refusals, "
                    f"{len(recorded)} on record",
                )

    async def check_deliverables_and_projects(self, conn: asyncpg.Connection) -> None:
        rows = await conn.fetch(
            """
            SELECT d.id, d.status, d.project_id,
              (SELECT count(*) FROM task.tasks t WHERE t.deliverable_id = d.id
                 AND t.status NOT IN ('done', 'cancelled'))::int AS unresolved,
              (SELECT count(*) FROM task.deliverable_signoffs s WHERE s.deliverable_id = d.id
                 AND s.decision = 'approved')::int AS approvals
            FROM task.deliverables d
            """
        )
        by_project: dict[Any, list[str]] = defaultdict(list)
        for r in rows:
            by_project[r["project_id"]].append(r["status"])
            want = (
                "in_progress"
                if r["unresolved"]
                else ("signed_off" if r["approvals"] else "ready_for_signoff")
            )
            if r["status"] != want or r["approvals"] > 1:
                self.report.bad(
                    "deliverable status disagrees with its tasks",
                    f"deliverable {r['id']} is {r['status']} with {r['unresolved']} unresolved "
                    f"tasks and {r['approvals']} approvals",
                )
            else:
                self.report.ok("deliverables consistent with their tasks and sign-offs")
        projects = await conn.fetch("SELECT id, status FROM task.projects")
        for p in projects:
            all_signed = all(s == "signed_off" for s in by_project.get(p["id"], []))
            if (
                p["status"] in ("active", "completed")
                and (p["status"] == "completed") != all_signed
            ):
                self.report.bad(
                    "project status disagrees with its deliverables",
                    f"project {p['id']} is {p['status']}; deliverables "
                    f"{sorted(by_project.get(p['id'], []))}",
                )
            else:
                self.report.ok("projects consistent with their deliverables")

    async def check_webhook_receipts(self, conn: asyncpg.Connection) -> None:
        endpoints = self.records.endpoints
        if not endpoints or self.receipts is None:
            self.report.notes.append("webhook receipts: not checked: no endpoint subscribed")
            return
        ids = [uuid.UUID(e.id) for e in endpoints.values()]
        give_up = time.monotonic() + self.webhook_deadline
        open_sql = (
            "SELECT count(*) FROM notify.webhook_delivery WHERE endpoint_id = ANY($1) "
            "AND status IN ('pending', 'delivering', 'failed')"
        )
        while (left := await conn.fetchval(open_sql, ids)) and time.monotonic() < give_up:
            await asyncio.sleep(0.5)
        if left:
            self.report.bad(
                "webhook delivery never settled", f"{left} still open after the deadline"
            )
        dead = await conn.fetch(
            "SELECT event_id, last_error FROM notify.webhook_delivery "
            "WHERE endpoint_id = ANY($1) AND status = 'dead'",
            ids,
        )
        for row in dead[:MAX_LISTED]:
            detail = f"event {row['event_id']}: {row['last_error']}"
            self.report.bad("webhook delivery dead", detail)
        expected: dict[str, Subscription] = {}
        for org_id, endpoint in endpoints.items():
            rows = await conn.fetch(
                "SELECT id FROM task.outbox WHERE type LIKE 'task.%' AND payload->>'org_id' = $1",
                str(org_id),
            )
            expected.update((str(r["id"]), endpoint) for r in rows)
        received = self.receipts()
        arrived: Counter[str] = Counter()
        for request in received:
            subscription = expected.get(request.webhook_id)
            if subscription is None:
                self.report.bad(
                    "webhook received that no subscription matches",
                    f"{request.webhook_id} at {request.path}",
                )
                continue
            problem = signature_problem(subscription.secret, request)
            if problem is not None:
                detail = f"{request.webhook_id}: {problem}"
                self.report.bad("webhook signature does not verify", detail)
                continue
            arrived[request.webhook_id] += 1
        missing = [event_id for event_id in expected if event_id not in arrived]
        for event_id in missing[:MAX_LISTED]:
            self.report.bad("webhook never received (lost)", f"task event {event_id}")
        self.report.ok("task events received by their subscriber", len(expected) - len(missing))
        dupes = sum(n - 1 for n in arrived.values() if n > 1)
        self.report.notes.append(
            f"webhooks: {len(expected)} task events to {len(endpoints)} endpoints, "
            f"{len(received)} requests received, {dupes} duplicates on the wire (absorbed by "
            "webhook-id)"
        )


def signature_problem(secret: str, request: Received) -> str | None:
    """What a subscriber verifying `request` when it arrived would object to (None: nothing).

    The `standardwebhooks` package checks the signature and that the timestamp is within five
    minutes of *now*; the checker runs after the whole run, so the timestamp is compared with
    the request's arrival instead, and the signature is the package's own."""
    try:
        msg_id = request.headers["webhook-id"]
        timestamp = int(request.headers["webhook-timestamp"])
        offered = request.headers["webhook-signature"].split()
    except (KeyError, ValueError) as exc:
        return f"missing or malformed header: {exc}"
    if abs(request.at - timestamp) > 300:
        return f"timestamp {timestamp} is {request.at - timestamp:.0f}s from the arrival"
    expected = Webhook(secret).sign(
        msg_id, datetime.fromtimestamp(timestamp, UTC), request.body.decode()
    )
    if not any(hmac.compare_digest(expected, candidate) for candidate in offered):
        return "no signature matches the endpoint's secret"
    return None


def replay_problem(history: Iterable[asyncpg.Record], row: asyncpg.Record) -> str | None:
    """Replay a task's history from its creation; None when it gives exactly the row."""
    status: str | None = None
    assigned: str | None = None
    version = 0
    for i, e in enumerate(history):
        action = e["action"]
        if i == 0:
            if action != "create" or e["from_status"] is not None or e["row_version"] != 1:
                return (
                    f"history starts with {action} from {e['from_status']} at v{e['row_version']}"
                )
        elif e["from_status"] != status:
            return f"event {i} ({action}) goes from {e['from_status']}, the task was {status}"
        step = 0 if action in NO_CHANGE_ACTIONS else 1
        if i and e["row_version"] != version + step:
            return f"event {i} ({action}) is at v{e['row_version']}, expected v{version + step}"
        payload = e["payload"]
        if isinstance(payload, str):
            payload = json.loads(payload)
        if action == "assign":
            assigned = payload.get("assign_to")
        elif action == "unassign":
            assigned = None
        elif payload.get("assigned_to"):
            assigned = payload["assigned_to"]
        status, version = e["to_status"], e["row_version"]
    if status is None:
        return "no history"
    row_assigned = str(row["assigned_to"]) if row["assigned_to"] else None
    if (status, assigned, version) != (row["status"], row_assigned, row["row_version"]):
        return (
            f"replay gives ({status}, {assigned}, v{version}), "
            f"the row is ({row['status']}, {row_assigned}, v{row['row_version']})"
        )
    return None
