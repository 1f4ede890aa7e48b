"""The transition table: every (state, action) pair, allowed or refused, and what derives."""

from __future__ import annotations

import uuid

import pytest

from task_svc.tasks import fsm, fsm_doc, fsm_payload
from task_svc.tasks.fsm import Action, Status

ASSIGNEE = uuid.uuid4()
OTHER = uuid.uuid4()

# (status, action) -> target status, for every allowed pair; every other pair is refused.
EXPECTED: dict[tuple[Status, Action], Status] = {
    **{
        (s, Action.ASSIGN): s
        for s in (Status.BLOCKED, Status.READY, Status.IN_PROGRESS, Status.ON_HOLD, Status.REWORK)
    },
    **{
        (s, Action.UNASSIGN): s
        for s in (Status.BLOCKED, Status.READY, Status.ON_HOLD, Status.REWORK)
    },
    (Status.READY, Action.START): Status.IN_PROGRESS,
    (Status.REWORK, Action.START): Status.IN_PROGRESS,
    (Status.IN_PROGRESS, Action.PAUSE): Status.ON_HOLD,
    (Status.ON_HOLD, Action.RESUME): Status.IN_PROGRESS,
    (Status.IN_PROGRESS, Action.COMPLETE): Status.DONE,
    (Status.IN_QC, Action.QC_ACCEPT): Status.DONE,
    (Status.IN_QC, Action.QC_REJECT): Status.REWORK,
    (Status.DONE, Action.REOPEN): Status.REWORK,
    **{
        (s, Action.CANCEL): Status.CANCELLED
        for s in (Status.BLOCKED, Status.READY, Status.ON_HOLD, Status.REWORK)
    },
    (Status.CANCELLED, Action.RESTORE): Status.READY,
    (Status.READY, Action.BLOCK): Status.BLOCKED,
    (Status.BLOCKED, Action.UNBLOCK): Status.READY,
    (Status.READY, Action.AUTO_COMPLETE): Status.DONE,
    # A QC reject naming an upstream task: that task is redone, the branch between re-blocked.
    (Status.DONE, Action.QC_REWORK): Status.REWORK,
    **{(s, Action.REBLOCK): Status.BLOCKED for s in (Status.DONE, Status.READY, Status.REWORK)},
}


@pytest.mark.parametrize("status", list(Status))
@pytest.mark.parametrize("action", list(Action))
def test_fsm_every_state_action_pair(status: Status, action: Action) -> None:
    allowed = status in fsm.TRANSITIONS[action].sources
    assert allowed == ((status, action) in EXPECTED)
    if allowed:
        got = fsm.target_status(action, status, qc_required=False, open_blockers=0)
        assert got == EXPECTED[(status, action)]


def test_fsm_conditional_targets() -> None:
    assert (
        fsm.target_status(Action.COMPLETE, Status.IN_PROGRESS, qc_required=True, open_blockers=0)
        == Status.IN_QC
    )
    assert (
        fsm.target_status(Action.RESTORE, Status.CANCELLED, qc_required=False, open_blockers=2)
        == Status.BLOCKED
    )


def test_fsm_system_actions_are_never_allowed_to_users() -> None:
    assert {
        Action.QC_ACCEPT,
        Action.QC_REJECT,
        Action.BLOCK,
        Action.UNBLOCK,
        Action.QC_REWORK,
        Action.REBLOCK,
    } <= fsm.SYSTEM_ACTIONS
    for action in fsm.SYSTEM_ACTIONS:
        assert not fsm.may_perform(
            action, roles=frozenset({"admin"}), user_id=ASSIGNEE, assigned_to=ASSIGNEE
        )


@pytest.mark.parametrize(
    ("roles", "user", "assigned", "expected"),
    [
        ({"operator"}, ASSIGNEE, ASSIGNEE, ["start"]),
        ({"operator"}, OTHER, ASSIGNEE, []),
        ({"operator"}, OTHER, None, ["start"]),
        ({"viewer"}, OTHER, None, []),
        ({"planner"}, OTHER, ASSIGNEE, ["assign", "unassign", "cancel"]),
        ({"admin"}, OTHER, ASSIGNEE, ["assign", "unassign", "start", "cancel"]),
    ],
)
def test_fsm_allowed_actions_from_ready(
    roles: set[str], user: uuid.UUID, assigned: uuid.UUID | None, expected: list[str]
) -> None:
    got = fsm.allowed_actions(
        "ready",
        roles=frozenset(roles),
        user_id=user,
        assigned_to=assigned,
        open_blockers=0,
        qc_required=False,
    )
    assert got == expected


def test_fsm_allowed_actions_hide_start_with_open_blockers_and_for_milestones() -> None:
    kw = {
        "roles": frozenset({"operator"}),
        "user_id": ASSIGNEE,
        "assigned_to": ASSIGNEE,
        "qc_required": False,
    }
    assert fsm.allowed_actions("rework", open_blockers=1, **kw) == []  # type: ignore[arg-type]
    assert fsm.allowed_actions("ready", open_blockers=0, is_milestone=True, **kw) == []  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("action", "payload", "message"),
    [
        (Action.ASSIGN, {}, "action 'assign' needs payload.assign_to (a user id)"),
        (
            Action.ASSIGN,
            {"assign_to": "nope"},
            "action 'assign' needs payload.assign_to (a user id), got 'nope'",
        ),
        (
            Action.PAUSE,
            {"reason": "  "},
            "action 'pause' needs payload.reason (a non-empty text of at most 2000 characters)",
        ),
        (Action.START, {"x": 1}, "action 'start' does not take payload.x (it takes no fields)"),
        (Action.CANCEL, [], "payload of action 'cancel' must be a JSON object"),
    ],
)
def test_fsm_payload_errors(action: Action, payload: object, message: str) -> None:
    with pytest.raises(fsm_payload.PayloadError) as err:
        fsm_payload.validate_payload(action, payload)
    assert str(err.value) == message


def test_fsm_qc_reject_takes_an_optional_upstream_task() -> None:
    inspection, upstream = uuid.uuid4(), uuid.uuid4()
    clean = fsm_payload.validate_payload(
        Action.QC_REJECT,
        {"inspection_id": str(inspection), "rework_from_task_id": str(upstream).upper()},
    )
    assert clean == {"inspection_id": str(inspection), "rework_from_task_id": str(upstream)}
    with pytest.raises(fsm_payload.PayloadError) as err:
        fsm_payload.validate_payload(
            Action.QC_REJECT, {"inspection_id": str(inspection), "rework_from_task_id": "x"}
        )
    assert err.value.field == "payload.rework_from_task_id"


def test_fsm_payload_normalised() -> None:
    uid = uuid.uuid4()
    assert fsm_payload.validate_payload(Action.ASSIGN, {"assign_to": str(uid).upper()}) == {
        "assign_to": str(uid)
    }
    assert fsm_payload.validate_payload(Action.COMPLETE, None) == {}
    assert fsm_payload.validate_payload(Action.PAUSE, {"reason": " parts "}) == {"reason": "parts"}


def test_fsm_doc_is_up_to_date() -> None:
    assert fsm_doc.DOC_PATH.read_text() == fsm_doc.render(), (
        "docs/fsm.md is stale: run `uv run python -m task_svc.tasks.fsm_doc`"
    )


def test_fsm_table_as_data_lists_every_action() -> None:
    data = fsm.table_as_data()
    assert [t["action"] for t in data["transitions"]] == [str(a) for a in Action]
    assert data["states"] == [str(s) for s in Status]
