"""Who may do what: every (role, user action, situation) cell of the role table in docs/fsm.md.

The expected table is written here by hand, from the design, so a change to the rules in fsm.py
that the design did not ask for fails a cell.
"""

from __future__ import annotations

import uuid

import pytest

from task_svc.tasks import fsm
from task_svc.tasks.fsm import Action

ME, OTHER = uuid.UUID(int=11), uuid.UUID(int=12)

# Situations: the task is assigned to the caller, to someone else, or to nobody.
OWN, OTHERS, UNASSIGNED = "own", "others", "unassigned"
ALL = {OWN, OTHERS, UNASSIGNED}
NONE: set[str] = set()

EXPECTED: dict[Action, dict[str, set[str]]] = {
    Action.ASSIGN: {"admin": ALL, "planner": ALL},
    Action.UNASSIGN: {"admin": ALL, "planner": ALL},
    Action.START: {
        "admin": ALL,
        "planner": {OWN, UNASSIGNED},
        "operator": {OWN, UNASSIGNED},
        "inspector": {OWN},
    },
    Action.PAUSE: {"admin": ALL, "planner": ALL, "operator": {OWN}, "inspector": {OWN}},
    Action.RESUME: {"admin": ALL, "planner": ALL, "operator": {OWN}, "inspector": {OWN}},
    Action.COMPLETE: {
        "admin": ALL,
        "planner": {OWN},
        "operator": {OWN},
        "inspector": {OWN},
    },
    Action.REOPEN: {"admin": ALL, "planner": ALL},
    Action.CANCEL: {"admin": ALL, "planner": ALL},
    Action.RESTORE: {"admin": ALL, "planner": ALL},
}

CELLS = [
    (action, role, situation)
    for action in fsm.USER_ACTIONS
    for role in fsm.ROLES
    for situation in (OWN, OTHERS, UNASSIGNED)
]


def test_fsm_roles_the_table_covers_every_user_action() -> None:
    assert set(EXPECTED) == set(fsm.USER_ACTIONS)


@pytest.mark.parametrize(("action", "role", "situation"), CELLS)
def test_fsm_roles_every_cell(action: Action, role: str, situation: str) -> None:
    assigned = {OWN: ME, OTHERS: OTHER, UNASSIGNED: None}[situation]
    allowed = fsm.may_perform(action, roles=frozenset({role}), user_id=ME, assigned_to=assigned)
    assert allowed == (situation in EXPECTED[action].get(role, NONE))


@pytest.mark.parametrize("role", ["viewer", "approver"])
def test_fsm_roles_reading_roles_change_nothing_even_when_assigned(role: str) -> None:
    for action in fsm.TRANSITIONS:
        for assigned in (ME, OTHER, None):
            assert not fsm.may_perform(
                action, roles=frozenset({role}), user_id=ME, assigned_to=assigned
            )
    for status in fsm.Status:
        assert (
            fsm.allowed_actions(
                status,
                roles=frozenset({role}),
                user_id=ME,
                assigned_to=ME,
                open_blockers=0,
                qc_required=False,
            )
            == []
        )


def test_fsm_roles_a_viewer_with_a_working_role_works_as_that_role() -> None:
    roles = frozenset({"viewer", "operator"})
    assert fsm.may_perform(Action.COMPLETE, roles=roles, user_id=ME, assigned_to=ME)
