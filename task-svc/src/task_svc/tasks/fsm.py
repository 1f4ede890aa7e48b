"""The task state machine as data: states, actions, guards, payloads and who may act.

This module is the single source of the transition table of the design (section 3). Request
validation, `allowed_actions` in task reads, `GET /api/v1/tasks/fsm`, the generated `docs/fsm.md`
and the tests all derive from `TRANSITIONS`. Pure Python, no I/O.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Status(StrEnum):
    BLOCKED = "blocked"
    READY = "ready"
    IN_PROGRESS = "in_progress"
    ON_HOLD = "on_hold"
    IN_QC = "in_qc"
    REWORK = "rework"
    DONE = "done"
    CANCELLED = "cancelled"


class Action(StrEnum):
    ASSIGN = "assign"
    UNASSIGN = "unassign"
    START = "start"
    PAUSE = "pause"
    RESUME = "resume"
    COMPLETE = "complete"
    QC_ACCEPT = "qc_accept"
    QC_REJECT = "qc_reject"
    REOPEN = "reopen"
    CANCEL = "cancel"
    RESTORE = "restore"
    BLOCK = "block"
    UNBLOCK = "unblock"
    AUTO_COMPLETE = "auto_complete"
    QC_REWORK = "qc_rework"
    REBLOCK = "reblock"


class Who(StrEnum):
    """Who may perform an action. A user passes when any entry of the action's `who` matches."""

    PLANNER = "planner"  # role planner (admin always passes)
    ASSIGNEE = "assignee"  # the user the task is assigned to
    CLAIMANT = "claimant"  # a worker taking an unassigned task (becomes its assignee)
    SYSTEM = "system"  # the service itself or another service; never a user


class Guard(StrEnum):
    """Conditions on the task, beyond its status, that an action needs."""

    NO_OPEN_BLOCKERS = "no_open_blockers"
    NOT_MILESTONE = "not_milestone"
    IS_MILESTONE = "is_milestone"


class EventKind(StrEnum):
    """Event actions in `task_events` that are not transitions of the table."""

    CREATE = "create"
    BLOCKER_REOPENED = "blocker_reopened"


RESOLVED: frozenset[Status] = frozenset({Status.DONE, Status.CANCELLED})

# Roles that do work on tasks: only they may act as a task's assignee or claim (start) an
# unassigned task. Being named as assignee is not enough: a viewer or an approver who was
# assigned a task still only reads it. Admin always passes.
WORKER_ROLES: frozenset[str] = frozenset({"operator", "planner", "inspector"})
CLAIMANT_ROLES: frozenset[str] = frozenset({"operator", "planner"})
ADMIN_ROLE = "admin"
ROLES: tuple[str, ...] = ("admin", "planner", "operator", "inspector", "approver", "viewer")

MAX_TEXT = 2000
MAX_DEFECTS = 200


@dataclass(frozen=True)
class PayloadField:
    """One field of an action's payload. kind: 'uuid', 'text' or 'list'."""

    name: str
    kind: str
    required: bool
    description: str


@dataclass(frozen=True)
class Transition:
    """One row of the table. `to=None` keeps the status (assign, unassign).

    `to_alt`/`alt_when` give the conditional target: complete goes to in_qc when qc_required,
    restore goes to blocked when the task has open blockers.
    """

    action: Action
    sources: tuple[Status, ...]
    to: Status | None
    who: frozenset[Who]
    payload: tuple[PayloadField, ...] = ()
    guards: tuple[Guard, ...] = ()
    to_alt: Status | None = None
    alt_when: str | None = None  # 'qc_required' | 'open_blockers'
    summary: str = ""
    example: Mapping[str, Any] = field(default_factory=dict)

    @property
    def system(self) -> bool:
        return Who.SYSTEM in self.who


_REASON = PayloadField("reason", "text", True, "why (free text, 1-2000 characters)")

TRANSITIONS: dict[Action, Transition] = {
    t.action: t
    for t in (
        Transition(
            Action.ASSIGN,
            (Status.BLOCKED, Status.READY, Status.IN_PROGRESS, Status.ON_HOLD, Status.REWORK),
            None,
            frozenset({Who.PLANNER}),
            payload=(PayloadField("assign_to", "uuid", True, "the user id to assign the task to"),),
            summary="Assign the task to a user (status unchanged).",
            example={"assign_to": "7d1f3c8e-2a4b-4c6d-8e9f-0a1b2c3d4e5f"},
        ),
        Transition(
            Action.UNASSIGN,
            (Status.BLOCKED, Status.READY, Status.ON_HOLD, Status.REWORK),
            None,
            frozenset({Who.PLANNER}),
            summary="Remove the assignee (status unchanged).",
        ),
        Transition(
            Action.START,
            (Status.READY, Status.REWORK),
            Status.IN_PROGRESS,
            frozenset({Who.ASSIGNEE, Who.CLAIMANT}),
            guards=(Guard.NO_OPEN_BLOCKERS, Guard.NOT_MILESTONE),
            summary="Start work; an unassigned task is assigned to whoever starts it.",
        ),
        Transition(
            Action.PAUSE,
            (Status.IN_PROGRESS,),
            Status.ON_HOLD,
            frozenset({Who.ASSIGNEE, Who.PLANNER}),
            payload=(_REASON,),
            summary="Put work on hold.",
            example={"reason": "waiting for parts from the supplier"},
        ),
        Transition(
            Action.RESUME,
            (Status.ON_HOLD,),
            Status.IN_PROGRESS,
            frozenset({Who.ASSIGNEE, Who.PLANNER}),
            summary="Resume work that was on hold.",
        ),
        Transition(
            Action.COMPLETE,
            (Status.IN_PROGRESS,),
            Status.DONE,
            frozenset({Who.ASSIGNEE}),
            payload=(PayloadField("note", "text", False, "an optional note on the work done"),),
            to_alt=Status.IN_QC,
            alt_when="qc_required",
            summary="Finish work: to in_qc when the task needs QC, else done.",
            example={"note": "torque checked on all bolts"},
        ),
        Transition(
            Action.QC_ACCEPT,
            (Status.IN_QC,),
            Status.DONE,
            frozenset({Who.SYSTEM}),
            payload=(PayloadField("inspection_id", "uuid", True, "the QC inspection"),),
            summary="QC passed (from qc-svc).",
            example={"inspection_id": "3b2a1c0d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"},
        ),
        Transition(
            Action.QC_REJECT,
            (Status.IN_QC,),
            Status.REWORK,
            frozenset({Who.SYSTEM}),
            payload=(
                PayloadField("inspection_id", "uuid", True, "the QC inspection"),
                PayloadField("reason", "text", False, "why the work was rejected"),
                PayloadField("defects", "list", False, "the defects found (code, severity, ...)"),
                PayloadField(
                    "rework_from_task_id",
                    "uuid",
                    False,
                    "an upstream task of the same deliverable whose work caused the defect: it "
                    "is reopened (qc_rework) and the tasks between are re-blocked (reblock)",
                ),
            ),
            summary="QC failed: back to rework (from qc-svc).",
            example={
                "inspection_id": "3b2a1c0d-4e5f-4a6b-8c7d-9e0f1a2b3c4d",
                "reason": "weld porosity",
                "defects": [{"code": "WELD-POR", "severity": "major"}],
            },
        ),
        Transition(
            Action.REOPEN,
            (Status.DONE,),
            Status.REWORK,
            frozenset({Who.PLANNER}),
            payload=(_REASON,),
            summary="Reopen finished work for rework.",
            example={"reason": "customer reported a scratch on the panel"},
        ),
        Transition(
            Action.CANCEL,
            (Status.BLOCKED, Status.READY, Status.ON_HOLD, Status.REWORK),
            Status.CANCELLED,
            frozenset({Who.PLANNER}),
            payload=(_REASON,),
            summary="Cancel the task (it counts as resolved for its dependents).",
            example={"reason": "option dropped from the order"},
        ),
        Transition(
            Action.RESTORE,
            (Status.CANCELLED,),
            Status.READY,
            frozenset({Who.PLANNER}),
            payload=(_REASON,),
            to_alt=Status.BLOCKED,
            alt_when="open_blockers",
            summary="Restore a cancelled task: to blocked when it has open blockers, else ready.",
            example={"reason": "option added back to the order"},
        ),
        Transition(
            Action.BLOCK,
            (Status.READY,),
            Status.BLOCKED,
            frozenset({Who.SYSTEM}),
            summary="A blocker was reopened or restored (dependency counters).",
        ),
        Transition(
            Action.UNBLOCK,
            (Status.BLOCKED,),
            Status.READY,
            frozenset({Who.SYSTEM}),
            guards=(Guard.NO_OPEN_BLOCKERS,),
            summary="The last open blocker was resolved (dependency counters).",
        ),
        Transition(
            Action.AUTO_COMPLETE,
            (Status.READY,),
            Status.DONE,
            frozenset({Who.SYSTEM}),
            guards=(Guard.IS_MILESTONE, Guard.NO_OPEN_BLOCKERS),
            summary="A milestone completes by itself once unblocked.",
        ),
        Transition(
            Action.QC_REWORK,
            (Status.DONE,),
            Status.REWORK,
            frozenset({Who.SYSTEM}),
            payload=(
                PayloadField("inspection_id", "uuid", True, "the QC inspection that failed"),
                PayloadField("inspected_task_id", "uuid", True, "the task QC rejected"),
                PayloadField("reason", "text", False, "why the work was rejected"),
            ),
            guards=(Guard.NOT_MILESTONE,),
            summary="A QC reject named this upstream task as the cause: its work is redone.",
            example={
                "inspection_id": "3b2a1c0d-4e5f-4a6b-8c7d-9e0f1a2b3c4d",
                "inspected_task_id": "5d4c3b2a-1f0e-4d9c-8b7a-6f5e4d3c2b1a",
                "reason": "weld porosity caused by the cut",
            },
        ),
        Transition(
            Action.REBLOCK,
            (Status.DONE, Status.READY, Status.REWORK),
            Status.BLOCKED,
            frozenset({Who.SYSTEM}),
            payload=(
                PayloadField("inspection_id", "uuid", True, "the QC inspection that failed"),
                PayloadField("upstream_task_id", "uuid", True, "the task reopened by qc_rework"),
            ),
            summary=(
                "The task lies between a task reopened by qc_rework and the inspected task: "
                "it waits for the redone work, then is redone itself."
            ),
        ),
    )
}

SYSTEM_ACTIONS: frozenset[Action] = frozenset(a for a, t in TRANSITIONS.items() if t.system)
USER_ACTIONS: tuple[Action, ...] = tuple(a for a in TRANSITIONS if a not in SYSTEM_ACTIONS)


# ---------------------------------------------------------------------------------------------
# Decisions derived from the table


def target_status(
    action: Action, status: Status, *, qc_required: bool, open_blockers: int
) -> Status:
    """The status after `action` from `status` (unchanged when the row keeps it)."""
    t = TRANSITIONS[action]
    if t.to is None:
        return status
    if t.alt_when == "qc_required" and qc_required:
        assert t.to_alt is not None
        return t.to_alt
    if t.alt_when == "open_blockers" and open_blockers > 0:
        assert t.to_alt is not None
        return t.to_alt
    return t.to


def failed_guards(action: Action, *, open_blockers: int, is_milestone: bool = False) -> list[Guard]:
    """The guards of `action` the task does not meet (empty: all pass)."""
    failing = {
        Guard.NO_OPEN_BLOCKERS: open_blockers > 0,
        Guard.NOT_MILESTONE: is_milestone,
        Guard.IS_MILESTONE: not is_milestone,
    }
    out = [g for g in TRANSITIONS[action].guards if failing[g]]
    return out


def actions_from(status: Status | str) -> list[Action]:
    """Every action (user or system) the table allows from `status`, in table order."""
    return [a for a, t in TRANSITIONS.items() if status in t.sources]


def user_actions_from(status: Status | str) -> list[str]:
    return [str(a) for a in actions_from(status) if a not in SYSTEM_ACTIONS]


def may_perform(
    action: Action,
    *,
    roles: frozenset[str],
    user_id: uuid.UUID | None,
    assigned_to: uuid.UUID | None,
) -> bool:
    """Whether a user with `roles` may do `action` on a task assigned to `assigned_to`.

    System actions are never allowed to users. Admin passes every user rule. The assignee rule
    needs a working role too (WORKER_ROLES): a viewer never changes anything.
    """
    t = TRANSITIONS[action]
    if t.system:
        return False
    if ADMIN_ROLE in roles:
        return True
    if Who.PLANNER in t.who and "planner" in roles:
        return True
    is_assignee = user_id is not None and assigned_to is not None and user_id == assigned_to
    if Who.ASSIGNEE in t.who and is_assignee and roles & WORKER_ROLES:
        return True
    return Who.CLAIMANT in t.who and assigned_to is None and bool(roles & CLAIMANT_ROLES)


def role_rule(action: Action, role: str) -> str:
    """What a user holding only `role` may do with `action`, in words for the docs:
    'always', 'as assignee', 'as assignee or on an unassigned task', or 'never'."""
    roles = frozenset({role})
    me, other = uuid.UUID(int=1), uuid.UUID(int=2)
    own = may_perform(action, roles=roles, user_id=me, assigned_to=me)
    others = may_perform(action, roles=roles, user_id=me, assigned_to=other)
    unassigned = may_perform(action, roles=roles, user_id=me, assigned_to=None)
    if own and others and unassigned:
        return "always"
    if own and unassigned:
        return "as assignee or on an unassigned task"
    if own:
        return "as assignee"
    return "never"


def allowed_actions(
    status: str,
    *,
    roles: frozenset[str],
    user_id: uuid.UUID | None,
    assigned_to: uuid.UUID | None,
    open_blockers: int,
    qc_required: bool,
    is_milestone: bool = False,
) -> list[str]:
    """User-callable actions the caller may do now on a task in this state (table order)."""
    del qc_required  # no user action is refused on it; kept for a stable signature
    out: list[str] = []
    for action in actions_from(status):
        if action in SYSTEM_ACTIONS:
            continue
        if failed_guards(action, open_blockers=open_blockers, is_milestone=is_milestone):
            continue
        if may_perform(action, roles=roles, user_id=user_id, assigned_to=assigned_to):
            out.append(str(action))
    return out


def table_as_data() -> dict[str, Any]:
    """The machine-readable table served by `GET /api/v1/tasks/fsm`."""
    return {
        "states": [str(s) for s in Status],
        "resolved_states": sorted(str(s) for s in RESOLVED),
        "system_actions": sorted(str(a) for a in SYSTEM_ACTIONS),
        "transitions": [
            {
                "action": str(t.action),
                "from": [str(s) for s in t.sources],
                "to": str(t.to) if t.to is not None else None,
                "to_alternative": str(t.to_alt) if t.to_alt is not None else None,
                "alternative_when": t.alt_when,
                "who": sorted(str(w) for w in t.who),
                "guards": [str(g) for g in t.guards],
                "payload": [
                    {
                        "name": f.name,
                        "kind": f.kind,
                        "required": f.required,
                        "description": f.description,
                    }
                    for f in t.payload
                ],
                "summary": t.summary,
                "example_payload": dict(t.example),
            }
            for t in TRANSITIONS.values()
        ],
    }
