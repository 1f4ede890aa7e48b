"""Critical path of the remaining work, on hand-checked graphs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from task_svc.graph.critical_path import WorkItem, critical_path

NOW = datetime(2026, 12, 1, 8, tzinfo=UTC)


def items(spec: dict[str, tuple[str, float | None]]) -> list[WorkItem[str]]:
    return [WorkItem(id=k, status=s, estimate_hours=h, order=k) for k, (s, h) in spec.items()]


def test_longest_branch_wins() -> None:
    #   a(2) -> b(5) -> d(1)
    #   a(2) -> c(3) -> d(1)
    work = items({"a": ("ready", 2), "b": ("blocked", 5), "c": ("blocked", 3), "d": ("blocked", 1)})
    blockers = {"b": ["a"], "c": ["a"], "d": ["b", "c"]}
    cp = critical_path(work, blockers, as_of=NOW)
    assert cp.path == ("a", "b", "d")
    assert cp.remaining_hours == 8
    assert cp.estimated_finish == NOW + timedelta(hours=8)


def test_resolved_work_is_skipped_and_frees_its_dependents() -> None:
    # a is done: b and c start now. c(4) -> e(4) beats b(6).
    work = items(
        {"a": ("done", 10), "b": ("ready", 6), "c": ("in_progress", 4), "e": ("blocked", 4)}
    )
    cp = critical_path(work, {"b": ["a"], "c": ["a"], "e": ["c"]}, as_of=NOW)
    assert cp.path == ("c", "e")
    assert cp.remaining_hours == 8


def test_nothing_left() -> None:
    cp = critical_path(items({"a": ("done", 1), "b": ("cancelled", 2)}), {"b": ["a"]}, as_of=NOW)
    assert cp.path == () and cp.estimated_finish is None and cp.remaining_hours == 0


def test_missing_estimates_count_as_zero_and_ties_break_by_order() -> None:
    cp = critical_path(items({"x": ("ready", None), "y": ("ready", None)}), {}, as_of=NOW)
    assert cp.path == ("x",)
    assert cp.estimated_finish == NOW


def test_cycle_is_an_error() -> None:
    with pytest.raises(ValueError, match="cycle"):
        critical_path(
            items({"a": ("ready", 1), "b": ("ready", 1)}), {"a": ["b"], "b": ["a"]}, as_of=NOW
        )


def test_a_closing_zero_hour_milestone_ends_the_path() -> None:
    work = items({"a": ("ready", 3), "b": ("blocked", 0)})
    cp = critical_path(work, {"b": ["a"]}, as_of=NOW)
    assert cp.path == ("a", "b")
