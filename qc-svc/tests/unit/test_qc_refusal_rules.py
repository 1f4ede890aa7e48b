"""A decision task-svc refused returns the inspection to its inspector: the pure rules."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from qc_svc.inspections import rules
from qc_svc.inspections.rules import Command, Decision, Status


@pytest.mark.parametrize(
    ("status", "refused", "applies"),
    [
        (Status.failed, Status.failed, True),
        (Status.passed, Status.passed, True),
        # A refusal of a decision that is no longer the current one.
        (Status.passed, Status.failed, False),
        (Status.failed, Status.passed, False),
        # Already back with the inspector, or never decided.
        (Status.claimed, Status.failed, False),
        (Status.pending, Status.passed, False),
        # Only decisions can be refused.
        (Status.claimed, Status.claimed, False),
    ],
)
def test_refusal_applies_only_to_the_current_decision(
    status: Status, refused: Status, applies: bool
) -> None:
    assert rules.refusal_applies(status, refused) is applies


@pytest.mark.parametrize("status", [Status.passed, Status.failed])
def test_a_refused_decision_reopens_the_inspection_for_every_claimed_command(
    status: Status,
) -> None:
    reopened = rules.status_after_refusal(status)
    assert reopened is Status.claimed
    assert rules.allowed_commands(reopened) == [
        Command.record_results,
        Command.add_defect,
        Command.remove_defect,
        Command.decide,
    ]
    assert rules.next_status(Command.decide, reopened, Decision.reject) is Status.failed
    assert rules.next_status(Command.decide, reopened, Decision.accept) is Status.passed


@pytest.mark.parametrize("status", [Status.pending, Status.claimed])
def test_an_undecided_inspection_has_nothing_to_refuse(status: Status) -> None:
    with pytest.raises(ValueError, match="no decision"):
        rules.status_after_refusal(status)


# Steps of an inspection's life: an inspector's command, or task-svc refusing a decision.
STEPS = st.lists(
    st.one_of(
        st.sampled_from([Command.claim, Command.record_results, Command.add_defect]),
        st.sampled_from([Decision.accept, Decision.reject]),
        st.sampled_from([Status.passed, Status.failed]),  # a refusal of that decision
    ),
    max_size=30,
)


@given(STEPS)
def test_every_refusal_leads_back_to_a_decision(steps: list[object]) -> None:
    """Whatever happens, a decided inspection is either final or refused back to claimed, and
    from claimed the inspector can always decide again: a refusal is never a dead end."""
    status = Status.pending
    decisions = refusals = 0
    for step in steps:
        if isinstance(step, Decision):
            if rules.is_allowed(Command.decide, status):
                status = rules.next_status(Command.decide, status, step)
                decisions += 1
        elif isinstance(step, Command):
            if rules.is_allowed(step, status):
                status = rules.next_status(step, status)
        elif rules.refusal_applies(status, step):  # a refusal of the decision `step`
            status = rules.status_after_refusal(status)
            refusals += 1
            assert rules.is_allowed(Command.decide, status)
    assert refusals <= decisions
    # Decided now exactly when more decisions were made than refused.
    assert (status in rules.DECIDED) is (decisions > refusals)
