"""The transition service: every status change of a task goes through `apply_transition`.

One transition is one transaction: lock the task (reading its project's status and any earlier
request with the same client_event_id in the same round trip), check idempotency, the project
status, the row version, the FSM, who may act and the guards; then, in one more statement,
update the task, append its event (with the response, for idempotent replay) and write its
outbox rows; cascades follow only when the task's resolution changes. Any refusal raises before
the unit of work commits, so nothing is half-applied. Every request is counted in the metrics of
`task_svc.tasks.metrics`.

Milestones: a milestone restored with no open blocker completes at once (a `restore` event then
an `auto_complete` one), and a finished milestone is not reopened (reopen the work before it):
a milestone is only ever blocked, done or cancelled.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from contracts import tasks as contracts
from servicekit.db import Database
from servicekit.errors import (
    AppError,
    Conflict,
    Forbidden,
    NotFound,
    Unprocessable,
    VersionConflict,
)
from servicekit.jsonutil import loads
from task_svc.tasks import cascades
from task_svc.tasks import metrics as m
from task_svc.tasks.cascades import EventRow, History, OutboxRow
from task_svc.tasks.fsm import (
    RESOLVED,
    SYSTEM_ACTIONS,
    TRANSITIONS,
    WORKER_ROLES,
    Action,
    Guard,
    PayloadError,
    Status,
    allowed_actions,
    failed_guards,
    may_perform,
    target_status,
    user_actions_from,
    validate_payload,
)

MAX_BULK = 500
# Keys the service adds to an event's payload (not part of the request): ignored when a
# repeated client_event_id is compared with the original request.
EFFECT_KEYS = frozenset({"assigned_to"})

# Tasks change only while their project is active. QC decisions are the exception for a project
# on hold: the inspection already happened, so its result is recorded (the task moves to done or
# rework) and work resumes from there. In a cancelled or completed project nothing changes.
HELD_PROJECT_ACTIONS: frozenset[Action] = frozenset({Action.QC_ACCEPT, Action.QC_REJECT})


@dataclass(frozen=True)
class Caller:
    """Who asks: a user (with roles) or a service / the system."""

    actor: str
    roles: frozenset[str]
    user_id: uuid.UUID | None
    system: bool = False


@dataclass(frozen=True)
class TransitionOutcome:
    status_code: int
    body: dict[str, Any]
    replayed: bool

    @property
    def row_version(self) -> int:
        return int(self.body["task"]["row_version"])


# The task row is locked; its project's status and the event of an earlier request with the
# same client_event_id come in the same round trip. The project row is not locked: a project put
# on hold concurrently takes effect from the next transition on. The event is read in the
# statement's snapshot, so a duplicate that waited here for the original's lock does not see it:
# see `_apply_transition` for how that case is still answered as a replay.
# `has_dependents` lets a resolving transition skip the dependents' statement when there are
# none: a task's dependency rows are written with the task itself (project bootstrap) and never
# added later, so reading them here, under the task's lock, is as good as reading them later.
_LOCK_SQL = (
    "SELECT t.id, t.org_id, t.project_id, t.deliverable_id, t.node_key, t.title, t.status, "
    "t.assigned_to, t.assigned_at, t.started_at, t.completed_at, t.due_at, t.priority, "
    "t.qc_required, t.qc_checklist, t.is_milestone, t.open_blockers, t.row_version, "
    "t.updated_at, p.status AS project_status, e.action AS prior_action, "
    "e.payload AS prior_payload, e.response AS prior_response, e.status_code AS prior_code, "
    "EXISTS (SELECT 1 FROM task_dependencies d WHERE d.blocker_id = t.id) AS has_dependents "
    "FROM tasks t JOIN projects p ON p.id = t.project_id "
    "LEFT JOIN task_events e ON e.task_id = t.id AND e.client_event_id = $3 "
    "WHERE t.id = $1 AND t.org_id = $2 FOR UPDATE OF t"
)
_PRIOR_KEYS = ("prior_action", "prior_payload", "prior_response", "prior_code")
_IDEMPOTENCY_SQL = (
    "SELECT action, payload, response, status_code FROM task_events "
    "WHERE task_id = $1 AND client_event_id = $2"
)
_WRITE_SQL = "".join(
    (
        """WITH upd AS (
  UPDATE tasks SET status = $3, assigned_to = $4, assigned_at = $5, started_at = $6,
    completed_at = $7, updated_at = $8, row_version = $9
  WHERE id = $1 AND org_id = $2
  RETURNING 1
),""",
        cascades.history_ctes(10),
        "\nSELECT count(*) FROM upd",
    )
)
# The same, also locking the task's deliverable ($30): for a task becoming resolved that has no
# dependents, the deliverable is the next lock in the fixed order (task, dependents,
# deliverables), so it is taken here rather than in a statement of its own.
_WRITE_LOCKING_DELIVERABLE_SQL = "".join(
    (
        _WRITE_SQL.removesuffix("\nSELECT count(*) FROM upd"),
        """,
dl AS (SELECT id FROM deliverables WHERE id = $30 AND org_id = $2 FOR UPDATE)
SELECT (SELECT count(*) FROM upd), (SELECT count(*) FROM dl)""",
    )
)
_OPEN_BLOCKERS_SQL = """
SELECT b.id, b.title, b.status FROM task_dependencies d
JOIN tasks b ON b.id = d.blocker_id
WHERE d.task_id = $1 AND b.status NOT IN ('done', 'cancelled') ORDER BY b.id
"""
# The QC round (1 + earlier rejects) and the project's pinned template, in one round trip.
_QC_ROUND_SQL = (
    "SELECT (SELECT count(*) FROM task_events WHERE task_id = $1 AND action = 'qc_reject'), "
    "p.template_id, p.template_version FROM projects p WHERE p.id = $2"
)


def _iso(v: datetime | None) -> str | None:
    return v.isoformat() if v is not None else None


def _uid(v: Any) -> str | None:
    return str(v) if v is not None else None


def task_view(row: dict[str, Any], caller: Caller) -> dict[str, Any]:
    """The task as a transition answers it (with the caller's allowed actions)."""
    return {
        "id": str(row["id"]),
        "project_id": str(row["project_id"]),
        "deliverable_id": str(row["deliverable_id"]),
        "node_key": row["node_key"],
        "title": row["title"],
        "status": row["status"],
        "assigned_to": _uid(row["assigned_to"]),
        "assigned_at": _iso(row["assigned_at"]),
        "started_at": _iso(row["started_at"]),
        "completed_at": _iso(row["completed_at"]),
        "open_blockers": row["open_blockers"],
        "qc_required": row["qc_required"],
        "is_milestone": row["is_milestone"],
        "row_version": row["row_version"],
        "updated_at": _iso(row["updated_at"]),
        "allowed_actions": allowed_actions(
            row["status"],
            roles=caller.roles,
            user_id=caller.user_id,
            assigned_to=row["assigned_to"],
            open_blockers=row["open_blockers"],
            qc_required=row["qc_required"],
            is_milestone=row["is_milestone"],
        ),
    }


def _parse_action(action: str, caller: Caller) -> Action:
    try:
        act = Action(action)
    except ValueError:
        raise Unprocessable(
            f"unknown action {action!r}; the actions are: "
            + ", ".join(a for a in TRANSITIONS if a not in SYSTEM_ACTIONS),
            code="ACTION_UNKNOWN",
            action=action,
        ) from None
    if act in SYSTEM_ACTIONS and not caller.system:
        raise Forbidden(
            f"action '{act}' is a system action: only the platform performs it",
            code="SYSTEM_ACTION",
            action=str(act),
        )
    if caller.system and act not in SYSTEM_ACTIONS:
        raise Forbidden(
            f"action '{act}' is a user action; services may only perform "
            + ", ".join(sorted(SYSTEM_ACTIONS)),
            code="USER_ACTION",
            action=str(act),
        )
    return act


def _payload(act: Action, payload: Any) -> dict[str, Any]:
    try:
        return validate_payload(act, payload)
    except PayloadError as exc:
        raise Unprocessable(str(exc), code="PAYLOAD_INVALID", field=exc.field) from None


async def apply_transition(
    session: AsyncSession,
    *,
    org_id: uuid.UUID,
    task_id: uuid.UUID,
    action: str,
    payload: Any,
    expected_row_version: int | None,
    client_event_id: str | None,
    caller: Caller,
) -> TransitionOutcome:
    """Apply one action to one task in the session's transaction (flushes, never commits).

    Counts the request in the transition metrics by action and outcome.
    """
    started = time.perf_counter()
    try:
        outcome = await _apply_transition(
            session,
            org_id=org_id,
            task_id=task_id,
            action=action,
            payload=payload,
            expected_row_version=expected_row_version,
            client_event_id=client_event_id,
            caller=caller,
        )
    except AppError as exc:
        m.record_refusal(action, exc.code, time.perf_counter() - started)
        raise
    m.record(action, "replayed" if outcome.replayed else "ok", time.perf_counter() - started)
    return outcome


async def _apply_transition(
    session: AsyncSession,
    *,
    org_id: uuid.UUID,
    task_id: uuid.UUID,
    action: str,
    payload: Any,
    expected_row_version: int | None,
    client_event_id: str | None,
    caller: Caller,
) -> TransitionOutcome:
    act = _parse_action(action, caller)
    clean = _payload(act, payload)
    conn = await session.connection()
    res = await conn.exec_driver_sql(_LOCK_SQL, (task_id, org_id, client_event_id))
    found = res.mappings().first()
    if found is None:
        raise NotFound(f"task {task_id} not found", code="TASK_NOT_FOUND")
    row = dict(found)
    prior = tuple(row.pop(k) for k in _PRIOR_KEYS)
    if client_event_id is not None:
        if prior[0] is not None:
            return _replayed(prior, client_event_id, act, clean)
        if expected_row_version is None:
            # Without a row version, a duplicate that waited for the original's lock could pass
            # every check: look for the original again, now that the lock is held.
            replay = await _replay(conn, task_id, client_event_id, act, clean)
            if replay is not None:
                return replay
    try:
        _check_project(row, act)
        await check_locked(
            conn, row=row, act=act, caller=caller, expected_row_version=expected_row_version
        )
    except AppError:
        if client_event_id is not None and expected_row_version is not None:
            # A duplicate that waited for the original's lock is refused here (the original
            # moved the row_version on); its original is committed and visible now.
            replay = await _replay(conn, task_id, client_event_id, act, clean)
            if replay is not None:
                return replay
        raise
    return await write_locked(
        conn, row=row, act=act, clean=clean, caller=caller, client_event_id=client_event_id
    )


def _check_project(row: dict[str, Any], act: Action) -> None:
    """Refuse when the task's project is not active (see HELD_PROJECT_ACTIONS)."""
    project_status = row["project_status"]
    if project_status == "active":
        return
    if project_status == "on_hold" and act in HELD_PROJECT_ACTIONS:
        return
    hint = (
        "resume the project first"
        if project_status == "on_hold"
        else "a cancelled or completed project is final"
    )
    raise Conflict(
        f"project {row['project_id']} is {project_status}: its tasks cannot change ({hint})",
        code="PROJECT_NOT_ACTIVE",
        project_id=str(row["project_id"]),
        project_status=project_status,
    )


async def _replay(
    conn: AsyncConnection,
    task_id: uuid.UUID,
    client_event_id: str,
    act: Action,
    clean: dict[str, Any],
) -> TransitionOutcome | None:
    res = await conn.exec_driver_sql(_IDEMPOTENCY_SQL, (task_id, client_event_id))
    found = res.first()
    if found is None:
        return None
    return _replayed(tuple(found), client_event_id, act, clean)


def _replayed(
    prior: tuple[Any, ...], client_event_id: str, act: Action, clean: dict[str, Any]
) -> TransitionOutcome:
    """The stored answer of (action, payload, response, status_code), if the request matches."""
    prior_payload = loads(prior[1]) if isinstance(prior[1], str) else (prior[1] or {})
    original = {k: v for k, v in prior_payload.items() if k not in EFFECT_KEYS}
    if prior[0] != act or original != clean:
        raise Unprocessable(
            f"client_event_id {client_event_id!r} was already used on this task for action "
            f"'{prior[0]}' with payload {original}; use a new client_event_id for a different "
            "request",
            code="IDEMPOTENCY_MISMATCH",
            client_event_id=client_event_id,
        )
    body = loads(prior[2]) if isinstance(prior[2], str) else prior[2]
    return TransitionOutcome(status_code=prior[3] or 200, body=body or {}, replayed=True)


async def apply_locked(
    conn: AsyncConnection,
    *,
    row: dict[str, Any],
    act: Action,
    clean: dict[str, Any],
    caller: Caller,
    expected_row_version: int | None = None,
    client_event_id: str | None = None,
    skip_permission: bool = False,
) -> TransitionOutcome:
    """Apply `act` to a task row already locked in this transaction."""
    await check_locked(
        conn,
        row=row,
        act=act,
        caller=caller,
        expected_row_version=expected_row_version,
        skip_permission=skip_permission,
    )
    return await write_locked(
        conn, row=row, act=act, clean=clean, caller=caller, client_event_id=client_event_id
    )


async def check_locked(
    conn: AsyncConnection,
    *,
    row: dict[str, Any],
    act: Action,
    caller: Caller,
    expected_row_version: int | None = None,
    skip_permission: bool = False,
) -> None:
    """Every refusal of `act` on a locked task row, before anything is written."""
    status = row["status"]
    if expected_row_version is not None and expected_row_version != row["row_version"]:
        raise VersionConflict(
            f"task {row['id']} is at row_version {row['row_version']} (status '{status}'), "
            f"not {expected_row_version}: reload it and decide again",
            current_row_version=row["row_version"],
            current_status=status,
        )
    t = TRANSITIONS[act]
    if act is Action.START and status == Status.BLOCKED and not row["is_milestone"]:
        # Starting a blocked task is refused by naming what blocks it.
        await _raise_blocked(conn, row)
    if status not in t.sources:
        allowed = user_actions_from(status)
        raise Unprocessable(
            f"action '{act}' is not allowed from status '{status}'; from '{status}' the "
            f"actions are: {', '.join(allowed) or 'none'}",
            code="ACTION_NOT_ALLOWED",
            current_status=status,
            allowed_actions=allowed,
        )
    if (
        not caller.system
        and not skip_permission
        and not may_perform(
            act, roles=caller.roles, user_id=caller.user_id, assigned_to=row["assigned_to"]
        )
    ):
        raise Forbidden(
            _forbidden_detail(act, row, caller), code="ACTION_FORBIDDEN", action=str(act)
        )
    failed = failed_guards(
        act, open_blockers=row["open_blockers"], is_milestone=row["is_milestone"]
    )
    if Guard.NOT_MILESTONE in failed:
        raise Unprocessable(
            f"task {row['id']} is a milestone: it completes by itself when its blockers are "
            "resolved and cannot be started",
            code="ACTION_NOT_ALLOWED",
            current_status=status,
            allowed_actions=[],
        )
    if Guard.NO_OPEN_BLOCKERS in failed:
        await _raise_blocked(conn, row)
    if Guard.IS_MILESTONE in failed:
        raise Unprocessable("only milestones complete by themselves", code="ACTION_NOT_ALLOWED")
    if act is Action.REOPEN and row["is_milestone"]:
        # A reopened milestone could never finish (it cannot be started): reopen its work.
        raise Unprocessable(
            f"task {row['id']} is a milestone: it has no work of its own to redo; reopen the "
            "tasks before it instead",
            code="ACTION_NOT_ALLOWED",
            current_status=status,
            allowed_actions=[],
        )


async def write_locked(
    conn: AsyncConnection,
    *,
    row: dict[str, Any],
    act: Action,
    clean: dict[str, Any],
    caller: Caller,
    client_event_id: str | None = None,
) -> TransitionOutcome:
    """Write `act` (already checked by `check_locked`) and its cascades."""
    status = row["status"]
    now = datetime.now(UTC)
    new_status = target_status(
        act, Status(status), qc_required=row["qc_required"], open_blockers=row["open_blockers"]
    )
    new = dict(row)
    new["status"] = str(new_status)
    new["row_version"] = row["row_version"] + 1
    new["updated_at"] = now
    event_payload = dict(clean)
    history = History()
    rework: cascades.ReworkPlan | None = None
    if act is Action.QC_REJECT and "rework_from_task_id" in clean:
        # Validated and locked before anything is written: a refusal leaves no trace.
        rework = await cascades.plan_rework(
            conn, row=row, upstream_id=uuid.UUID(clean["rework_from_task_id"])
        )
        new["open_blockers"] = row["open_blockers"] + rework.target_new_open
    if act is Action.ASSIGN:
        new["assigned_to"] = uuid.UUID(clean["assign_to"])
        new["assigned_at"] = now
    elif act is Action.UNASSIGN:
        new["assigned_to"] = None
        new["assigned_at"] = None
    elif act is Action.START:
        if row["assigned_to"] is None and caller.user_id is not None:
            new["assigned_to"] = caller.user_id
            new["assigned_at"] = now
            event_payload["assigned_to"] = str(caller.user_id)
        if row["started_at"] is None:
            new["started_at"] = now
    if new_status is Status.DONE and status != Status.DONE:
        new["completed_at"] = now
    elif act is Action.REOPEN:
        new["completed_at"] = None

    if new["assigned_to"] != row["assigned_to"]:
        history.outbox.append(_assigned(new, row, caller, now))
    if new_status != status:
        history.outbox.append(
            cascades.status_changed(
                new,
                action=act,
                from_status=status,
                to_status=new_status,
                actor=caller.actor,
                row_version=new["row_version"],
                payload=event_payload,
                now=now,
            )
        )
    if new_status is Status.IN_QC:
        history.outbox.append(await _submitted_for_qc(conn, new, clean, now))

    body = {
        "task_id": str(row["id"]),
        "action": str(act),
        "from_status": status,
        "to_status": str(new_status),
        "row_version": new["row_version"],
        "task": task_view(new, caller),
    }
    history.events.append(
        EventRow(
            row["org_id"],
            row["id"],
            act,
            status,
            new_status,
            caller.actor,
            event_payload,
            new["row_version"],
            client_event_id,
            body,
            200,
        )
    )
    if new_status is Status.READY and row["is_milestone"]:
        # A milestone restored with nothing open before it completes at once, as it would
        # have when its last blocker was resolved.
        new_status = _auto_complete(new, history, now)
        body["row_version"] = new["row_version"]
        body["task"] = task_view(new, caller)
    params: list[Any] = [
        row["id"],
        row["org_id"],
        new["status"],
        new["assigned_to"],
        new["assigned_at"],
        new["started_at"],
        new["completed_at"],
        now,
        new["row_version"],
    ]
    params.extend(cascades.history_params(history, now))
    was_resolved = status in RESOLVED
    is_resolved = new_status in RESOLVED
    # A row locked by another query (sign-off) does not say whether it has dependents.
    has_dependents = row.get("has_dependents", True)
    lock_deliverable = is_resolved and not was_resolved and not has_dependents and rework is None
    if lock_deliverable:
        params.append(row["deliverable_id"])
    await conn.exec_driver_sql(
        _WRITE_LOCKING_DELIVERABLE_SQL if lock_deliverable else _WRITE_SQL, tuple(params)
    )
    history.events.clear()
    history.outbox.clear()
    if rework is not None:
        await cascades.apply_rework(
            conn,
            rework,
            inspected=row,
            inspection_id=clean["inspection_id"],
            reason=clean.get("reason"),
            actor=caller.actor,
            history=history,
            now=now,
        )

    if is_resolved and not was_resolved:
        deliverables = {row["deliverable_id"]}
        if has_dependents:
            result = await cascades.resolve_blockers(
                conn, org_id=row["org_id"], blocker_ids=[row["id"]], history=history, now=now
            )
            deliverables.update(result.resolved_deliverables)
        await cascades.mark_ready_for_signoff(
            conn,
            org_id=row["org_id"],
            deliverable_ids=deliverables,
            history=history,
            now=now,
            locked=lock_deliverable,
        )
    elif was_resolved and not is_resolved:
        await cascades.unresolve_blocker(
            conn, org_id=row["org_id"], blocker_id=row["id"], history=history, now=now
        )
        await cascades.reopen_deliverable(
            conn, org_id=row["org_id"], deliverable_id=row["deliverable_id"], now=now
        )
    await cascades.write_history(conn, history, now)
    return TransitionOutcome(status_code=200, body=body, replayed=False)


def _auto_complete(new: dict[str, Any], history: History, now: datetime) -> Status:
    ready_version = new["row_version"]
    new["status"] = str(Status.DONE)
    new["row_version"] = ready_version + 1
    new["completed_at"] = now
    history.events.append(
        EventRow(
            new["org_id"],
            new["id"],
            Action.AUTO_COMPLETE,
            Status.READY,
            Status.DONE,
            cascades.SYSTEM_ACTOR,
            {},
            new["row_version"],
        )
    )
    history.outbox.append(
        cascades.status_changed(
            new,
            action=Action.AUTO_COMPLETE,
            from_status=Status.READY,
            to_status=Status.DONE,
            actor=cascades.SYSTEM_ACTOR,
            row_version=new["row_version"],
            payload={},
            now=now,
        )
    )
    return Status.DONE


async def _raise_blocked(conn: AsyncConnection, row: dict[str, Any]) -> None:
    res = await conn.exec_driver_sql(_OPEN_BLOCKERS_SQL, (row["id"],))
    blockers = [
        {"id": str(b["id"]), "title": b["title"], "status": b["status"]} for b in res.mappings()
    ]
    names = "; ".join(f"{b['title']} ({b['id']}, {b['status']})" for b in blockers)
    raise Conflict(
        f"task is blocked by: {names or str(row['open_blockers']) + ' open blockers'}",
        code="TASK_BLOCKED",
        blockers=blockers,
    )


def _forbidden_detail(act: Action, row: dict[str, Any], caller: Caller) -> str:
    who = sorted(str(w) for w in TRANSITIONS[act].who)
    if row["assigned_to"] is not None and row["assigned_to"] == caller.user_id:
        return (
            f"your roles ({', '.join(sorted(caller.roles)) or 'none'}) only read tasks: working "
            f"on a task assigned to you needs one of the roles {', '.join(sorted(WORKER_ROLES))}"
        )
    if act is Action.START and row["assigned_to"] is not None:
        return (
            f"task {row['id']} is assigned to {row['assigned_to']}: only the assignee may start "
            "it (a planner can reassign it first)"
        )
    return f"action '{act}' may be done by: {', '.join(who)} (admin always may)"


def _assigned(new: dict[str, Any], old: dict[str, Any], caller: Caller, now: datetime) -> OutboxRow:
    return OutboxRow(
        contracts.TASK_ASSIGNED,
        "task",
        new["id"],
        {
            **cascades.task_event_fields(new, row_version=new["row_version"], now=now),
            "assigned_to": _uid(new["assigned_to"]),
            "previous_assignee": _uid(old["assigned_to"]),
            "actor": caller.actor,
        },
    )


async def _submitted_for_qc(
    conn: AsyncConnection, new: dict[str, Any], clean: dict[str, Any], now: datetime
) -> OutboxRow:
    res = await conn.exec_driver_sql(_QC_ROUND_SQL, (new["id"], new["project_id"]))
    rejects, template_id, template_version = tuple(res.one())
    checklist = new["qc_checklist"]
    if isinstance(checklist, str):
        checklist = loads(checklist)
    return OutboxRow(
        contracts.TASK_SUBMITTED_FOR_QC,
        "task",
        new["id"],
        {
            **cascades.task_event_fields(new, row_version=new["row_version"], now=now),
            "title": new["title"],
            "qc_checklist": checklist or [],
            "round": int(rejects) + 1,
            "assignee_id": _uid(new["assigned_to"]),
            "note": clean.get("note"),
            "template_id": _uid(template_id),
            "template_version": template_version,
        },
    )


# ---------------------------------------------------------------------------------------------
# Bulk


@dataclass(frozen=True)
class BulkItem:
    task_id: uuid.UUID
    action: str
    payload: Any
    expected_row_version: int | None
    client_event_id: str | None


async def apply_bulk(
    db: Database, *, org_id: uuid.UUID, items: Sequence[BulkItem], caller: Caller
) -> list[dict[str, Any]]:
    """Apply items in the order given, each in its own transaction, each with its own result."""
    results: list[dict[str, Any]] = []
    for index, item in enumerate(items):
        try:
            async with db.sessionmaker() as session, session.begin():
                outcome = await apply_transition(
                    session,
                    org_id=org_id,
                    task_id=item.task_id,
                    action=item.action,
                    payload=item.payload,
                    expected_row_version=item.expected_row_version,
                    client_event_id=item.client_event_id,
                    caller=caller,
                )
            results.append(
                {
                    "index": index,
                    "task_id": str(item.task_id),
                    "status": outcome.status_code,
                    "replayed": outcome.replayed,
                    "body": outcome.body,
                }
            )
        except AppError as exc:
            results.append(
                {
                    "index": index,
                    "task_id": str(item.task_id),
                    "status": exc.status,
                    "replayed": False,
                    "body": {
                        "type": f"/problems/{exc.code.lower().replace('_', '-')}",
                        "title": exc.title,
                        "status": exc.status,
                        "detail": exc.detail,
                        "code": exc.code,
                        **exc.extra,
                    },
                }
            )
    return results


# ---------------------------------------------------------------------------------------------
# History


_EVENTS_SQL = """
SELECT e.id, e.action, e.from_status, e.to_status, e.actor, e.payload, e.client_event_id,
  e.row_version, e.request_id, e.trace_id, e.created_at
FROM task_events e
WHERE e.task_id = $1 AND e.org_id = $2 AND e.id > $3
ORDER BY e.id LIMIT $4
"""
_TASK_EXISTS_SQL = "SELECT 1 FROM tasks WHERE id = $1 AND org_id = $2"


async def list_events(
    session: AsyncSession,
    *,
    org_id: uuid.UUID,
    task_id: uuid.UUID,
    limit: int,
    cursor: str | None,
) -> dict[str, Any]:
    """A task's history, oldest first, with a cursor on the event id."""
    after = 0
    if cursor:
        try:
            after = int(cursor)
        except ValueError:
            raise Unprocessable(
                "cursor is not valid: pass the next_cursor of a previous page",
                code="CURSOR_INVALID",
                field="cursor",
            ) from None
    conn = await session.connection()
    exists = await conn.exec_driver_sql(_TASK_EXISTS_SQL, (task_id, org_id))
    if exists.first() is None:
        raise NotFound(f"task {task_id} not found", code="TASK_NOT_FOUND")
    res = await conn.exec_driver_sql(_EVENTS_SQL, (task_id, org_id, after, limit + 1))
    rows = list(res.mappings())
    items = [
        {
            "id": r["id"],
            "action": r["action"],
            "from_status": r["from_status"],
            "to_status": r["to_status"],
            "actor": r["actor"],
            "payload": loads(r["payload"]) if isinstance(r["payload"], str) else r["payload"],
            "client_event_id": r["client_event_id"],
            "row_version": r["row_version"],
            "request_id": r["request_id"],
            "trace_id": r["trace_id"],
            "created_at": _iso(r["created_at"]),
        }
        for r in rows[:limit]
    ]
    next_cursor = str(rows[limit - 1]["id"]) if len(rows) > limit else None
    return {"items": items, "next_cursor": next_cursor}
