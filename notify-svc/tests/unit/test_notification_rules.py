"""Pure rules of notifications: which deadline rule a due date falls under, the address check,
the dedup key, the retry delays and the rendered mail (escaped HTML, one-line subject, link)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from notify_svc.notifications import render, rules
from notify_svc.notifications.reminders import classify
from notify_svc.notifications.sending import next_delay

NOW = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("due_in_minutes", "lead", "overdue", "expected"),
    [
        (30, 60, True, rules.DEADLINE_REMINDER),
        (60, 60, True, rules.DEADLINE_REMINDER),
        (61, 60, True, None),
        (90, 120, True, rules.DEADLINE_REMINDER),
        (0, 60, True, rules.DEADLINE_OVERDUE),
        (-5, 60, True, rules.DEADLINE_OVERDUE),
        (-5, 60, False, None),
    ],
)
def test_classify(due_in_minutes: int, lead: int, overdue: bool, expected: str | None) -> None:
    due = NOW + timedelta(minutes=due_in_minutes)
    assert classify(due, NOW, lead_minutes=lead, overdue_notices=overdue) == expected


@pytest.mark.parametrize(
    "value", ["ada@example.com", "a.b+tag@mail.example.co.uk", "o'neil@example.org"]
)
def test_good_addresses(value: str) -> None:
    assert rules.address_problem(value) is None


@pytest.mark.parametrize(
    "value", ["", "ada", "@example.com", "ada@", "ada@example", "a b@example.com",
              "ada@example.com\n", ".ada@example.com", "ada@-example.com", "a" * 65 + "@x.com"],
)  # fmt: skip
def test_bad_addresses(value: str) -> None:
    assert rules.address_problem(value) is not None


def test_the_dedup_key_holds_rule_subject_and_recipient() -> None:
    key = rules.dedup_key("task.assigned", "event:1", {"kind": "assignee", "user_id": "u1"})
    assert key == "task.assigned|event:1|assignee:u1"
    other = rules.dedup_key("task.assigned", "event:1", {"kind": "assignee", "user_id": "u2"})
    assert other != key


def test_retry_delays_follow_the_schedule_with_jitter_and_repeat_the_last() -> None:
    rng = random.Random(7)
    assert 24 <= next_delay([30, 300], 1, rng) <= 36
    assert 240 <= next_delay([30, 300], 2, rng) <= 360
    assert 240 <= next_delay([30, 300], 5, rng) <= 360


def test_render_escapes_html_keeps_subjects_on_one_line_and_links_the_task() -> None:
    task = {"task_id": "t-1", "title": "Weld <frame>\nnow", "project_name": "Order 7",
            "due_at": None}  # fmt: skip
    mail = render.render(
        rules.TASK_ASSIGNED, {"task": task, "event": {}}, base_url="https://bp.example.com/"
    )
    assert mail.subject == "Assigned to you: Weld <frame> now"
    assert "Weld &lt;frame&gt;" in mail.html and "<frame>" not in mail.html
    assert 'Task "Weld <frame>' in mail.text
    assert "https://bp.example.com/api/v1/tasks/t-1" in mail.text
    assert 'href="https://bp.example.com/api/v1/tasks/t-1"' in mail.html
