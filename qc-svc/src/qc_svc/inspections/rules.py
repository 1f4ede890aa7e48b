"""The rules of an inspection as plain data and functions, without I/O.

- the status machine: which command is allowed in which status, and where it leads; and a
  decision task-svc refused, which returns the inspection to its inspector to decide again;
- the checklist copied from the template node, and results merged into it;
- the guards of a decision: what blocks an accept, what a reject needs.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Status(StrEnum):
    pending = "pending"
    claimed = "claimed"
    passed = "passed"
    failed = "failed"


class Command(StrEnum):
    claim = "claim"
    record_results = "record_results"
    add_defect = "add_defect"
    remove_defect = "remove_defect"
    decide = "decide"


class Result(StrEnum):
    passed = "pass"
    failed = "fail"
    not_applicable = "na"


class Decision(StrEnum):
    accept = "accept"
    reject = "reject"


class Severity(StrEnum):
    minor = "minor"
    major = "major"
    critical = "critical"


# command -> statuses it is allowed from. Decide leads to passed/failed; the rest stay claimed.
ALLOWED_FROM: dict[Command, frozenset[Status]] = {
    Command.claim: frozenset({Status.pending}),
    Command.record_results: frozenset({Status.claimed}),
    Command.add_defect: frozenset({Status.claimed}),
    Command.remove_defect: frozenset({Status.claimed}),
    Command.decide: frozenset({Status.claimed}),
}

DECISION_STATUS: dict[Decision, Status] = {
    Decision.accept: Status.passed,
    Decision.reject: Status.failed,
}


def is_allowed(command: Command, status: Status) -> bool:
    return status in ALLOWED_FROM[command]


def next_status(command: Command, status: Status, decision: Decision | None = None) -> Status:
    """The status after `command`; the caller has checked `is_allowed`."""
    if command is Command.claim:
        return Status.claimed
    if command is Command.decide:
        if decision is None:
            raise ValueError("a decision needs accept or reject")
        return DECISION_STATUS[decision]
    return status


def allowed_commands(status: Status) -> list[Command]:
    return [c for c in Command if status in ALLOWED_FROM[c]]


# The status a decision leaves, by the name task-svc uses for it in a refusal.
DECIDED: frozenset[Status] = frozenset(DECISION_STATUS.values())


def refusal_applies(status: Status, refused: Status) -> bool:
    """Whether task-svc's refusal of the decision `refused` (passed / failed) reopens an
    inspection in `status`: only while that decision is still the inspection's current one."""
    return refused in DECIDED and status is refused


def status_after_refusal(status: Status) -> Status:
    """A refused decision returns the inspection to its inspector: claimed again, so every
    command of a claimed inspection (results, defects, decide) is open once more."""
    if status not in DECIDED:
        raise ValueError(f"an inspection that is {status.value} has no decision to refuse")
    return Status.claimed


def copy_checklist(items: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The node's checklist as the inspection keeps it: each item unanswered, codes unique."""
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    for item in items:
        code = str(item["code"])
        if code in seen:
            continue
        seen.add(code)
        out.append(
            {
                "code": code,
                "text": str(item.get("text", "")),
                "required": bool(item.get("required", True)),
                "result": None,
                "note": None,
            }
        )
    return out


@dataclass(frozen=True)
class ResultEntry:
    code: str
    result: Result
    note: str | None = None


def unknown_codes(
    checklist: Sequence[Mapping[str, Any]], entries: Iterable[ResultEntry]
) -> list[str]:
    known = {item["code"] for item in checklist}
    return [e.code for e in entries if e.code not in known]


def merge_results(
    checklist: Sequence[Mapping[str, Any]], entries: Iterable[ResultEntry]
) -> list[dict[str, Any]]:
    """A new checklist with the given items answered; items not mentioned keep their answer."""
    by_code = {e.code: e for e in entries}
    merged: list[dict[str, Any]] = []
    for item in checklist:
        new = dict(item)
        entry = by_code.get(item["code"])
        if entry is not None:
            new["result"] = entry.result.value
            new["note"] = entry.note
        merged.append(new)
    return merged


@dataclass(frozen=True)
class DefectFact:
    id: str
    code: str
    severity: Severity


@dataclass(frozen=True)
class AcceptBlockers:
    """Why an accept is refused; empty means it may go ahead."""

    unanswered_items: list[str] = field(default_factory=list)
    failed_items: list[str] = field(default_factory=list)
    critical_defects: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.unanswered_items or self.failed_items or self.critical_defects)

    def describe(self) -> str:
        parts = []
        if self.unanswered_items:
            parts.append(f"required items not answered: {', '.join(self.unanswered_items)}")
        if self.failed_items:
            parts.append(f"required items failed: {', '.join(self.failed_items)}")
        if self.critical_defects:
            parts.append(f"critical defects recorded: {', '.join(self.critical_defects)}")
        return "; ".join(parts)


def accept_blockers(
    checklist: Sequence[Mapping[str, Any]], defects: Iterable[DefectFact]
) -> AcceptBlockers:
    """Accept needs every required item answered, no failed required item, no critical defect."""
    required = [item for item in checklist if item.get("required", True)]
    return AcceptBlockers(
        unanswered_items=[i["code"] for i in required if i.get("result") is None],
        failed_items=[i["code"] for i in required if i.get("result") == Result.failed.value],
        critical_defects=[d.code for d in defects if d.severity is Severity.critical],
    )


def failed_items(checklist: Sequence[Mapping[str, Any]]) -> list[str]:
    return [i["code"] for i in checklist if i.get("result") == Result.failed.value]


@dataclass(frozen=True)
class RejectProblems:
    """Why a reject is refused; empty means it may go ahead."""

    reason_missing: bool = False
    no_findings: bool = False

    def __bool__(self) -> bool:
        return self.reason_missing or self.no_findings


def reject_problems(
    reason: str | None, checklist: Sequence[Mapping[str, Any]], defects: Sequence[DefectFact]
) -> RejectProblems:
    """Reject needs a reason and at least one failed item (any) or one defect."""
    return RejectProblems(
        reason_missing=not (reason or "").strip(),
        no_findings=not failed_items(checklist) and not defects,
    )
