"""Which events e-mail whom: the event types a rule can name, their default recipients, and the
e-mail address check. Pure rules, no I/O.

A recipient is a role of the event's task (`assignee`, `planner`: the user who started the
project), the org's `approvers` address (settings), or a fixed `address`.
"""

from __future__ import annotations

import re
from typing import Any

TASK_ASSIGNED = "task.assigned"
QC_FAILED = "qc.inspection.failed"
READY_FOR_SIGNOFF = "deliverable.ready_for_signoff"
DEADLINE_REMINDER = "deadline.reminder"
DEADLINE_OVERDUE = "deadline.overdue"

# Event type -> (what it is, its default recipients).
CATALOGUE: dict[str, tuple[str, list[dict[str, Any]]]] = {
    TASK_ASSIGNED: ("a task was assigned to someone", [{"kind": "assignee"}]),
    QC_FAILED: ("QC rejected a task's work (it goes to rework)", [{"kind": "assignee"}]),
    READY_FOR_SIGNOFF: (
        "a deliverable waits for sign-off",
        [{"kind": "approvers"}],
    ),
    DEADLINE_REMINDER: (
        "an open task is due within the org's reminder lead time",
        [{"kind": "assignee"}],
    ),
    DEADLINE_OVERDUE: ("an open task passed its due date", [{"kind": "assignee"}]),
}
RECIPIENT_KINDS = ("assignee", "planner", "approvers", "address")
# Recipients that are a role of the event's task, resolved when the mail is sent.
TASK_ROLES = ("assignee", "planner")

_ADDRESS = re.compile(
    r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@"
    r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}"
    r"[A-Za-z0-9])?)+$"
)


def address_problem(value: str) -> str | None:
    """Why `value` is not an e-mail address we can send to, None when it is one."""
    if len(value) > 254:
        return "an e-mail address has at most 254 characters"
    if any(c in value for c in "\r\n\x00 <>,;"):
        return "an e-mail address has no spaces, line breaks, <>, commas or semicolons"
    local, at, _domain = value.rpartition("@")
    if not at or not local:
        return f"{value!r} is not an e-mail address: it needs a name, '@' and a domain"
    if len(local) > 64:
        return "the part before '@' has at most 64 characters"
    if local.startswith(".") or local.endswith(".") or ".." in local:
        return "the part before '@' cannot start or end with a dot or hold two dots in a row"
    if not _ADDRESS.match(value):
        return f"{value!r} is not an e-mail address: the domain must look like example.com"
    return None


def check_address(value: str) -> str:
    """For pydantic validators: the address, or ValueError saying what is wrong."""
    problem = address_problem(value)
    if problem is not None:
        raise ValueError(problem)
    return value


def defaults() -> dict[str, dict[str, Any]]:
    """Every rule as it is when an org changed nothing."""
    return {
        event_type: {"event_type": event_type, "enabled": True, "recipients": recipients}
        for event_type, (_, recipients) in CATALOGUE.items()
    }


def dedup_key(rule: str, subject: str, recipient: dict[str, Any]) -> str:
    """One notification per (rule, what it is about, recipient)."""
    who = recipient.get("user_id") or recipient.get("address") or ""
    return f"{rule}|{subject}|{recipient['kind']}:{who}"
