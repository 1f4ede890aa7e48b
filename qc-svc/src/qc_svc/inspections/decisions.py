"""The guards of a decision on a locked inspection, as problems a client can act on.

What the inspection's state forbids (an accept with unanswered or failed required items or a
critical defect, a reject without any finding) is a 409; what the request itself gets wrong (a
reject without a reason, naming the inspected task as the upstream one) is a 422.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from qc_svc.inspections import rules
from qc_svc.inspections.models import Defect, Inspection
from qc_svc.inspections.rules import Decision
from servicekit.errors import Conflict, Unprocessable


def check_decision(
    inspection: Inspection,
    defects: Sequence[Defect],
    decision: Decision,
    reason: str | None,
    rework_from_task_id: uuid.UUID | None,
) -> None:
    facts = [rules.DefectFact(str(d.id), d.code, rules.Severity(d.severity)) for d in defects]
    if decision is Decision.accept:
        blockers = rules.accept_blockers(inspection.checklist, facts)
        if blockers:
            raise Conflict(
                f"cannot accept: {blockers.describe()}",
                code="ACCEPT_BLOCKED",
                unanswered_items=blockers.unanswered_items,
                failed_items=blockers.failed_items,
                critical_defects=blockers.critical_defects,
            )
        return
    problems = rules.reject_problems(reason, inspection.checklist, facts)
    if problems.reason_missing:
        raise Unprocessable(
            "a reject needs a reason: say what must be redone",
            code="REJECT_REASON_REQUIRED",
            field="reason",
        )
    if problems.no_findings:
        raise Conflict(
            "a reject needs at least one failed checklist item or one recorded defect; "
            "record the finding first (PUT .../results or POST .../defects)",
            code="REJECT_WITHOUT_FINDINGS",
        )
    if rework_from_task_id == inspection.task_id:
        raise Unprocessable(
            "rework_from_task_id names the inspected task itself; name an upstream task "
            "or leave it out (the inspected task goes to rework anyway)",
            code="REWORK_TASK_IS_INSPECTED_TASK",
            field="rework_from_task_id",
        )
