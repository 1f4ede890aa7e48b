"""Every problem code the transition service can raise has its own outcome label on /metrics."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from task_svc.tasks import (
    cascades,
    metrics,
    plan,
    refusals,
    rework,
    transition_request,
    transitions,
)

# `code="X"` keyword arguments and the first argument of rework's `_refuse("X", ...)`.
CODE = re.compile(r'code="([A-Z_]+)"|_refuse\(\s*"([A-Z_]+)"')


def raised_codes() -> set[str]:
    found: set[str] = set()
    for module in (transition_request, plan, refusals, transitions, cascades, rework):
        source = Path(str(module.__file__)).read_text(encoding="utf-8")
        found |= {a or b for a, b in CODE.findall(source)}
    return found


def test_every_refusal_code_of_the_transition_service_is_mapped() -> None:
    codes = raised_codes()
    assert "REWORK_TASK_NOT_UPSTREAM" in codes  # the scan sees rework's refusals
    assert "ACTION_NOT_ALLOWED" in codes  # and the plan's (in refusals.py)
    assert sorted(codes - metrics.OUTCOME_OF_CODE.keys()) == []


@pytest.mark.parametrize(
    "code",
    [
        "REWORK_TASK_NOT_FOUND",
        "REWORK_TASK_OTHER_DELIVERABLE",
        "REWORK_TASK_NOT_UPSTREAM",
        "REWORK_TASK_NOT_DONE",
        "REWORK_TASK_IS_MILESTONE",
    ],
)
def test_rework_refusals_have_their_own_outcome(code: str) -> None:
    assert metrics.OUTCOME_OF_CODE[code] == "rework_refused"
    assert "rework_refused" in metrics.OUTCOMES
