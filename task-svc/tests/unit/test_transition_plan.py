"""The transition as a pure plan: every (state, action) pair and every (action, role) rule of
the table in tasks/fsm.py, planned without a database."""

from __future__ import annotations

import itertools
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from contracts.registry import dataschema_for
from servicekit.conditional import ExpectedVersion
from servicekit.errors import AppError
from servicekit.idempotency import CommandKey
from task_svc.tasks.fsm import (
    CLAIMANT_ROLES,
    RESOLVED,
    ROLES,
    TRANSITIONS,
    USER_ACTIONS,
    WORKER_ROLES,
    Action,
    Status,
    Who,
    target_status,
)
from task_svc.tasks.plan import Cascade, Plan, plan_transition
from task_svc.tasks.refusals import Refusal
from task_svc.tasks.transition_request import Caller, TransitionOutcome, parse_request, replayed

NOW = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
ME = uuid.UUID(int=1)
SOMEONE_ELSE = uuid.UUID(int=2)
ADMIN = Caller(actor=str(ME), roles=frozenset({"admin"}), user_id=ME)
SYSTEM = Caller(actor="service:qc-svc", roles=frozenset({"service"}), user_id=None, system=True)
# Payloads that fit each action (the table's example, or nothing for actions without payload).
PAYLOADS: dict[Action, dict[str, Any]] = {
    a: parse_request(a, dict(t.example) or None, SYSTEM if t.system else ADMIN)[1]
    for a, t in TRANSITIONS.items()
    if t.example or not any(f.required for f in t.payload)
}
PAYLOADS[Action.REBLOCK] = {"inspection_id": str(SOMEONE_ELSE), "upstream_task_id": str(ME)}


def task(status: Status, **changes: Any) -> dict[str, Any]:
    """A locked task row as the repository reads it."""
    row: dict[str, Any] = {
        "id": uuid.uuid4(),
        "org_id": uuid.uuid4(),
        "project_id": uuid.uuid4(),
        "deliverable_id": uuid.uuid4(),
        "node_key": "cut",
        "title": "Cut the panels",
        "status": str(status),
        "assigned_to": None,
        "assigned_at": None,
        "started_at": None,
        "completed_at": None,
        "qc_required": False,
        "qc_checklist": [],
        "is_milestone": False,
        "open_blockers": 1 if status == Status.BLOCKED else 0,
        "row_version": 4,
        "updated_at": NOW,
        "project_status": "active",
        "has_dependents": True,
    }
    row.update(changes)
    return row


def plan(row: dict[str, Any], action: Action, caller: Caller, **kw: Any) -> Plan | Refusal:
    return plan_transition(row, action, caller, PAYLOADS[action], now=NOW, **kw)


def error(result: Plan | Refusal) -> AppError:
    assert isinstance(result, Refusal), result
    return result.error


@pytest.mark.parametrize(("status", "action"), list(itertools.product(Status, Action)))
def test_plan_every_state_action_pair(status: Status, action: Action) -> None:
    t = TRANSITIONS[action]
    caller = SYSTEM if t.system else ADMIN
    milestone = action is Action.AUTO_COMPLETE
    row = task(status, is_milestone=milestone, open_blockers=0)
    result = plan(row, action, caller)
    if status not in t.sources:
        refused = error(result)
        # Starting a blocked task is refused by naming what blocks it.
        code = "TASK_BLOCKED" if (status, action) == (Status.BLOCKED, Action.START) else None
        assert (refused.code, refused.status) == (code or "ACTION_NOT_ALLOWED", 409)
        if code:
            return
        assert refused.extra["current_status"] == status
        return
    assert isinstance(result, Plan), error(result).detail
    to = target_status(action, status, qc_required=False, open_blockers=0)
    assert result.new["status"] == to
    assert result.new["row_version"] == row["row_version"] + 1
    assert (result.body["from_status"], result.body["to_status"]) == (status, to)
    assert result.body["task"]["row_version"] == result.new["row_version"]
    [event] = result.history.events
    assert (event.action, event.from_status, event.to_status) == (action, status, to)
    assert event.response is result.body and event.status_code == 200
    changed = [o for o in result.history.outbox if o.type == "task.status_changed"]
    assert len(changed) == (1 if to != status else 0)
    expected_cascade = (
        Cascade.RESOLVED
        if to in RESOLVED and status not in RESOLVED
        else Cascade.UNRESOLVED
        if status in RESOLVED and to not in RESOLVED
        else Cascade.NONE
    )
    assert result.cascade is expected_cascade


def _may(action: Action, role: str, assigned_to: uuid.UUID | None) -> bool:
    """Who may act, read from the table's `who` column."""
    who = TRANSITIONS[action].who
    return (
        role == "admin"
        or (Who.PLANNER in who and role == "planner")
        or (Who.ASSIGNEE in who and assigned_to == ME and role in WORKER_ROLES)
        or (Who.CLAIMANT in who and assigned_to is None and role in CLAIMANT_ROLES)
    )


@pytest.mark.parametrize(
    ("action", "role", "assigned_to"),
    list(itertools.product(USER_ACTIONS, ROLES, (ME, SOMEONE_ELSE, None))),
)
def test_plan_who_may_act(action: Action, role: str, assigned_to: uuid.UUID | None) -> None:
    row = task(TRANSITIONS[action].sources[0], assigned_to=assigned_to)
    caller = Caller(actor=str(ME), roles=frozenset({role}), user_id=ME)
    result = plan(row, action, caller)
    if _may(action, role, assigned_to):
        assert isinstance(result, Plan), error(result).detail
    else:
        assert (error(result).code, error(result).status) == ("ACTION_FORBIDDEN", 403)


@pytest.mark.parametrize("action", [a for a, t in TRANSITIONS.items() if t.system])
def test_plan_system_actions_pass_every_who_rule(action: Action) -> None:
    milestone = action is Action.AUTO_COMPLETE
    row = task(TRANSITIONS[action].sources[0], is_milestone=milestone, open_blockers=0)
    assert isinstance(plan(row, action, SYSTEM), Plan)


def test_plan_refuses_a_stale_row_version_with_the_current_one() -> None:
    refused = error(plan(task(Status.READY), Action.START, ADMIN, expected=ExpectedVersion(3)))
    assert (refused.code, refused.status) == ("VERSION_CONFLICT", 409)
    assert refused.extra == {"current_row_version": 4, "current_status": "ready"}


def test_plan_answers_a_stale_if_match_with_412_and_never_matches_a_weak_one() -> None:
    header = ExpectedVersion(3, from_header=True)
    refused = error(plan(task(Status.READY), Action.START, ADMIN, expected=header))
    assert (refused.code, refused.status) == ("VERSION_CONFLICT", 412)
    assert refused.extra == {"current_row_version": 4, "current_status": "ready"}
    weak = ExpectedVersion(4, from_header=True, weak=True)
    assert error(plan(task(Status.READY), Action.START, ADMIN, expected=weak)).status == 412
    current = ExpectedVersion(4, from_header=True)
    assert isinstance(plan(task(Status.READY), Action.START, ADMIN, expected=current), Plan)


@pytest.mark.parametrize(
    ("project_status", "action", "allowed"),
    [
        ("on_hold", Action.START, False),
        ("on_hold", Action.QC_ACCEPT, True),
        ("cancelled", Action.QC_ACCEPT, False),
        ("completed", Action.ASSIGN, False),
    ],
)
def test_plan_refuses_tasks_of_a_project_that_is_not_active(
    project_status: str, action: Action, allowed: bool
) -> None:
    row = task(TRANSITIONS[action].sources[0], project_status=project_status)
    result = plan(row, action, SYSTEM if TRANSITIONS[action].system else ADMIN)
    if allowed:
        assert isinstance(result, Plan)
    else:
        assert (error(result).code, error(result).status) == ("PROJECT_NOT_ACTIVE", 409)


def test_plan_start_of_a_blocked_task_names_its_blockers() -> None:
    result = plan(task(Status.BLOCKED, open_blockers=2), Action.START, ADMIN)
    assert isinstance(result, Refusal) and result.names_blockers
    assert (result.error.code, result.error.status) == ("TASK_BLOCKED", 409)


@pytest.mark.parametrize("action", [Action.START, Action.REOPEN])
def test_plan_milestones_are_never_worked_on(action: Action) -> None:
    row = task(TRANSITIONS[action].sources[0], is_milestone=True)
    refused = error(plan(row, action, ADMIN))
    assert (refused.code, refused.status) == ("ACTION_NOT_ALLOWED", 409)
    assert "milestone" in refused.detail


def test_plan_start_claims_an_unassigned_task_and_says_so() -> None:
    operator = Caller(actor=str(ME), roles=frozenset({"operator"}), user_id=ME)
    result = plan(task(Status.READY), Action.START, operator)
    assert isinstance(result, Plan)
    assert (result.new["assigned_to"], result.new["started_at"]) == (ME, NOW)
    assert result.history.events[0].payload == {"assigned_to": str(ME)}
    assert [o.type for o in result.history.outbox] == ["task.assigned", "task.status_changed"]


def test_plan_events_are_contract_rows_with_their_dataschema() -> None:
    result = plan(task(Status.IN_PROGRESS, assigned_to=ME), Action.COMPLETE, ADMIN)
    assert isinstance(result, Plan)
    [changed] = result.history.outbox
    assert changed.dataschema == dataschema_for("task.status_changed", 1)
    assert (changed.aggregate_type, changed.aggregate_id) == ("task", str(result.new["id"]))
    assert '"to_status":"done"' in changed.payload


def test_plan_restored_milestone_completes_at_once() -> None:
    row = task(Status.CANCELLED, is_milestone=True)
    result = plan(row, Action.RESTORE, ADMIN)
    assert isinstance(result, Plan)
    assert (result.new["status"], result.new["row_version"]) == ("done", 6)
    events = [(e.action, e.to_status, e.row_version) for e in result.history.events]
    assert events == [(Action.RESTORE, "ready", 5), (Action.AUTO_COMPLETE, "done", 6)]
    assert result.body["to_status"] == "ready" and result.body["task"]["status"] == "done"
    assert result.cascade is Cascade.NONE  # cancelled and done are both resolved


def test_plan_complete_with_qc_submits_for_qc() -> None:
    row = task(Status.IN_PROGRESS, assigned_to=ME, qc_required=True)
    result = plan(row, Action.COMPLETE, ADMIN)
    assert isinstance(result, Plan)
    assert (result.new["status"], result.submits_for_qc) == ("in_qc", True)


def test_plan_a_resolved_task_without_dependents_locks_its_deliverable_with_the_write() -> None:
    row = task(Status.IN_PROGRESS, assigned_to=ME, has_dependents=False)
    result = plan(row, Action.COMPLETE, ADMIN)
    assert isinstance(result, Plan) and result.locks_deliverable


def test_replay_answers_the_stored_result_or_refuses_another_request() -> None:
    prior = ("assign", {"assign_to": str(ME)}, {"task": {"row_version": 5}}, 200)
    payload = {"assign_to": str(ME)}
    key = CommandKey("c-1", "client_event_id")
    same = replayed(prior, key=key, act=Action.ASSIGN, clean=payload)
    assert same == TransitionOutcome(200, {"task": {"row_version": 5}}, replayed=True)
    with pytest.raises(AppError) as other:
        replayed(prior, key=key, act=Action.ASSIGN, clean={"assign_to": "x"})
    assert (other.value.code, other.value.status) == ("IDEMPOTENCY_KEY_REUSED", 409)
    assert other.value.extra == {"client_event_id": "c-1", "original_action": "assign"}
    with pytest.raises(AppError) as action:
        replayed(prior, key=key, act=Action.UNASSIGN, clean={})
    assert action.value.code == "IDEMPOTENCY_KEY_REUSED"


def test_replay_under_an_idempotency_key_names_the_header() -> None:
    prior = ("start", {}, {"task": {"row_version": 6}}, 200)
    key = CommandKey("k-1")
    assert replayed(prior, key=key, act=Action.START, clean={}).replayed
    with pytest.raises(AppError) as other:
        replayed(prior, key=key, act=Action.PAUSE, clean={})
    assert other.value.extra == {"idempotency_key": "k-1", "original_action": "start"}
    assert "Idempotency-Key 'k-1'" in other.value.detail
