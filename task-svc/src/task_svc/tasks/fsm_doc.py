"""Generates docs/fsm.md from the transition table: `python -m task_svc.tasks.fsm_doc [--check]`."""

from __future__ import annotations

import sys
from pathlib import Path

from task_svc import SERVICE_DIR
from task_svc.tasks.fsm import ROLES, SYSTEM_ACTIONS, TRANSITIONS, USER_ACTIONS, Status, role_rule

DOC_PATH = SERVICE_DIR.parent / "docs" / "fsm.md"


def render() -> str:
    lines = [
        "# The task state machine",
        "",
        "Generated from `task_svc/tasks/fsm.py` by `python -m task_svc.tasks.fsm_doc`;",
        "do not edit by hand.",
        "",
        "```mermaid",
        "stateDiagram-v2",
    ]
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
    lines += [
        "```",
        "",
        "| action | from | to | payload | who | guards |",
        "|---|---|---|---|---|---|",
    ]
    for t in TRANSITIONS.values():
        to = str(t.to) if t.to is not None else "unchanged"
        if t.to_alt is not None:
            to += f" ({t.to_alt} when {t.alt_when})"
        payload = ", ".join(f"{f.name}{'' if f.required else '?'}" for f in t.payload) or "-"
        who = ", ".join(sorted(str(w) for w in t.who))
        guards = ", ".join(str(g) for g in t.guards) or "-"
        sources = ", ".join(str(s) for s in t.sources)
        lines.append(f"| {t.action} | {sources} | {to} | {payload} | {who} | {guards} |")
    lines += [
        "",
        "Resolved states: done, cancelled. A task with open blockers cannot start. Admin passes",
        "every user rule; system actions are never callable by users.",
        "",
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
    lines.append("")
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
