"""The quality report as an XLSX workbook: one sheet per breakdown, cells of real types."""

from __future__ import annotations

import io
import uuid
from collections.abc import Sequence
from typing import Any

from openpyxl import Workbook
from openpyxl.styles import Font
from openpyxl.worksheet.worksheet import Worksheet

PERCENT = "0.00%"
DECIMAL = "0.00"
RATIOS = {"first_pass_yield", "rework_rate", "share", "cumulative_share"}
DECIMALS = {"avg_rounds_to_pass"}

METRICS = [
    "inspections",
    "passed",
    "failed",
    "tasks",
    "first_round_inspections",
    "first_pass_accepted",
    "first_pass_yield",
    "rework_rate",
    "rework_rounds",
    "max_round",
    "avg_rounds_to_pass",
    "defects",
    "critical_defects",
]

SHEETS: list[tuple[str, str, list[str]]] = [
    ("By project", "by_project", ["project_id", *METRICS]),
    ("By template version", "by_template_version", ["template_id", "template_version", *METRICS]),
    ("By node", "by_node", ["template_id", "node_key", *METRICS]),
    ("By assignee", "by_assignee", ["assignee_id", *METRICS]),
    (
        "Defects by code",
        "defects_by_code",
        ["code", "defects", "critical", "major", "minor", "share", "cumulative_share"],
    ),
    ("Defects by severity", "defects_by_severity", ["severity", "defects", "share"]),
]


def _cell_value(value: Any) -> Any:
    if isinstance(value, uuid.UUID):
        return str(value)
    return value


def _table(ws: Worksheet, columns: Sequence[str], rows: Sequence[dict[str, Any]]) -> None:
    ws.append(list(columns))
    for cell in ws[1]:
        cell.font = Font(bold=True)
    for row in rows:
        ws.append([_cell_value(row.get(c)) for c in columns])
    for idx, column in enumerate(columns, start=1):
        fmt = PERCENT if column in RATIOS else DECIMAL if column in DECIMALS else None
        letter = ws.cell(row=1, column=idx).column_letter
        ws.column_dimensions[letter].width = max(12, len(column) + 2)
        if fmt:
            for (cell,) in ws.iter_rows(min_row=2, min_col=idx, max_col=idx):
                cell.number_format = fmt
    ws.freeze_panes = "A2"


def render(report: dict[str, Any]) -> bytes:
    wb = Workbook()
    summary = wb.active
    assert summary is not None
    summary.title = "Summary"
    scope = report["scope"]
    summary.append(["date_from", scope["date_from"]])
    summary.append(["date_to", scope["date_to"]])
    summary.append(["project_id", _cell_value(scope["project_id"])])
    summary.append(["template_id", _cell_value(scope["template_id"])])
    for row in summary.iter_rows(min_row=1, max_row=2, min_col=2, max_col=2):
        row[0].number_format = "yyyy-mm-dd"
    summary.append([])
    start = summary.max_row + 1
    summary.append(["metric", "value"])
    for cell in summary[start]:
        cell.font = Font(bold=True)
    for metric in METRICS:
        summary.append([metric, report["overall"].get(metric)])
        if metric in RATIOS:
            summary.cell(row=summary.max_row, column=2).number_format = PERCENT
        elif metric in DECIMALS:
            summary.cell(row=summary.max_row, column=2).number_format = DECIMAL
    summary.column_dimensions["A"].width = 26
    summary.column_dimensions["B"].width = 40
    for title, key, columns in SHEETS:
        _table(wb.create_sheet(title), columns, report[key])
    buffer = io.BytesIO()
    wb.save(buffer)
    return buffer.getvalue()
