"""The rules of inspections applied to the database: creation from a QC submission, the
inspector's commands (claim, results, defects, decision), a decision task-svc refused (back to
the inspector), and the reads.

Every command takes an expected row version and a client_event_id: a stale version is a 409
that changes nothing; the same client_event_id again returns the first answer (status and body)
and does nothing else; the same id with another command or other arguments is a 422.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.qc import (
    DefectSeverity,
    DefectV1,
    QcInspectionCreatedV1,
    QcInspectionFailedV1,
    QcInspectionPassedV1,
    QcInspectionReopenedV1,
)
from qc_svc.db import outbox
from qc_svc.inspections import repository as repo
from qc_svc.inspections import rules
from qc_svc.inspections.models import Defect, Inspection
from qc_svc.inspections.rules import Command, Decision, Status
from qc_svc.inspections.schemas import (
    ClaimRequest,
    DecisionRequest,
    DefectCreate,
    InspectionPage,
    InspectionRead,
    ResultsRequest,
)
from servicekit.auth import Principal
from servicekit.conditional import required_row_version
from servicekit.errors import (
    AppError,
    Conflict,
    Forbidden,
    NotFound,
    Unprocessable,
    VersionConflict,
)
from servicekit.jsonutil import dumps
from servicekit.outbox import add_event
from servicekit.pagination import as_datetime, as_uuid, cut_page, decode_cursor, encode_cursor

SOURCE = "qc-svc"
AGGREGATE = "inspection"
ROW_VERSION_AMBIGUOUS = "ROW_VERSION_AMBIGUOUS"

log = logging.getLogger("qc_svc.inspections")


@dataclass(frozen=True)
class CommandResult:
    """What a command answers: status code, JSON body bytes, the row version it left, and
    whether it is a replay of an earlier answer."""

    status_code: int
    content: bytes
    row_version: int
    replayed: bool = False


# --- creation from task.submitted_for_qc ------------------------------------------------------


async def create_inspection_from_submission(
    session: AsyncSession,
    *,
    org_id: uuid.UUID,
    task_id: uuid.UUID,
    project_id: uuid.UUID,
    deliverable_id: uuid.UUID,
    node_key: str,
    title: str,
    qc_checklist: Sequence[Mapping[str, Any]],
    round: int,
    assignee_id: uuid.UUID | None,
    template_id: uuid.UUID | None = None,
    template_version: int | None = None,
    submitted_at: datetime | None = None,
    source_event_id: uuid.UUID | None = None,
) -> tuple[Inspection, bool]:
    """The inspection of `task_id` for `round`, created if absent: (inspection, created).

    Idempotent on (task_id, round): the same submission delivered twice creates one inspection
    and one `qc.inspection.created` event.
    """
    if round < 1:
        raise Unprocessable(
            f"round must be 1 or more, got {round}", code="ROUND_INVALID", round=round
        )
    now = datetime.now(UTC)
    inspection = await repo.insert_if_absent(
        session,
        {
            "id": uuid.uuid4(),
            "org_id": org_id,
            "project_id": project_id,
            "deliverable_id": deliverable_id,
            "task_id": task_id,
            "task_title": title,
            "node_key": node_key,
            "template_id": template_id,
            "template_version": template_version,
            "assignee_id": assignee_id,
            "round": round,
            "status": Status.pending.value,
            "checklist": rules.copy_checklist(qc_checklist),
            "submitted_at": submitted_at,
            "source_event_id": source_event_id,
            "row_version": 1,
            "created_at": now,
            "updated_at": now,
        },
    )
    if inspection is None:
        existing = await repo.get_by_task_round(
            session, org_id=org_id, task_id=task_id, round=round
        )
        if existing is None:
            raise Conflict(
                f"task {task_id} round {round} has an inspection in another org",
                code="INSPECTION_ORG_MISMATCH",
            )
        return existing, False
    event = QcInspectionCreatedV1(
        inspection_id=inspection.id,
        org_id=org_id,
        project_id=project_id,
        deliverable_id=deliverable_id,
        task_id=task_id,
        node_key=node_key,
        round=round,
        assignee_id=assignee_id,
        created_at=inspection.created_at,
    )
    await _publish(session, inspection, event.event_type, event.model_dump(mode="json"))
    return inspection, True


# --- reads ------------------------------------------------------------------------------------


async def get_inspection(
    session: AsyncSession, *, principal: Principal, inspection_id: uuid.UUID
) -> dict[str, Any]:
    inspection = await _get_or_404(session, principal.org, inspection_id)
    defects = await repo.defects_of(session, [inspection.id])
    return to_read(inspection, defects[inspection.id])


async def list_inspections(
    session: AsyncSession,
    *,
    principal: Principal,
    filters: repo.ListFilters,
    cursor: str | None,
    limit: int,
) -> InspectionPage:
    after = decode_cursor(cursor, as_datetime, as_uuid)
    rows = await repo.list_page(
        session, org_id=principal.org, filters=filters, after=after, limit=limit
    )
    page, last = cut_page(rows, limit)
    defects = await repo.defects_of(session, [i.id for i in page])
    next_cursor = encode_cursor([last.created_at, last.id]) if last is not None else None
    return InspectionPage(
        items=[_read_model(i, defects[i.id]) for i in page], next_cursor=next_cursor
    )


def to_read(inspection: Inspection, defects: Sequence[Defect]) -> dict[str, Any]:
    return _read_model(inspection, defects).model_dump(mode="json")


def _read_model(inspection: Inspection, defects: Sequence[Defect]) -> InspectionRead:
    return InspectionRead(
        id=inspection.id,
        org_id=inspection.org_id,
        project_id=inspection.project_id,
        deliverable_id=inspection.deliverable_id,
        task_id=inspection.task_id,
        task_title=inspection.task_title,
        node_key=inspection.node_key,
        template_id=inspection.template_id,
        template_version=inspection.template_version,
        assignee_id=inspection.assignee_id,
        round=inspection.round,
        status=Status(inspection.status),
        inspector_id=inspection.inspector_id,
        claimed_at=inspection.claimed_at,
        checklist=inspection.checklist,
        defects=[
            {
                "id": d.id,
                "code": d.code,
                "severity": d.severity,
                "description": d.description,
                "created_by": d.created_by,
                "created_at": d.created_at,
            }
            for d in defects
        ],
        decision=Decision(inspection.decision) if inspection.decision else None,
        reason=inspection.reason,
        rework_from_task_id=inspection.rework_from_task_id,
        decided_at=inspection.decided_at,
        outcome=inspection.outcome,
        outcome_error=inspection.outcome_error,
        outcome_at=inspection.outcome_at,
        refusals=[_refusal_read(r) for r in inspection.refusals],
        allowed_actions=[c.value for c in rules.allowed_commands(Status(inspection.status))],
        row_version=inspection.row_version,
        created_at=inspection.created_at,
        updated_at=inspection.updated_at,
    )


def _refusal_read(entry: Mapping[str, Any]) -> dict[str, Any]:
    return {k: entry.get(k) for k in REFUSAL_READ_FIELDS}


REFUSAL_READ_FIELDS = (
    "decision",
    "reason",
    "rework_from_task_id",
    "decided_at",
    "code",
    "detail",
    "refused_at",
    "reopened_at",
)


# --- commands ---------------------------------------------------------------------------------


def _expected_version(body_value: int | None, if_match: str | None) -> int:
    """The row version the client expects, from the body or an `If-Match` header: 428 when
    neither was sent, 422 `ROW_VERSION_AMBIGUOUS` when both were and they differ."""
    return required_row_version(body_value, if_match)


def _fingerprint(command: Command, inspection_id: uuid.UUID, version: int, args: Any) -> str:
    raw = orjson.dumps(
        {"command": command.value, "inspection": str(inspection_id), "v": version, "args": args},
        option=orjson.OPT_SORT_KEYS,
    )
    return hashlib.sha256(raw).hexdigest()


Apply = Callable[[Inspection, datetime], Awaitable[None]]


async def _run_command(
    session: AsyncSession,
    *,
    principal: Principal,
    inspection_id: uuid.UUID,
    command: Command,
    client_event_id: uuid.UUID,
    expected_version: int,
    args: Any,
    apply: Apply,
    status_code: int = 200,
    inspector_only: bool = True,
) -> CommandResult:
    """Lock, replay or check (version, status, actor), apply, bump the version, record."""
    org_id = principal.org
    inspection = await _get_or_404(session, org_id, inspection_id, for_update=True)
    request_hash = _fingerprint(command, inspection_id, expected_version, args)

    previous = await repo.get_command(session, org_id=org_id, client_event_id=client_event_id)
    if previous is not None:
        if (
            previous.inspection_id == inspection_id
            and previous.action == command.value
            and previous.request_hash == request_hash
        ):
            return CommandResult(
                previous.status_code,
                previous.response_body.encode(),
                previous.row_version,
                replayed=True,
            )
        raise _key_reused(client_event_id, previous.action, previous.inspection_id)

    if inspection.row_version != expected_version:
        raise VersionConflict(
            f"inspection {inspection_id} is at row_version {inspection.row_version}, "
            f"not {expected_version}; read it again and retry",
            current_row_version=inspection.row_version,
            current_status=inspection.status,
        )
    status = Status(inspection.status)
    if not rules.is_allowed(command, status):
        allowed = sorted(s.value for s in rules.ALLOWED_FROM[command])
        raise Conflict(
            f"cannot {command.value.replace('_', ' ')}: the inspection is {status.value}; "
            f"this needs it to be {' or '.join(allowed)}",
            code="INSPECTION_STATUS_CONFLICT",
            current_status=status.value,
            allowed_statuses=allowed,
        )
    if inspector_only and inspection.inspector_id != principal.user_id:
        raise Forbidden(
            f"only the inspector who claimed this inspection ({inspection.inspector_id}) may "
            f"{command.value.replace('_', ' ')}",
            code="NOT_THE_INSPECTOR",
            inspector_id=str(inspection.inspector_id),
        )

    now = datetime.now(UTC)
    await apply(inspection, now)
    inspection.row_version = inspection.row_version + 1
    inspection.updated_at = now
    await session.flush()

    defects = await repo.defects_of(session, [inspection.id])
    content = dumps(to_read(inspection, defects[inspection.id]))
    stored = await repo.record_command(
        session,
        {
            "org_id": org_id,
            "client_event_id": client_event_id,
            "inspection_id": inspection_id,
            "action": command.value,
            "request_hash": request_hash,
            "status_code": status_code,
            "response_body": content.decode(),
            "row_version": inspection.row_version,
            "actor_id": principal.user_id,
            "created_at": now,
        },
    )
    if not stored:
        raise _key_reused(client_event_id, None, None)
    return CommandResult(status_code, content, inspection.row_version)


def _key_reused(
    client_event_id: uuid.UUID, action: str | None, inspection_id: uuid.UUID | None
) -> AppError:
    extra: dict[str, Any] = {"client_event_id": str(client_event_id)}
    if action is not None:
        extra["original_action"] = action
        extra["original_inspection_id"] = str(inspection_id)
    return Unprocessable(
        f"client_event_id {client_event_id} was already used for a different command or "
        "arguments; use a new id for a new command",
        code="IDEMPOTENCY_KEY_REUSED",
        **extra,
    )


async def claim(
    session: AsyncSession,
    *,
    principal: Principal,
    inspection_id: uuid.UUID,
    body: ClaimRequest,
    if_match: str | None = None,
) -> CommandResult:
    version = _expected_version(body.expected_row_version, if_match)

    async def apply(inspection: Inspection, now: datetime) -> None:
        inspection.status = Status.claimed.value
        inspection.inspector_id = principal.user_id
        inspection.claimed_at = now

    return await _run_command(
        session,
        principal=principal,
        inspection_id=inspection_id,
        command=Command.claim,
        client_event_id=body.client_event_id,
        expected_version=version,
        args={},
        apply=apply,
        inspector_only=False,
    )


async def record_results(
    session: AsyncSession,
    *,
    principal: Principal,
    inspection_id: uuid.UUID,
    body: ResultsRequest,
    if_match: str | None = None,
) -> CommandResult:
    version = _expected_version(body.expected_row_version, if_match)
    entries = [rules.ResultEntry(r.code, r.result, r.note) for r in body.results]
    codes = [e.code for e in entries]
    duplicates = sorted({c for c in codes if codes.count(c) > 1})
    if duplicates:
        raise Unprocessable(
            f"each checklist item may be answered once per request; repeated: "
            f"{', '.join(duplicates)}",
            code="CHECKLIST_ITEM_REPEATED",
            items=duplicates,
        )

    async def apply(inspection: Inspection, now: datetime) -> None:
        unknown = rules.unknown_codes(inspection.checklist, entries)
        if unknown:
            known = [i["code"] for i in inspection.checklist]
            raise Unprocessable(
                f"not on this inspection's checklist: {', '.join(unknown)}; "
                f"its items are: {', '.join(known) or '(none)'}",
                code="CHECKLIST_ITEM_UNKNOWN",
                unknown_items=unknown,
                known_items=known,
            )
        inspection.checklist = rules.merge_results(inspection.checklist, entries)

    return await _run_command(
        session,
        principal=principal,
        inspection_id=inspection_id,
        command=Command.record_results,
        client_event_id=body.client_event_id,
        expected_version=version,
        args=body.model_dump(mode="json", exclude={"client_event_id", "expected_row_version"}),
        apply=apply,
    )


async def add_defect(
    session: AsyncSession,
    *,
    principal: Principal,
    inspection_id: uuid.UUID,
    body: DefectCreate,
    if_match: str | None = None,
) -> CommandResult:
    version = _expected_version(body.expected_row_version, if_match)

    async def apply(inspection: Inspection, now: datetime) -> None:
        session.add(
            Defect(
                id=uuid.uuid4(),
                org_id=inspection.org_id,
                inspection_id=inspection.id,
                code=body.code,
                severity=body.severity.value,
                description=body.description,
                created_by=principal.user_id,
                created_at=now,
            )
        )

    return await _run_command(
        session,
        principal=principal,
        inspection_id=inspection_id,
        command=Command.add_defect,
        client_event_id=body.client_event_id,
        expected_version=version,
        args=body.model_dump(mode="json", exclude={"client_event_id", "expected_row_version"}),
        apply=apply,
        status_code=201,
    )


async def remove_defect(
    session: AsyncSession,
    *,
    principal: Principal,
    inspection_id: uuid.UUID,
    defect_id: uuid.UUID,
    client_event_id: uuid.UUID,
    expected_row_version: int | None,
    if_match: str | None = None,
) -> CommandResult:
    version = _expected_version(expected_row_version, if_match)

    async def apply(inspection: Inspection, now: datetime) -> None:
        defect = await repo.get_defect(session, inspection_id=inspection.id, defect_id=defect_id)
        if defect is None:
            raise NotFound(
                f"inspection {inspection_id} has no defect {defect_id}", code="DEFECT_NOT_FOUND"
            )
        await session.delete(defect)

    return await _run_command(
        session,
        principal=principal,
        inspection_id=inspection_id,
        command=Command.remove_defect,
        client_event_id=client_event_id,
        expected_version=version,
        args={"defect_id": str(defect_id)},
        apply=apply,
    )


async def decide(
    session: AsyncSession,
    *,
    principal: Principal,
    inspection_id: uuid.UUID,
    body: DecisionRequest,
    if_match: str | None = None,
) -> CommandResult:
    """Accept or reject, after the guards; the decision leaves as an outbox event."""
    version = _expected_version(body.expected_row_version, if_match)
    if body.decision is Decision.accept and body.rework_from_task_id is not None:
        raise Unprocessable(
            "rework_from_task_id only goes with decision 'reject'; remove it to accept",
            code="REWORK_TASK_ON_ACCEPT",
        )

    async def apply(inspection: Inspection, now: datetime) -> None:
        defect_rows = (await repo.defects_of(session, [inspection.id]))[inspection.id]
        facts = [
            rules.DefectFact(str(d.id), d.code, rules.Severity(d.severity)) for d in defect_rows
        ]
        reason = (body.reason or "").strip() or None
        if body.decision is Decision.accept:
            blockers = rules.accept_blockers(inspection.checklist, facts)
            if blockers:
                raise Unprocessable(
                    f"cannot accept: {blockers.describe()}",
                    code="ACCEPT_BLOCKED",
                    unanswered_items=blockers.unanswered_items,
                    failed_items=blockers.failed_items,
                    critical_defects=blockers.critical_defects,
                )
        else:
            problems = rules.reject_problems(reason, inspection.checklist, facts)
            if problems.reason_missing:
                raise Unprocessable(
                    "a reject needs a reason: say what must be redone",
                    code="REJECT_REASON_REQUIRED",
                    field="reason",
                )
            if problems.no_findings:
                raise Unprocessable(
                    "a reject needs at least one failed checklist item or one recorded defect; "
                    "record the finding first (PUT .../results or POST .../defects)",
                    code="REJECT_WITHOUT_FINDINGS",
                )
            if body.rework_from_task_id == inspection.task_id:
                raise Unprocessable(
                    "rework_from_task_id names the inspected task itself; name an upstream task "
                    "or leave it out (the inspected task goes to rework anyway)",
                    code="REWORK_TASK_IS_INSPECTED_TASK",
                    field="rework_from_task_id",
                )
        inspection.status = rules.next_status(
            Command.decide, Status(inspection.status), body.decision
        ).value
        inspection.decision = body.decision.value
        inspection.reason = reason
        inspection.rework_from_task_id = body.rework_from_task_id
        inspection.decided_at = now
        # A new decision: whatever task-svc refused before is history (kept in `refusals`).
        inspection.outcome = None
        inspection.outcome_error = None
        inspection.outcome_at = None
        await _publish_decision(session, inspection, defect_rows)

    return await _run_command(
        session,
        principal=principal,
        inspection_id=inspection_id,
        command=Command.decide,
        client_event_id=body.client_event_id,
        expected_version=version,
        args=body.model_dump(mode="json", exclude={"client_event_id", "expected_row_version"}),
        apply=apply,
    )


async def reopen_after_refusal(
    session: AsyncSession,
    *,
    org_id: uuid.UUID,
    inspection_id: uuid.UUID,
    refused_decision: str,
    code: str,
    detail: str,
    refused_at: datetime,
    refusal_id: str | None = None,
) -> dict[str, Any]:
    """task-svc refused the decision `refused_decision` (`passed` / `failed`) and applied nothing:
    the inspection goes back to its inspector to be decided again.

    Status `claimed` by the same inspector, results and defects kept, the refused decision moved
    into `refusals` (with code, detail, when), `outcome: refused`, row_version bumped, and
    `qc.inspection.reopened` published. Called by the `task.qc_decision_refused` handler.

    A refusal already recorded (same `refusal_id`) or of a decision that is no longer the
    inspection's current one changes nothing; a refusal of an inspection that was never decided
    is an error (the event is retried, then dead-lettered).
    """
    inspection = await _get_or_404(session, org_id, inspection_id, for_update=True)
    recorded = {r.get("refusal_id") for r in inspection.refusals}
    if refusal_id is not None and refusal_id in recorded:
        return await _read_locked(session, inspection)
    status = Status(inspection.status)
    try:
        refused = Status(refused_decision)
    except ValueError:
        refused = None
    if refused is None or not rules.refusal_applies(status, refused):
        if status not in rules.DECIDED and not inspection.refusals:
            raise Conflict(
                f"inspection {inspection_id} is {status.value}: it has no decision to refuse",
                code="INSPECTION_NOT_DECIDED",
                current_status=status.value,
            )
        log.warning(
            "refusal of a decision that is no longer current ignored",
            extra={
                "inspection_id": str(inspection_id),
                "status": status.value,
                "refused_decision": refused_decision,
                "code": code,
            },
        )
        return await _read_locked(session, inspection)

    assert inspection.decision is not None and inspection.decided_at is not None
    now = datetime.now(UTC)
    entry: dict[str, Any] = {
        "decision": inspection.decision,
        "reason": inspection.reason,
        "rework_from_task_id": (
            str(inspection.rework_from_task_id) if inspection.rework_from_task_id else None
        ),
        "decided_at": inspection.decided_at.isoformat(),
        "code": code,
        "detail": detail,
        "refused_at": refused_at.isoformat(),
        "reopened_at": now.isoformat(),
        "refusal_id": refusal_id,
    }
    event = QcInspectionReopenedV1(
        inspection_id=inspection.id,
        org_id=inspection.org_id,
        project_id=inspection.project_id,
        deliverable_id=inspection.deliverable_id,
        task_id=inspection.task_id,
        node_key=inspection.node_key,
        round=inspection.round,
        inspector_id=inspection.inspector_id,
        refused_decision="accept" if inspection.decision == Decision.accept.value else "reject",
        rework_from_task_id=inspection.rework_from_task_id,
        code=code,
        detail=detail,
        refused_at=refused_at,
        refusals=len(inspection.refusals) + 1,
        reopened_at=now,
    )
    inspection.refusals = [*inspection.refusals, entry]
    inspection.status = rules.status_after_refusal(status).value
    inspection.decision = None
    inspection.reason = None
    inspection.rework_from_task_id = None
    inspection.decided_at = None
    inspection.outcome = "refused"
    inspection.outcome_error = {"code": code, "detail": detail}
    inspection.outcome_at = refused_at
    inspection.row_version = inspection.row_version + 1
    inspection.updated_at = now
    await session.flush()
    await _publish(session, inspection, event.event_type, event.model_dump(mode="json"))
    return await _read_locked(session, inspection)


async def _read_locked(session: AsyncSession, inspection: Inspection) -> dict[str, Any]:
    defects = await repo.defects_of(session, [inspection.id])
    return to_read(inspection, defects[inspection.id])


# --- helpers ----------------------------------------------------------------------------------


async def _get_or_404(
    session: AsyncSession, org_id: uuid.UUID, inspection_id: uuid.UUID, *, for_update: bool = False
) -> Inspection:
    inspection = await repo.get(
        session, org_id=org_id, inspection_id=inspection_id, for_update=for_update
    )
    if inspection is None:
        raise NotFound(f"no inspection {inspection_id}", code="INSPECTION_NOT_FOUND")
    return inspection


async def _publish(
    session: AsyncSession, inspection: Inspection, event_type: str, payload: dict[str, Any]
) -> None:
    await add_event(
        session,
        outbox,
        type=event_type,
        source=SOURCE,
        aggregate_type=AGGREGATE,
        aggregate_id=inspection.id,
        payload=payload,
    )


async def _publish_decision(
    session: AsyncSession, inspection: Inspection, defects: Sequence[Defect]
) -> None:
    assert inspection.inspector_id is not None and inspection.decided_at is not None
    common: dict[str, Any] = {
        "inspection_id": inspection.id,
        "org_id": inspection.org_id,
        "project_id": inspection.project_id,
        "deliverable_id": inspection.deliverable_id,
        "task_id": inspection.task_id,
        "node_key": inspection.node_key,
        "round": inspection.round,
        "inspector_id": inspection.inspector_id,
        "decided_at": inspection.decided_at,
    }
    if inspection.status == Status.passed.value:
        passed = QcInspectionPassedV1(reason=inspection.reason, **common)
        await _publish(session, inspection, passed.event_type, passed.model_dump(mode="json"))
        return
    failed = QcInspectionFailedV1(
        reason=inspection.reason or "",
        failed_items=rules.failed_items(inspection.checklist),
        defects=[
            DefectV1(code=d.code, severity=DefectSeverity(d.severity), description=d.description)
            for d in defects
        ],
        rework_from_task_id=inspection.rework_from_task_id,
        **common,
    )
    await _publish(session, inspection, failed.event_type, failed.model_dump(mode="json"))
