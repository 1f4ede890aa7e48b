"""Generates docs/fsm.md from the transition table: `python -m task_svc.tasks.fsm_doc [--check]`."""

from __future__ import annotations

import sys
from pathlib import Path

from task_svc import SERVICE_DIR
from task_svc.tasks.fsm import ROLES, SYSTEM_ACTIONS, TRANSITIONS, USER_ACTIONS, Status, role_rule

DOC_PATH = SERVICE_DIR.parent / "docs" / "fsm.md"


# Every refusal of a transition: (status, codes, when). 422 only for a request invalid in
# itself; 409 when the task's (or its project's, deliverable's) state forbids it; 412 for a
# stale If-Match.
REFUSALS: tuple[tuple[int, str, str], ...] = (
    (
        409,
        "`VERSION_CONFLICT`",
        "`expected_row_version` is stale; carries `current_row_version` and `current_status`",
    ),
    (
        412,
        "`VERSION_CONFLICT`",
        "the `If-Match` row version is stale (or a weak `W/` tag); the same fields",
    ),
    (428, "`ROW_VERSION_REQUIRED`", "neither `expected_row_version` nor `If-Match` was sent"),
    (
        400,
        "`IF_MATCH_INVALID`, `IF_MATCH_MISMATCH`",
        "`If-Match` is not a quoted row version, or disagrees with `expected_row_version`",
    ),
    (
        400,
        "`IDEMPOTENCY_KEY_INVALID`, `IDEMPOTENCY_KEY_MISMATCH`",
        "the key is empty or over 200 characters, or `Idempotency-Key` and `client_event_id` "
        "disagree",
    ),
    (
        409,
        "`ACTION_NOT_ALLOWED`",
        "the task's status does not allow the action (or the task is a milestone); carries "
        "`current_status` and `allowed_actions`",
    ),
    (409, "`TASK_BLOCKED`", "the task has open blockers; `blockers` names them"),
    (409, "`PROJECT_NOT_ACTIVE`", "the task's project is on hold, cancelled or completed"),
    (409, "`DELIVERABLE_SIGNED_OFF`", "reopening or restoring a task of a signed-off deliverable"),
    (
        409,
        "`IDEMPOTENCY_KEY_REUSED`",
        "the key (`client_event_id` or `Idempotency-Key`) was used on this task for another "
        "action or payload; carries `original_action`",
    ),
    (409, "`REWORK_TASK_NOT_DONE`", "a QC reject names an upstream task that is not done"),
    (403, "`ACTION_FORBIDDEN`", "the caller's roles or the assignee rule (table above)"),
    (403, "`SYSTEM_ACTION`, `USER_ACTION`", "a user sent a system action, or a service a user one"),
    (404, "`TASK_NOT_FOUND`", "no such task in the caller's org"),
    (422, "`PAYLOAD_INVALID`, `ACTION_UNKNOWN`", "the request itself: fields, payload, action"),
    (
        422,
        "`REWORK_TASK_NOT_FOUND`, `_OTHER_DELIVERABLE`, `_NOT_UPSTREAM`, `_IS_MILESTONE`",
        "a QC reject's `rework_from_task_id` names a task that cannot be reworked",
    ),
    (
        503,
        "`WRITE_COLLISION`",
        "the write collided with another one (a database deadlock, e.g. with a project migration "
        "locking its tasks) and was rolled back whole; `Retry-After: 1`, send it again with the "
        "same key. Every service answers it so",
    ),
)


def _diagram() -> list[str]:
    lines = ["```mermaid", "stateDiagram-v2"]
    initial = [Status.BLOCKED, Status.READY]
    lines += [f"    [*] --> {s}" for s in initial]
    for t in TRANSITIONS.values():
        targets = [t.to] if t.to is not None else []
        if t.to_alt is not None:
            targets.append(t.to_alt)
        for src in t.sources:
            for dst in targets or [src]:
                label = f"{t.action} (system)" if t.action in SYSTEM_ACTIONS else str(t.action)
                lines.append(f"    {src} --> {dst}: {label}")
    return [*lines, "```"]


def _table() -> list[str]:
    lines = ["| action | from | to | payload | who | guards |", "|---|---|---|---|---|---|"]
    for t in TRANSITIONS.values():
        to = str(t.to) if t.to is not None else "unchanged"
        if t.to_alt is not None:
            to += f" ({t.to_alt} when {t.alt_when})"
        payload = ", ".join(f"{f.name}{'' if f.required else '?'}" for f in t.payload) or "-"
        who = ", ".join(sorted(str(w) for w in t.who))
        guards = ", ".join(str(g) for g in t.guards) or "-"
        sources = ", ".join(str(s) for s in t.sources)
        lines.append(f"| {t.action} | {sources} | {to} | {payload} | {who} | {guards} |")
    return lines


def _roles() -> list[str]:
    lines = [
        "## Who may do what",
        "",
        "For a user holding one role (a user with several roles may do what any of them allows).",
        "Being a task's assignee is not enough on its own: only the working roles (operator,",
        "planner, inspector) act as assignee, so a viewer or an approver never changes a task.",
        "A refused action answers 403 `ACTION_FORBIDDEN`.",
        "",
        "| action | " + " | ".join(ROLES) + " |",
        "|---|" + "---|" * len(ROLES),
    ]
    for action in USER_ACTIONS:
        cells = " | ".join(role_rule(action, role) for role in ROLES)
        lines.append(f"| {action} | {cells} |")
    return lines


def _refusals() -> list[str]:
    lines = [
        "## Refusals",
        "",
        "Problem details (`application/problem+json`) with a stable `code`; a refused",
        "transition changes nothing. 422 only for a request invalid in itself, 409 when the",
        "state of the task (or of its project or deliverable) forbids it, 412 for a stale",
        "`If-Match`.",
        "",
        "A request may carry a key, `client_event_id` in the body or an `Idempotency-Key` header",
        "(the same key either way): sent again on the same task with the same action and payload,",
        "it gets the first answer again, with `Idempotent-Replayed: true`, and changes nothing.",
        "",
        "| status | code | when |",
        "|---|---|---|",
    ]
    return lines + [f"| {status} | {codes} | {when} |" for status, codes, when in REFUSALS]


def render() -> str:
    lines = [
        "# The task state machine",
        "",
        "Generated from `task_svc/tasks/fsm.py` by `python -m task_svc.tasks.fsm_doc`;",
        "do not edit by hand.",
        "",
        *_diagram(),
        "",
        *_table(),
        "",
        "Resolved states: done, cancelled. A task with open blockers cannot start. Admin passes",
        "every user rule; system actions are never callable by users.",
        "",
        *_roles(),
        "",
        *_refusals(),
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    text = render()
    if "--check" in argv:
        if not DOC_PATH.exists() or DOC_PATH.read_text() != text:
            print(f"{DOC_PATH} is stale: run python -m task_svc.tasks.fsm_doc", file=sys.stderr)
            return 1
        return 0
    DOC_PATH.parent.mkdir(parents=True, exist_ok=True)
    DOC_PATH.write_text(text)
    print(f"wrote {Path(DOC_PATH).name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
