"""The pure rules of an inspection: status machine, checklist merging, decision guards."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from qc_svc.inspections import rules
from qc_svc.inspections.rules import (
    Command,
    DefectFact,
    Result,
    ResultEntry,
    Severity,
    Status,
)
from qc_svc.reports.service import resolve_range
from servicekit.conditional import ExpectedVersion, required_version
from servicekit.errors import AppError
from servicekit.pagination import as_datetime, as_uuid, decode_cursor, encode_cursor


def item(code: str, required: bool = True, result: str | None = None) -> dict[str, object]:
    return {"code": code, "text": code, "required": required, "result": result, "note": None}


@pytest.mark.parametrize(
    ("command", "status", "allowed"),
    [
        (Command.claim, Status.pending, True),
        (Command.claim, Status.claimed, False),
        (Command.claim, Status.passed, False),
        (Command.record_results, Status.pending, False),
        (Command.record_results, Status.claimed, True),
        (Command.add_defect, Status.claimed, True),
        (Command.add_defect, Status.failed, False),
        (Command.remove_defect, Status.claimed, True),
        (Command.decide, Status.pending, False),
        (Command.decide, Status.claimed, True),
        (Command.decide, Status.passed, False),
        (Command.decide, Status.failed, False),
    ],
)
def test_status_machine_table(command: Command, status: Status, allowed: bool) -> None:
    assert rules.is_allowed(command, status) is allowed


def test_decided_inspections_allow_nothing_and_decisions_lead_to_their_status() -> None:
    assert rules.allowed_commands(Status.passed) == []
    assert rules.allowed_commands(Status.failed) == []
    assert rules.allowed_commands(Status.pending) == [Command.claim]
    claimed = Status.claimed
    assert rules.next_status(Command.decide, claimed, rules.Decision.accept) is Status.passed
    assert rules.next_status(Command.decide, claimed, rules.Decision.reject) is Status.failed
    assert rules.next_status(Command.claim, Status.pending) is Status.claimed


def test_copy_checklist_starts_unanswered_defaults_required_and_drops_repeats() -> None:
    copied = rules.copy_checklist(
        [
            {"code": "A", "text": "a"},
            {"code": "B", "text": "b", "required": False},
            {"code": "A", "text": "again"},
        ]
    )
    assert copied == [
        {"code": "A", "text": "a", "required": True, "result": None, "note": None},
        {"code": "B", "text": "b", "required": False, "result": None, "note": None},
    ]


def test_merge_results_answers_named_items_and_keeps_the_others() -> None:
    checklist = [item("A", result="pass"), item("B"), item("C")]
    merged = rules.merge_results(checklist, [ResultEntry("B", Result.failed, "crack")])
    assert [(i["code"], i["result"], i["note"]) for i in merged] == [
        ("A", "pass", None),
        ("B", "fail", "crack"),
        ("C", None, None),
    ]
    assert checklist[1]["result"] is None  # the input is not changed
    assert rules.unknown_codes(checklist, [ResultEntry("Z", Result.passed)]) == ["Z"]


@pytest.mark.parametrize(
    ("checklist", "defects", "unanswered", "failed", "critical"),
    [
        ([item("A", result="pass")], [], [], [], []),
        ([item("A", result="na")], [], [], [], []),
        ([item("A")], [], ["A"], [], []),
        ([item("A", result="fail")], [], [], ["A"], []),
        ([item("A", required=False, result="fail"), item("B", result="pass")], [], [], [], []),
        ([item("A", required=False)], [], [], [], []),
        ([item("A", result="pass")], [DefectFact("1", "D1", Severity.major)], [], [], []),
        ([item("A", result="pass")], [DefectFact("1", "D1", Severity.critical)], [], [], ["D1"]),
    ],
)
def test_accept_guard_table(
    checklist: list[dict[str, object]],
    defects: list[DefectFact],
    unanswered: list[str],
    failed: list[str],
    critical: list[str],
) -> None:
    blockers = rules.accept_blockers(checklist, defects)
    assert (blockers.unanswered_items, blockers.failed_items, blockers.critical_defects) == (
        unanswered,
        failed,
        critical,
    )
    assert bool(blockers) is bool(unanswered or failed or critical)


@pytest.mark.parametrize(
    ("reason", "checklist", "defects", "reason_missing", "no_findings"),
    [
        ("porosity", [item("A", result="fail")], [], False, False),
        ("porosity", [item("A", required=False, result="fail")], [], False, False),
        (
            "porosity",
            [item("A", result="pass")],
            [DefectFact("1", "D", Severity.minor)],
            False,
            False,
        ),
        ("porosity", [item("A", result="pass")], [], False, True),
        ("   ", [item("A", result="fail")], [], True, False),
        (None, [item("A")], [], True, True),
    ],
)
def test_reject_guard_table(
    reason: str | None,
    checklist: list[dict[str, object]],
    defects: list[DefectFact],
    reason_missing: bool,
    no_findings: bool,
) -> None:
    problems = rules.reject_problems(reason, checklist, defects)
    assert (problems.reason_missing, problems.no_findings) == (reason_missing, no_findings)


results = st.sampled_from([None, "pass", "fail", "na"])
checklists = st.lists(st.tuples(st.booleans(), results), max_size=8).map(
    lambda items: [item(f"I{n}", req, res) for n, (req, res) in enumerate(items)]
)
defect_lists = st.lists(st.sampled_from(list(Severity)), max_size=4).map(
    lambda sevs: [DefectFact(str(n), f"D{n}", s) for n, s in enumerate(sevs)]
)


@given(checklists, defect_lists)
def test_accept_is_allowed_exactly_when_the_issue_says(
    checklist: list[dict[str, object]], defects: list[DefectFact]
) -> None:
    required = [i for i in checklist if i["required"]]
    expected_ok = (
        all(i["result"] is not None for i in required)
        and not any(i["result"] == "fail" for i in required)
        and not any(d.severity is Severity.critical for d in defects)
    )
    assert (not rules.accept_blockers(checklist, defects)) is expected_ok


@given(checklists, defect_lists)
def test_a_reject_with_reason_is_allowed_exactly_with_a_finding(
    checklist: list[dict[str, object]], defects: list[DefectFact]
) -> None:
    has_finding = any(i["result"] == "fail" for i in checklist) or bool(defects)
    assert (not rules.reject_problems("redo it", checklist, defects)) is has_finding


@pytest.mark.parametrize(
    ("body", "header", "expected", "code"),
    [
        (3, None, ExpectedVersion(3), None),
        (None, '"4"', ExpectedVersion(4, from_header=True), None),
        (None, 'W/"5"', ExpectedVersion(5, from_header=True, weak=True), None),
        (2, '"2"', ExpectedVersion(2, from_header=True), None),
        (2, '"3"', None, "IF_MATCH_MISMATCH"),
        (None, None, None, "ROW_VERSION_REQUIRED"),
        (None, '"abc"', None, "IF_MATCH_INVALID"),
        (None, '"0"', None, "IF_MATCH_INVALID"),
    ],
)
def test_expected_version_from_body_or_if_match(
    body: int | None, header: str | None, expected: ExpectedVersion | None, code: str | None
) -> None:
    if code is None:
        assert required_version(body, header) == expected
    else:
        with pytest.raises(AppError) as err:
            required_version(body, header)
        assert (err.value.code, err.value.status) == (code, VERSION_REFUSAL_STATUS[code])


VERSION_REFUSAL_STATUS = {
    "IF_MATCH_MISMATCH": 400,
    "ROW_VERSION_REQUIRED": 428,
    "IF_MATCH_INVALID": 400,
}


def test_cursor_round_trips_and_garbage_is_refused() -> None:
    from datetime import UTC, datetime
    from uuid import uuid4

    at, ident = datetime(2026, 3, 1, 12, 30, tzinfo=UTC), uuid4()
    assert decode_cursor(encode_cursor([at, ident]), as_datetime, as_uuid) == (at, ident)
    with pytest.raises(AppError) as err:
        decode_cursor("not-a-cursor", as_datetime, as_uuid)
    assert err.value.code == "CURSOR_INVALID"


def test_report_range_defaults_and_refusals() -> None:
    today = date(2026, 3, 31)
    assert resolve_range(None, None, today=today) == (date(2026, 3, 2), today)
    assert resolve_range(date(2026, 1, 1), date(2026, 1, 1), today=today) == (
        date(2026, 1, 1),
        date(2026, 1, 1),
    )
    with pytest.raises(AppError) as err:
        resolve_range(date(2026, 2, 1), date(2026, 1, 1), today=today)
    assert err.value.code == "DATE_RANGE_INVALID"
