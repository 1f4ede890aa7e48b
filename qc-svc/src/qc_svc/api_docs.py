"""qc-svc's API documentation table: operationIds, named request examples, problem codes."""

from __future__ import annotations

from servicekit.openapi_docs import Example, OperationDoc, ProblemExample, ServiceDocs

_BASE = "/api/v1/inspections/{inspection_id}"
_REPORT_ERRORS = {422: ["DATE_RANGE_INVALID", "DATE_RANGE_TOO_LONG", "DATE_OUT_OF_RANGE"]}
_INSPECTOR = {
    403: ["NOT_THE_INSPECTOR"],
    404: ["INSPECTION_NOT_FOUND"],
    409: ["INSPECTION_STATUS_CONFLICT"],
}

OPERATIONS: dict[tuple[str, str], OperationDoc] = {
    ("GET", "/api/v1/inspections"): OperationDoc("listInspections"),
    ("GET", _BASE): OperationDoc("getInspection", errors={404: ["INSPECTION_NOT_FOUND"]}),
    ("POST", f"{_BASE}/claim"): OperationDoc(
        "claimInspection",
        errors={404: ["INSPECTION_NOT_FOUND"], 409: ["INSPECTION_STATUS_CONFLICT"]},
    ),
    ("PUT", f"{_BASE}/results"): OperationDoc(
        "recordInspectionResults",
        errors={**_INSPECTOR, 422: ["CHECKLIST_ITEM_UNKNOWN", "CHECKLIST_ITEM_REPEATED"]},
    ),
    ("POST", f"{_BASE}/defects"): OperationDoc("addInspectionDefect", errors=_INSPECTOR),
    ("DELETE", f"{_BASE}/defects/{{defect_id}}"): OperationDoc(
        "removeInspectionDefect",
        errors={**_INSPECTOR, 404: ["INSPECTION_NOT_FOUND", "DEFECT_NOT_FOUND"]},
    ),
    ("POST", f"{_BASE}/decision"): OperationDoc(
        "decideInspection",
        requests={
            "accept": Example(
                "accept: the work passes QC, the task is done",
                {
                    "decision": "accept",
                    "expected_row_version": 4,
                    "client_event_id": "1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d",
                },
            ),
            "reject": Example(
                "reject: the inspected task goes to rework",
                {
                    "decision": "reject",
                    "reason": "Seam porosity; reweld joint 3",
                    "expected_row_version": 4,
                    "client_event_id": "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d",
                },
            ),
            "reject_upstream": Example(
                "reject with upstream rework: reopen the earlier task that caused the defect",
                {
                    "decision": "reject",
                    "reason": "Panel cut 2 mm short; recut before welding",
                    "rework_from_task_id": "0b7c1a52-6f0e-4d43-9d0c-2f6d6c1b8e11",
                    "expected_row_version": 4,
                    "client_event_id": "4c5d6e7f-8a9b-4c0d-9e1f-2a3b4c5d6e7f",
                },
            ),
        },
        errors={
            **_INSPECTOR,
            409: ["INSPECTION_STATUS_CONFLICT", "ACCEPT_BLOCKED", "REJECT_WITHOUT_FINDINGS"],
            422: [
                "REJECT_REASON_REQUIRED",
                "REWORK_TASK_ON_ACCEPT",
                "REWORK_TASK_IS_INSPECTED_TASK",
            ],
        },
    ),
    ("GET", "/api/v1/qc/reports/quality"): OperationDoc("getQualityReport", errors=_REPORT_ERRORS),
    ("GET", "/api/v1/qc/reports/quality.xlsx"): OperationDoc(
        "getQualityReportXlsx", errors=_REPORT_ERRORS
    ),
}


def _p(status: int, title: str, detail: str) -> ProblemExample:
    return ProblemExample((status,), title, detail)


_UNPROCESSABLE = "Unprocessable request"

PROBLEMS: dict[str, ProblemExample] = {
    "INSPECTION_NOT_FOUND": _p(404, "Not found", "inspection 3b2a1c0d-... does not exist"),
    "DEFECT_NOT_FOUND": _p(404, "Not found", "the inspection has no such defect"),
    "INSPECTION_STATUS_CONFLICT": _p(
        409, "Conflict", "the inspection is decided: it takes no more results or defects"
    ),
    "NOT_THE_INSPECTOR": _p(403, "Forbidden", "another inspector claimed this inspection"),
    "CHECKLIST_ITEM_UNKNOWN": _p(422, _UNPROCESSABLE, "WELD-09 is not on this checklist"),
    "CHECKLIST_ITEM_REPEATED": _p(422, _UNPROCESSABLE, "WELD-01 is answered twice"),
    "ACCEPT_BLOCKED": _p(
        409, "Conflict", "required checklist items failed or are unanswered: reject instead"
    ),
    "REJECT_WITHOUT_FINDINGS": _p(
        409, "Conflict", "a rejection needs a failed checklist item or a defect"
    ),
    "REJECT_REASON_REQUIRED": _p(422, _UNPROCESSABLE, "a rejection needs a reason"),
    "REWORK_TASK_ON_ACCEPT": _p(422, _UNPROCESSABLE, "rework_from_task_id is for rejections only"),
    "REWORK_TASK_IS_INSPECTED_TASK": _p(
        422, _UNPROCESSABLE, "rework_from_task_id names the inspected task itself: omit it"
    ),
    "DATE_RANGE_INVALID": _p(422, _UNPROCESSABLE, "from must be before to"),
    "DATE_RANGE_TOO_LONG": _p(422, _UNPROCESSABLE, "the range spans more than 366 days"),
    "DATE_OUT_OF_RANGE": _p(422, _UNPROCESSABLE, "from is outside the supported dates"),
}

TAGS: list[dict[str, str]] = [
    {
        "name": "inspections",
        "description": "QC rounds of tasks: claim, record results and defects, accept or "
        "reject (with rework of the task or of an upstream one).",
    },
    {
        "name": "qc reports",
        "description": "First-pass yield, rework and the defect Pareto, as JSON or XLSX.",
    },
]

API_DOCS = ServiceDocs(operations=OPERATIONS, problems=PROBLEMS)
