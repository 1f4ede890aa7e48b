"""The transition service: every status change of a task goes through `apply_transition`.

One transition is one transaction, read top-down: load (lock the task, reading its project's
status and any earlier request with the same key, `client_event_id` or `Idempotency-Key`, in the
same round trip), answer a repeated request from its stored result (servicekit's idempotency
rules), plan (`plan.py`: every refusal, the new row, the
events), write (the task, its events and outbox rows in one statement), cascade (only when the
task's resolution changes). An action that may resolve the task also locks its deliverable with
it when the task has no dependents, and its write then checks the deliverable too (ADR 0004):
complete is BEGIN, lock, write, COMMIT. Any refusal raises before the unit of work commits, so
nothing is half-applied. Every request is counted in the metrics of `task_svc.tasks.metrics`.

The hot route (`apply_from_pool`) first tries an action that touches only the task (assign,
start, pause...) without a transaction: read the row unlocked, plan, and write in one statement
that commits by itself and applies only if the row is still the one read. That is two round
trips instead of four (BEGIN, lock, write, COMMIT). Anything else (a refusal, a cascade, a row
changed in between) goes the locked way above, which decides it exactly as if it had come first.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from contracts.tasks import TaskSubmittedForQcV1
from servicekit.conditional import ExpectedVersion
from servicekit.db import Database, driver_autocommit, driver_transaction
from servicekit.errors import AppError, Conflict, NotFound
from servicekit.idempotency import CommandKey, command_key
from servicekit.jsonutil import loads
from task_svc.tasks import cascades, repository, rework
from task_svc.tasks import metrics as m
from task_svc.tasks.fsm import Action
from task_svc.tasks.history import TaskRow, task_event_fields
from task_svc.tasks.plan import (
    MAY_RESOLVE_ACTIONS,
    TASK_ONLY_ACTIONS,
    Cascade,
    Plan,
    plan_transition,
)
from task_svc.tasks.refusals import Refusal
from task_svc.tasks.sql import Conn
from task_svc.tasks.transition_request import Caller, TransitionOutcome, parse_request, replayed

__all__ = ["Caller", "TransitionOutcome", "apply_from_pool", "apply_locked", "apply_transition"]


@dataclass(frozen=True)
class _Command:
    """One transition request, parsed: the action, its clean payload, its key, who asks."""

    org_id: uuid.UUID
    task_id: uuid.UUID
    act: Action
    clean: dict[str, Any]
    expected: ExpectedVersion | None
    key: CommandKey | None
    caller: Caller

    @property
    def client_event_id(self) -> str | None:
        return self.key.value if self.key is not None else None


async def _counted(
    action: str, run: Callable[[], Awaitable[TransitionOutcome]]
) -> TransitionOutcome:
    """Run one transition request, counting it in the metrics by action and outcome."""
    started = time.perf_counter()
    try:
        outcome = await run()
    except AppError as exc:
        m.record_refusal(action, exc.code, time.perf_counter() - started)
        raise
    m.record(action, "replayed" if outcome.replayed else "ok", time.perf_counter() - started)
    return outcome


def _command(
    org_id: uuid.UUID,
    task_id: uuid.UUID,
    action: str,
    payload: Any,
    expected: ExpectedVersion | None,
    keys: tuple[str | None, str | None],
    caller: Caller,
) -> _Command:
    act, clean = parse_request(action, payload, caller)
    return _Command(org_id, task_id, act, clean, expected, command_key(*keys), caller)


async def apply_transition(
    session: AsyncSession | Conn,
    *,
    org_id: uuid.UUID,
    task_id: uuid.UUID,
    action: str,
    payload: Any,
    expected: ExpectedVersion | None,
    client_event_id: str | None,
    caller: Caller,
    idempotency_key: str | None = None,
) -> TransitionOutcome:
    """Apply one action to one task in the transaction of `session` (a session, or a bare
    connection); never commits.

    The request's key is `client_event_id` or the `Idempotency-Key` header (both sent must
    agree). Counts the request in the transition metrics by action and outcome.
    """

    async def run() -> TransitionOutcome:
        keys = (client_event_id, idempotency_key)
        cmd = _command(org_id, task_id, action, payload, expected, keys, caller)
        conn = await session.connection() if isinstance(session, AsyncSession) else session
        return await _transition(conn, cmd)

    return await _counted(action, run)


async def apply_from_pool(
    db: Database,
    *,
    org_id: uuid.UUID,
    task_id: uuid.UUID,
    action: str,
    payload: Any,
    expected: ExpectedVersion | None,
    client_event_id: str | None,
    caller: Caller,
    idempotency_key: str | None = None,
) -> TransitionOutcome:
    """`apply_transition` as its own unit of work on a connection of `db`'s pool, committed
    when it returns: an action touching only the task is written without a lock when it can
    be (see the module's docstring)."""

    async def run() -> TransitionOutcome:
        keys = (client_event_id, idempotency_key)
        cmd = _command(org_id, task_id, action, payload, expected, keys, caller)
        outcome = None
        if cmd.act in TASK_ONLY_ACTIONS:
            async with driver_autocommit(db) as conn:
                outcome = await _unlocked(conn, cmd)
        m.record_write_path("one_statement" if outcome is not None else "locked")
        if outcome is None:
            async with driver_transaction(db) as conn:
                outcome = await _transition(conn, cmd)
        return outcome

    return await _counted(action, run)


async def _unlocked(conn: Conn, cmd: _Command) -> TransitionOutcome | None:
    """The transition from an unlocked read and one self-committing write; None: it must go
    the locked way (refused, more than the task to write, or the row changed since read)."""
    loaded = await repository.read_task(
        conn, task_id=cmd.task_id, org_id=cmd.org_id, client_event_id=cmd.client_event_id
    )
    if loaded is None:
        raise NotFound(f"task {cmd.task_id} not found", code="TASK_NOT_FOUND")
    task, prior, xmin = loaded
    if cmd.key is not None and prior is not None:
        return replayed(prior, key=cmd.key, act=cmd.act, clean=cmd.clean)
    plan = _plan(task, cmd)
    if isinstance(plan, Refusal) or not plan.touches_only_the_task:
        return None
    now: datetime = plan.new["updated_at"]
    if not await repository.write_task_if_unchanged(
        conn, new=plan.new, history=plan.history, now=now, xmin=xmin
    ):
        return None
    return TransitionOutcome(status_code=200, body=plan.body, replayed=False)


def _plan(task: TaskRow, cmd: _Command) -> Plan | Refusal:
    return plan_transition(
        task,
        cmd.act,
        cmd.caller,
        cmd.clean,
        now=datetime.now(UTC),
        expected=cmd.expected,
        client_event_id=cmd.client_event_id,
    )


async def _transition(conn: Conn, cmd: _Command) -> TransitionOutcome:
    key = cmd.key
    loaded = await repository.lock_task(
        conn,
        task_id=cmd.task_id,
        org_id=cmd.org_id,
        client_event_id=cmd.client_event_id,
        with_deliverable=cmd.act in MAY_RESOLVE_ACTIONS,
    )
    if loaded is None:
        raise NotFound(f"task {cmd.task_id} not found", code="TASK_NOT_FOUND")
    task, prior = loaded
    if key is not None:
        if prior is not None:
            return replayed(prior, key=key, act=cmd.act, clean=cmd.clean)
        if cmd.expected is None:
            # Without a row version, a duplicate that waited for the original's lock could pass
            # every check: look for the original again, now that the lock is held.
            replay = await _replay(conn, cmd.task_id, key, cmd.act, cmd.clean)
            if replay is not None:
                return replay
    plan = _plan(task, cmd)
    if isinstance(plan, Refusal):
        if key is not None and cmd.expected is not None:
            # A duplicate that waited for the original's lock is refused here (the original
            # moved the row_version on); its original is committed and visible now.
            replay = await _replay(conn, cmd.task_id, key, cmd.act, cmd.clean)
            if replay is not None:
                return replay
        raise await _refusal_error(conn, task, plan)
    return await _carry_out(
        conn,
        task,
        plan,
        caller=cmd.caller,
        clean=cmd.clean,
        client_event_id=cmd.client_event_id,
    )


async def apply_locked(
    conn: Conn,
    *,
    task: TaskRow,
    act: Action,
    clean: dict[str, Any],
    caller: Caller,
    authorized: bool = False,
) -> TransitionOutcome:
    """Apply `act` to a task row already locked in this transaction (`repository.lock_tasks`).

    `authorized`: the caller's right was decided elsewhere (see `refusals.refusal_of`).
    """
    plan = plan_transition(task, act, caller, clean, now=datetime.now(UTC), authorized=authorized)
    if isinstance(plan, Refusal):
        raise await _refusal_error(conn, task, plan)
    return await _carry_out(conn, task, plan, caller=caller, clean=clean)


async def _replay(
    conn: Conn,
    task_id: uuid.UUID,
    key: CommandKey,
    act: Action,
    clean: dict[str, Any],
) -> TransitionOutcome | None:
    prior = await repository.find_prior(conn, task_id=task_id, client_event_id=key.value)
    if prior is None:
        return None
    return replayed(prior, key=key, act=act, clean=clean)


async def _refusal_error(conn: Conn, task: TaskRow, refusal: Refusal) -> AppError:
    """The problem to answer; a blocked task's names what blocks it."""
    if not refusal.names_blockers:
        return refusal.error
    blockers = [
        {"id": str(b["id"]), "title": b["title"], "status": b["status"]}
        for b in await repository.open_blockers(conn, task_id=task["id"])
    ]
    names = "; ".join(f"{b['title']} ({b['id']}, {b['status']})" for b in blockers)
    return Conflict(
        f"task is blocked by: {names or str(task['open_blockers']) + ' open blockers'}",
        code="TASK_BLOCKED",
        blockers=blockers,
    )


async def _carry_out(
    conn: Conn,
    task: TaskRow,
    plan: Plan,
    *,
    caller: Caller,
    clean: dict[str, Any],
    client_event_id: str | None = None,
) -> TransitionOutcome:
    """Write an allowed plan and run the cascades it calls for."""
    now: datetime = plan.new["updated_at"]
    planned_rework: rework.ReworkPlan | None = None
    if plan.rework_from is not None:
        # Validated and locked before anything is written: a refusal leaves no trace. The
        # inspected task's own blockers in the branch count as open again.
        planned_rework = await rework.plan_rework(conn, task=task, upstream_id=plan.rework_from)
        replanned = plan_transition(
            task,
            plan.action,
            caller,
            clean,
            now=now,
            client_event_id=client_event_id,
            reopened_blockers=planned_rework.target_new_open,
        )
        assert isinstance(replanned, Plan)  # the same checks passed a moment ago
        plan = replanned
    if plan.submits_for_qc:
        await _submit_for_qc(conn, plan, note=clean.get("note"), now=now)
    history = plan.history
    ready_checked = plan.locks_deliverable and bool(task.get("deliverable_locked"))
    if ready_checked:
        # The deliverable was locked with the task: one statement writes the task and turns
        # the deliverable ready if this was its last open task.
        ready = await repository.write_task_marking_ready(
            conn, new=plan.new, history=history, now=now
        )
        cascades.publish_ready(ready, history=history, now=now)
    else:
        await repository.write_task(
            conn, new=plan.new, history=history, now=now, lock_deliverable=plan.locks_deliverable
        )
    if planned_rework is not None:
        await rework.apply_rework(
            conn,
            planned_rework,
            inspected=task,
            inspection_id=clean["inspection_id"],
            reason=clean.get("reason"),
            actor=caller.actor,
            history=history,
            now=now,
        )
    if not ready_checked:
        await _cascade(conn, plan, now)
    await repository.write_history(conn, history, now)
    return TransitionOutcome(status_code=200, body=plan.body, replayed=False)


async def _cascade(conn: Conn, plan: Plan, now: datetime) -> None:
    """What the task's resolution changing does to its dependents and deliverable."""
    new, history = plan.new, plan.history
    if plan.cascade is Cascade.RESOLVED:
        deliverables = {new["deliverable_id"]}
        if new.get("has_dependents", True):
            result = await cascades.resolve_blockers(
                conn, org_id=new["org_id"], blocker_ids=[new["id"]], history=history, now=now
            )
            deliverables.update(result.resolved_deliverables)
        await cascades.mark_ready_for_signoff(
            conn,
            org_id=new["org_id"],
            deliverable_ids=deliverables,
            history=history,
            now=now,
            locked=plan.locks_deliverable,
        )
    elif plan.cascade is Cascade.UNRESOLVED:
        await cascades.unresolve_blocker(
            conn, org_id=new["org_id"], blocker_id=new["id"], history=history, now=now
        )
        await cascades.reopen_deliverable(
            conn, org_id=new["org_id"], deliverable_id=new["deliverable_id"], now=now
        )


async def _submit_for_qc(conn: Conn, plan: Plan, *, note: str | None, now: datetime) -> None:
    """Work that needs QC is finished: ask for an inspection round (`task.submitted_for_qc`)."""
    new = plan.new
    round_, template_id, template_version = await repository.qc_round(
        conn, task_id=new["id"], project_id=new["project_id"]
    )
    checklist = new["qc_checklist"]
    if isinstance(checklist, str):
        checklist = loads(checklist)
    event = TaskSubmittedForQcV1(
        **task_event_fields(new, row_version=new["row_version"], now=now),
        title=new["title"],
        qc_checklist=checklist or [],
        round=round_,
        assignee_id=new["assigned_to"],
        note=note,
        template_id=template_id,
        template_version=template_version,
    )
    plan.history.publish(event, aggregate_type="task", aggregate_id=new["id"])
