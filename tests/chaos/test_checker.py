"""The checker's replay of a task history, on histories made by hand: it accepts what the
transition service writes and names the first step that does not add up."""

from __future__ import annotations

import uuid
from typing import Any

from .checker import replay_problem

OPERATOR = str(uuid.uuid4())


def event(action: str, frm: str | None, to: str, version: int, **payload: Any) -> dict[str, Any]:
    return {
        "action": action,
        "from_status": frm,
        "to_status": to,
        "row_version": version,
        "payload": payload,
        "client_event_id": None,
    }


HISTORY = [
    event("create", None, "blocked", 1),
    event("assign", "blocked", "blocked", 2, assign_to=OPERATOR),
    event("unblock", "blocked", "ready", 3),
    event("start", "ready", "in_progress", 4),
    event("complete", "in_progress", "in_qc", 5),
    event("qc_reject", "in_qc", "rework", 6, inspection_id="i1"),
    event("blocker_reopened", "rework", "rework", 6, blocker_id="b1"),
    event("start", "rework", "in_progress", 7),
    event("complete", "in_progress", "in_qc", 8),
    event("qc_accept", "in_qc", "done", 9, inspection_id="i2"),
]


def row(status: str = "done", assigned: str | None = OPERATOR, version: int = 9) -> dict[str, Any]:
    return {"status": status, "assigned_to": assigned, "row_version": version}


def test_a_history_written_by_the_transitions_replays_to_its_row() -> None:
    assert replay_problem(HISTORY, row()) is None


def test_start_on_an_unassigned_task_assigns_the_starter() -> None:
    history = [
        event("create", None, "ready", 1),
        event("start", "ready", "in_progress", 2, assigned_to=OPERATOR),
    ]
    assert replay_problem(history, row("in_progress", OPERATOR, 2)) is None
    assert "replay gives" in (replay_problem(history, row("in_progress", None, 2)) or "")


def test_a_row_ahead_of_its_history_is_named() -> None:
    problem = replay_problem(HISTORY, row(version=10))
    assert problem is not None and "v9" in problem and "v10" in problem


def test_a_missing_entry_breaks_the_chain() -> None:
    gap = HISTORY[:3] + HISTORY[4:]  # "start" lost
    assert "goes from in_progress, the task was ready" in (replay_problem(gap, row()) or "")


def test_an_entry_written_twice_is_named() -> None:
    doubled = [*HISTORY[:5], HISTORY[4], *HISTORY[5:]]
    assert replay_problem(doubled, row()) is not None


def test_a_history_must_start_with_the_creation() -> None:
    assert "starts with" in (replay_problem(HISTORY[1:], row()) or "")
    assert replay_problem([], row()) == "no history"


def test_a_webhook_is_verified_as_of_its_arrival_with_the_package_signature() -> None:
    import time

    from notify_svc.receiver import Received
    from notify_svc.webhooks.signing import signature_header

    from .checker import signature_problem

    secret = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    body, msg_id, sent = b'{"type": "task.assigned"}', str(uuid.uuid4()), int(time.time()) - 3600

    def received(secrets: list[str], at: float) -> Received:
        headers = {
            "webhook-id": msg_id,
            "webhook-timestamp": str(sent),
            "webhook-signature": signature_header(secrets, msg_id, sent, body),
        }
        return Received("/hook", headers, body, at)

    # An hour old (the package's own verify() would say "too old" now): judged at its arrival.
    assert signature_problem(secret, received([secret], sent + 1)) is None
    other = "whsec_" + "c2VjcmV0LW9mLWFub3RoZXItZW5kcG9pbnQ="
    assert signature_problem(secret, received([other, secret], sent + 1)) is None  # rotation
    assert signature_problem(secret, received([other], sent + 1)) == (
        "no signature matches the endpoint's secret"
    )
    assert "from the arrival" in str(signature_problem(secret, received([secret], sent + 400)))
