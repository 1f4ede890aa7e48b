"""Why an action cannot be done now: every refusal the locked task row alone can decide, in the
order the API reports them (project status, row version, the FSM table, who may act, the
guards). Pure Python, no I/O; `plan.plan_transition` asks here first.
"""

from __future__ import annotations

from dataclasses import dataclass

from servicekit.conditional import ExpectedVersion, version_conflict
from servicekit.errors import AppError, Conflict, Forbidden
from task_svc.tasks.fsm import (
    TRANSITIONS,
    WORKER_ROLES,
    Action,
    Guard,
    Status,
    failed_guards,
    may_perform,
    user_actions_from,
)
from task_svc.tasks.history import TaskRow
from task_svc.tasks.transition_request import Caller

# Tasks change only while their project is active. QC decisions are the exception for a project
# on hold: the inspection already happened, so its result is recorded (the task moves to done or
# rework) and work resumes from there. In a cancelled or completed project nothing changes.
HELD_PROJECT_ACTIONS: frozenset[Action] = frozenset({Action.QC_ACCEPT, Action.QC_REJECT})


@dataclass(frozen=True)
class Refusal:
    """Why the action cannot be done now; nothing is written. `names_blockers`: the answer
    lists the task's open blockers (the service reads them before answering)."""

    error: AppError
    names_blockers: bool = False


def _not_allowed(detail: str, status: str, allowed: list[str]) -> Refusal:
    return Refusal(
        Conflict(detail, code="ACTION_NOT_ALLOWED", current_status=status, allowed_actions=allowed)
    )


def _project_refusal(task: TaskRow, act: Action) -> Refusal | None:
    """Refuse when the task's project is not active (see HELD_PROJECT_ACTIONS)."""
    project_status = task["project_status"]
    if project_status == "active":
        return None
    if project_status == "on_hold" and act in HELD_PROJECT_ACTIONS:
        return None
    hint = (
        "resume the project first"
        if project_status == "on_hold"
        else "a cancelled or completed project is final"
    )
    return Refusal(
        Conflict(
            f"project {task['project_id']} is {project_status}: its tasks cannot change ({hint})",
            code="PROJECT_NOT_ACTIVE",
            project_id=str(task["project_id"]),
            project_status=project_status,
        )
    )


def _blocked() -> Refusal:
    return Refusal(Conflict("task is blocked", code="TASK_BLOCKED"), names_blockers=True)


def _forbidden_detail(act: Action, task: TaskRow, caller: Caller) -> str:
    if task["assigned_to"] is not None and task["assigned_to"] == caller.user_id:
        return (
            f"your roles ({', '.join(sorted(caller.roles)) or 'none'}) only read tasks: working "
            f"on a task assigned to you needs one of the roles {', '.join(sorted(WORKER_ROLES))}"
        )
    if act is Action.START and task["assigned_to"] is not None:
        return (
            f"task {task['id']} is assigned to {task['assigned_to']}: only the assignee may "
            "start it (a planner can reassign it first)"
        )
    who = sorted(str(w) for w in TRANSITIONS[act].who)
    return f"action '{act}' may be done by: {', '.join(who)} (admin always may)"


def _guard_refusal(task: TaskRow, act: Action) -> Refusal | None:
    status = task["status"]
    failed = failed_guards(
        act, open_blockers=task["open_blockers"], is_milestone=task["is_milestone"]
    )
    if Guard.NOT_MILESTONE in failed:
        return _not_allowed(
            f"task {task['id']} is a milestone: it completes by itself when its blockers are "
            "resolved and cannot be started",
            status,
            [],
        )
    if Guard.NO_OPEN_BLOCKERS in failed:
        return _blocked()
    if Guard.IS_MILESTONE in failed:
        return _not_allowed("only milestones complete by themselves", status, [])
    if act is Action.REOPEN and task["is_milestone"]:
        # A reopened milestone could never finish (it cannot be started): reopen its work.
        return _not_allowed(
            f"task {task['id']} is a milestone: it has no work of its own to redo; reopen the "
            "tasks before it instead",
            status,
            [],
        )
    return None


def refusal_of(
    task: TaskRow,
    act: Action,
    caller: Caller,
    *,
    expected: ExpectedVersion | None = None,
    authorized: bool = False,
) -> Refusal | None:
    """Every refusal of `act` on the task, in the order the API reports them; None: allowed.

    `authorized`: the caller's right was decided elsewhere (an approver's sign-off rejection
    reopens tasks), so who may act and the project's status are not checked.
    """
    if not authorized and (refused := _project_refusal(task, act)) is not None:
        return refused
    status = task["status"]
    stale = version_conflict(
        expected,
        current_row_version=task["row_version"],
        current_status=status,
        what=f"task {task['id']}",
    )
    if stale is not None:  # 409 for a stale body version, 412 for a stale If-Match
        return Refusal(stale)
    if act is Action.START and status == Status.BLOCKED and not task["is_milestone"]:
        return _blocked()  # starting a blocked task is refused by naming what blocks it
    if status not in TRANSITIONS[act].sources:
        allowed = user_actions_from(status)
        return _not_allowed(
            f"action '{act}' is not allowed from status '{status}'; from '{status}' the "
            f"actions are: {', '.join(allowed) or 'none'}",
            status,
            allowed,
        )
    if not (caller.system or authorized) and not may_perform(
        act, roles=caller.roles, user_id=caller.user_id, assigned_to=task["assigned_to"]
    ):
        return Refusal(
            Forbidden(
                _forbidden_detail(act, task, caller), code="ACTION_FORBIDDEN", action=str(act)
            )
        )
    return _guard_refusal(task, act)
