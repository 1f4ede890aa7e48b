"""Quality reports over a seeded history with hand-computed yield, rework and Pareto figures.

The history (decided in March 2026 unless said otherwise; A and B are operators):

- t1: P1 / v1, weld, A: r1 passed
- t2: P1 / v1, weld, A: r1 failed (POROSITY major, CRACK critical), r2 passed
- t3: P1 / v1, paint, B: r1 failed (POROSITY minor), r2 failed (POROSITY major, DENT minor),
  r3 passed
- t4: P2 / v2, weld, B: r1 passed on 31 March 23:30 (the last minutes of the range)
- t5: P2 / v2, paint, A: r1 failed (SCRATCH minor), r2 still claimed (not counted)
- t6: P1 / v1, weld, A: r1 passed on 1 April 00:00 (just outside the range)

Hand-computed over March: 8 decided inspections, 4 passed, 4 failed, 5 tasks; 5 round-1
inspections of which 2 accepted, so first-pass yield 2/5 = 0.4; rework rate 4/8 = 0.5; accepted
in rounds 1, 2, 3, 1 so 1.75 rounds on average; defects POROSITY 3, CRACK 1, DENT 1, SCRATCH 1.
"""

from __future__ import annotations

import io
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import openpyxl
import pytest
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from qc_svc.inspections.models import Defect, Inspection
from servicekit.testing.plugin import JwtKeys

ORG = uuid.UUID("00000000-0000-4000-8000-0000000000aa")
P1, P2 = uuid.UUID(int=1001), uuid.UUID(int=1002)
TEMPLATE = uuid.UUID(int=2001)
A, B = uuid.UUID(int=3001), uuid.UUID(int=3002)
INSPECTOR = uuid.UUID(int=4001)
RANGE = {"from": "2026-03-01", "to": "2026-03-31"}
URL = "/api/v1/qc/reports/quality"


def at(day: int, hour: int = 12, minute: int = 0, month: int = 3) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=UTC)


@pytest.fixture
async def history(session: AsyncSession, submit: Any) -> dict[str, uuid.UUID]:
    tasks = {
        name: uuid.UUID(int=5000 + n) for n, name in enumerate(["t1", "t2", "t3", "t4", "t5", "t6"])
    }
    context = {
        "t1": (P1, 1, "weld", A),
        "t2": (P1, 1, "weld", A),
        "t3": (P1, 1, "paint", B),
        "t4": (P2, 2, "weld", B),
        "t5": (P2, 2, "paint", A),
        "t6": (P1, 1, "weld", A),
    }
    rounds: list[tuple[str, int, str, datetime | None, list[tuple[str, str]]]] = [
        ("t1", 1, "passed", at(2), []),
        ("t2", 1, "failed", at(3), [("POROSITY", "major"), ("CRACK", "critical")]),
        ("t2", 2, "passed", at(4), []),
        ("t3", 1, "failed", at(5), [("POROSITY", "minor")]),
        ("t3", 2, "failed", at(6), [("POROSITY", "major"), ("DENT", "minor")]),
        ("t3", 3, "passed", at(7), []),
        ("t4", 1, "passed", at(31, 23, 30), []),
        ("t5", 1, "failed", at(8), [("SCRATCH", "minor")]),
        ("t5", 2, "claimed", None, [("IGNORED", "critical")]),
        ("t6", 1, "passed", at(1, 0, 0, month=4), [("LATE", "minor")]),
    ]
    for name, rnd, status, decided_at, defects in rounds:
        project, version, node, assignee = context[name]
        inspection = await submit(
            org_id=ORG,
            task_id=tasks[name],
            project_id=project,
            deliverable_id=uuid.UUID(int=6000 + rnd),
            template_id=TEMPLATE,
            template_version=version,
            node_key=node,
            assignee_id=assignee,
            round=rnd,
        )
        decision = {"passed": "accept", "failed": "reject"}.get(status)
        await session.execute(
            update(Inspection)
            .where(Inspection.id == inspection.id)
            .values(status=status, decision=decision, decided_at=decided_at, inspector_id=INSPECTOR)
        )
        for code, severity in defects:
            session.add(
                Defect(
                    id=uuid.uuid4(),
                    org_id=ORG,
                    inspection_id=inspection.id,
                    code=code,
                    severity=severity,
                    description=code,
                    created_by=INSPECTOR,
                )
            )
    await session.flush()
    return tasks


def metrics(row: dict[str, Any]) -> tuple[Any, ...]:
    return (
        row["inspections"],
        row["passed"],
        row["failed"],
        row["tasks"],
        row["first_round_inspections"],
        row["first_pass_accepted"],
        row["first_pass_yield"],
        row["rework_rate"],
        row["rework_rounds"],
        row["max_round"],
        row["avg_rounds_to_pass"],
        row["defects"],
        row["critical_defects"],
    )


OVERALL = (8, 4, 4, 5, 5, 2, 0.4, 0.5, 3, 3, 1.75, 6, 1)
BY_PROJECT = {
    str(P1): (6, 3, 3, 3, 3, 1, 0.3333, 0.5, 3, 3, 2.0, 5, 1),
    str(P2): (2, 1, 1, 2, 2, 1, 0.5, 0.5, 0, 1, 1.0, 1, 0),
}
BY_ASSIGNEE = {
    str(A): (4, 2, 2, 3, 3, 1, 0.3333, 0.5, 1, 2, 1.5, 3, 1),
    str(B): (4, 2, 2, 2, 2, 1, 0.5, 0.5, 2, 3, 2.0, 3, 0),
}
BY_NODE = {
    "weld": (4, 3, 1, 3, 3, 2, 0.6667, 0.25, 1, 2, 1.33, 2, 1),
    "paint": (4, 1, 3, 2, 2, 0, 0.0, 0.75, 2, 3, 3.0, 4, 0),
}
PARETO = [
    ("POROSITY", 3, 0, 2, 1, 0.5, 0.5),
    ("CRACK", 1, 1, 0, 0, 0.1667, 0.6667),
    ("DENT", 1, 0, 0, 1, 0.1667, 0.8333),
    ("SCRATCH", 1, 0, 0, 1, 0.1667, 1.0),
]
SEVERITY = [("critical", 1, 0.1667), ("major", 2, 0.3333), ("minor", 3, 0.5)]


async def test_report_json_matches_the_hand_computed_figures(
    client: httpx.AsyncClient, jwt_keys: JwtKeys, history: dict[str, uuid.UUID]
) -> None:
    resp = await client.get(URL, params=RANGE, headers=jwt_keys.headers(["planner"], org_id=ORG))
    assert resp.status_code == 200, resp.text
    report = resp.json()
    assert report["scope"]["date_from"] == "2026-03-01"
    assert metrics(report["overall"]) == OVERALL
    assert {r["project_id"]: metrics(r) for r in report["by_project"]} == BY_PROJECT
    assert {r["assignee_id"]: metrics(r) for r in report["by_assignee"]} == BY_ASSIGNEE
    assert {r["node_key"]: metrics(r) for r in report["by_node"]} == BY_NODE
    assert {r["template_version"]: metrics(r) for r in report["by_template_version"]} == {
        1: BY_PROJECT[str(P1)],
        2: BY_PROJECT[str(P2)],
    }
    assert [
        (
            r["code"],
            r["defects"],
            r["critical"],
            r["major"],
            r["minor"],
            r["share"],
            r["cumulative_share"],
        )
        for r in report["defects_by_code"]
    ] == PARETO
    assert [(r["severity"], r["defects"], r["share"]) for r in report["defects_by_severity"]] == (
        SEVERITY
    )


async def test_report_filters_by_project_and_other_orgs_see_nothing(
    client: httpx.AsyncClient, jwt_keys: JwtKeys, history: dict[str, uuid.UUID]
) -> None:
    headers = jwt_keys.headers(["viewer"], org_id=ORG)
    report = (
        await client.get(URL, params={**RANGE, "project_id": str(P2)}, headers=headers)
    ).json()
    assert metrics(report["overall"]) == BY_PROJECT[str(P2)]
    assert [r["code"] for r in report["defects_by_code"]] == ["SCRATCH"]
    april = (
        await client.get(URL, params={"from": "2026-04-01", "to": "2026-04-01"}, headers=headers)
    ).json()
    assert april["overall"]["inspections"] == 1
    assert [r["code"] for r in april["defects_by_code"]] == ["LATE"]

    stranger = (await client.get(URL, params=RANGE, headers=jwt_keys.headers(["planner"]))).json()
    assert stranger["overall"]["inspections"] == 0
    assert stranger["overall"]["first_pass_yield"] is None
    assert stranger["by_project"] == []
    assert stranger["defects_by_code"] == []


async def test_report_refusals(client: httpx.AsyncClient, jwt_keys: JwtKeys) -> None:
    headers = jwt_keys.headers(["planner"], org_id=ORG)
    resp = await client.get(URL, params={"from": "2026-03-02", "to": "2026-03-01"}, headers=headers)
    assert (resp.status_code, resp.json()["code"]) == (422, "DATE_RANGE_INVALID")
    resp = await client.get(URL, params={"from": "March"}, headers=headers)
    assert resp.status_code == 422
    assert resp.json()["errors"][0]["field"] == "from"
    resp = await client.get(URL, headers=jwt_keys.headers(["operator"], org_id=ORG))
    assert resp.status_code == 403


async def test_xlsx_holds_the_same_numbers_with_real_types(
    client: httpx.AsyncClient, jwt_keys: JwtKeys, history: dict[str, uuid.UUID]
) -> None:
    resp = await client.get(
        f"{URL}.xlsx", params=RANGE, headers=jwt_keys.headers(["viewer"], org_id=ORG)
    )
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"].startswith(
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    )
    assert 'filename="qc-report-2026-03-01-2026-03-31.xlsx"' in resp.headers["content-disposition"]
    wb = openpyxl.load_workbook(io.BytesIO(resp.content))
    assert wb.sheetnames == [
        "Summary",
        "By project",
        "By template version",
        "By node",
        "By assignee",
        "Defects by code",
        "Defects by severity",
    ]

    summary = {row[0]: row[1] for row in wb["Summary"].iter_rows(values_only=True) if row}
    assert summary["date_from"] == datetime(2026, 3, 1)
    assert summary["first_pass_yield"] == 0.4
    assert summary["inspections"] == 8
    assert isinstance(summary["inspections"], int)

    def table(name: str) -> list[dict[str, Any]]:
        rows = list(wb[name].iter_rows(values_only=True))
        header = rows[0]
        return [dict(zip(header, r, strict=True)) for r in rows[1:]]

    by_project = {r["project_id"]: metrics(r) for r in table("By project")}
    assert by_project == BY_PROJECT
    pareto = table("Defects by code")
    assert [
        (
            r["code"],
            r["defects"],
            r["critical"],
            r["major"],
            r["minor"],
            r["share"],
            r["cumulative_share"],
        )
        for r in pareto
    ] == PARETO
    assert wb["Defects by code"]["F2"].number_format == "0.00%"
    assert wb["By node"]["I2"].number_format == "0.00%"  # first_pass_yield


@pytest.mark.parametrize("suffix", ["", ".xlsx"])
@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"to": "0001-01-01"}, "to"),
        ({"from": "0001-01-01", "to": "0001-01-05"}, "from"),
        ({"from": "9999-12-31"}, "from"),
        ({"from": "9999-12-30", "to": "9999-12-31"}, "from"),
    ],
)
async def test_report_days_at_the_calendars_edge_are_a_precise_422(
    client: httpx.AsyncClient,
    jwt_keys: JwtKeys,
    suffix: str,
    params: dict[str, str],
    field: str,
) -> None:
    headers = jwt_keys.headers(["planner"], org_id=ORG)
    resp = await client.get(URL + suffix, params=params, headers=headers)
    assert resp.status_code == 422, resp.text
    assert resp.json()["code"] == "DATE_OUT_OF_RANGE"
    assert resp.json()["errors"][0]["field"] == field
