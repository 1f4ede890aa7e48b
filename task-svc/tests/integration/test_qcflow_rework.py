"""A QC reject naming an upstream task, against real PostgreSQL: the upstream task is redone,
the branch between re-blocked and walked again in order; a bad upstream task is refused and
changes nothing. Also the event handlers that apply QC decisions (qc-svc's events)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.envelope import CloudEvent
from contracts.qc import (
    QC_INSPECTION_FAILED,
    QC_INSPECTION_PASSED,
    DefectSeverity,
    DefectV1,
    QcInspectionFailedV1,
    QcInspectionPassedV1,
)
from servicekit.errors import AppError
from servicekit.jsonutil import loads
from task_svc.events.handlers import apply_qc_failed, apply_qc_passed, handlers
from task_svc.tasks.transitions import Caller, apply_transition

ORG = uuid.UUID("00000000-0000-4000-8000-00000000e001")
ADMIN = Caller(
    actor="user:admin", roles=frozenset({"admin"}), user_id=uuid.UUID(int=0xE1), system=False
)
QC = Caller(actor="service:qc-svc", roles=frozenset({"service"}), user_id=None, system=True)
RESOLVED = frozenset({"done", "cancelled"})


class Project:
    """Tasks n0..n(k-1) of one deliverable (plus an optional second deliverable) with edges."""

    def __init__(self, ids: list[uuid.UUID], edges: set[tuple[int, int]], project: uuid.UUID):
        self.ids = ids
        self.edges = edges
        self.project = project

    def __getitem__(self, i: int) -> uuid.UUID:
        return self.ids[i]


async def seed(
    session: AsyncSession,
    n: int,
    edges: set[tuple[int, int]],
    *,
    qc: set[int] = frozenset(),  # type: ignore[assignment]
    deliverable_of: dict[int, int] | None = None,
) -> Project:
    conn = await session.connection()
    project, template = uuid.uuid4(), uuid.uuid4()
    await conn.execute(
        text(
            "INSERT INTO task.projects (id, org_id, name, template_id, template_key, "
            "template_version, template_checksum, snapshot, status, start_at, created_by) "
            "VALUES (:id, :org, 'P', :tid, 'tpl', 3, 'x', '{}'::jsonb, 'active', now(), 't')"
        ),
        {"id": project, "org": ORG, "tid": template},
    )
    deliverables = [uuid.uuid4(), uuid.uuid4()]
    for pos, dl in enumerate(deliverables, start=1):
        await conn.execute(
            text(
                "INSERT INTO task.deliverables (id, org_id, project_id, name, position, serial) "
                "VALUES (:id, :org, :p, :n, :pos, :serial)"
            ),
            {
                "id": dl,
                "org": ORG,
                "p": project,
                "n": f"D{pos}",
                "pos": pos,
                "serial": f"Q-{uuid.uuid4().hex[:10]}",
            },
        )
    ids = [uuid.uuid4() for _ in range(n)]
    for i, tid in enumerate(ids):
        blockers = sum(1 for _, d in edges if d == i)
        status = "blocked" if blockers else "ready"
        await conn.execute(
            text(
                "INSERT INTO task.tasks (id, org_id, project_id, deliverable_id, node_key, "
                "title, kind, work_kind, status, qc_required, is_milestone, open_blockers) "
                "VALUES (:id, :org, :p, :d, :k, :k, 'step', 'work', :st, :qc, false, :ob)"
            ),
            {
                "id": tid,
                "org": ORG,
                "p": project,
                "d": deliverables[(deliverable_of or {}).get(i, 0)],
                "k": f"n{i}",
                "st": status,
                "qc": i in qc,
                "ob": blockers,
            },
        )
        await conn.execute(
            text(
                "INSERT INTO task.task_events (org_id, task_id, action, from_status, to_status, "
                "actor, payload, row_version) "
                "VALUES (:org, :t, 'create', NULL, :st, 'test', '{}'::jsonb, 1)"
            ),
            {"org": ORG, "t": tid, "st": status},
        )
    for b, d in sorted(edges):
        await conn.execute(
            text("INSERT INTO task.task_dependencies (task_id, blocker_id) VALUES (:t, :b)"),
            {"t": ids[d], "b": ids[b]},
        )
    return Project(ids, edges, project)


async def act(
    session: AsyncSession,
    task: uuid.UUID,
    action: str,
    payload: dict[str, Any] | None = None,
    *,
    caller: Caller = ADMIN,
) -> dict[str, Any]:
    async with session.begin_nested():
        out = await apply_transition(
            session,
            org_id=ORG,
            task_id=task,
            action=action,
            payload=payload or {},
            expected=None,
            client_event_id=None,
            caller=caller,
        )
    return out.body


async def finish(session: AsyncSession, *tasks: uuid.UUID) -> None:
    for t in tasks:
        await act(session, t, "start")
        await act(session, t, "complete")


async def state(session: AsyncSession, p: Project) -> dict[int, dict[str, Any]]:
    res = await session.execute(
        text("SELECT id, status, open_blockers, row_version FROM task.tasks WHERE id = ANY(:ids)"),
        {"ids": p.ids},
    )
    by_id = {r["id"]: dict(r) for r in res.mappings()}
    return {i: by_id[t] for i, t in enumerate(p.ids)}


async def actions(session: AsyncSession, task: uuid.UUID) -> list[str]:
    res = await session.execute(
        text("SELECT action FROM task.task_events WHERE task_id = :t ORDER BY id"), {"t": task}
    )
    return [r[0] for r in res]


async def check_invariants(session: AsyncSession, p: Project) -> None:
    """Counters equal unresolved blockers; blocked iff counted; history folds to the row."""
    rows = await state(session, p)
    for i, row in rows.items():
        unresolved = sum(1 for b, d in p.edges if d == i and rows[b]["status"] not in RESOLVED)
        assert row["open_blockers"] == unresolved, f"n{i}: {row}"
        if row["status"] in ("blocked", "ready"):
            assert (row["status"] == "blocked") == (unresolved > 0), f"n{i}: {row}"
        res = await session.execute(
            text(
                "SELECT action, from_status, to_status, row_version FROM task.task_events "
                "WHERE task_id = :t ORDER BY id"
            ),
            {"t": p[i]},
        )
        events = [dict(e) for e in res.mappings()]
        status, version = events[0]["to_status"], events[0]["row_version"]
        for e in events[1:]:
            assert e["from_status"] == status, f"n{i}: {e} after {status}"
            step = 0 if e["action"] == "blocker_reopened" else 1
            assert e["row_version"] == version + step, f"n{i}: {e} after v{version}"
            status, version = e["to_status"], e["row_version"]
        assert (status, version) == (row["status"], row["row_version"]), f"n{i}: {row}"


def reject(upstream: uuid.UUID | None, **extra: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {"inspection_id": str(uuid.uuid4()), "reason": "paint runs"}
    if upstream is not None:
        payload["rework_from_task_id"] = str(upstream)
    return {**payload, **extra}


async def outbox_rows(session: AsyncSession, type_: str, task: uuid.UUID) -> list[dict[str, Any]]:
    res = await session.execute(
        text("SELECT payload FROM task.outbox WHERE type = :ty AND aggregate_id = :a ORDER BY seq"),
        {"ty": type_, "a": str(task)},
    )
    return [loads(r[0]) if isinstance(r[0], str) else r[0] for r in res]


# --- the cascade ---------------------------------------------------------------------------


async def test_qcflow_reject_in_a_chain_reopens_upstream_and_reblocks_between(
    session: AsyncSession,
) -> None:
    # n0 -> n1 -> n2 -> n3 (QC) -> n4; n5 is unrelated and ready.
    p = await seed(session, 6, {(0, 1), (1, 2), (2, 3), (3, 4)}, qc={3})
    await finish(session, p[0], p[1], p[2], p[3])
    before = await state(session, p)
    assert before[3]["status"] == "in_qc"

    body = await act(session, p[3], "qc_reject", reject(p[0]), caller=QC)
    assert (body["to_status"], body["task"]["open_blockers"]) == ("rework", 1)

    after = await state(session, p)
    assert {i: r["status"] for i, r in after.items()} == {
        0: "rework",
        1: "blocked",
        2: "blocked",
        3: "rework",
        4: "blocked",
        5: "ready",
    }
    assert [after[i]["open_blockers"] for i in range(6)] == [0, 1, 1, 1, 1, 0]
    assert after[4] == before[4] and after[5] == before[5]  # outside the branch: untouched
    assert (await actions(session, p[0]))[-1] == "qc_rework"
    assert (await actions(session, p[1]))[-1] == "reblock"
    assert (await actions(session, p[3]))[-2:] == ["qc_reject", "blocker_reopened"]
    await check_invariants(session, p)
    changed = await outbox_rows(session, "task.status_changed", p[0])
    assert changed[-1]["action"] == "qc_rework"
    assert changed[-1]["payload"]["inspected_task_id"] == str(p[3])

    # The inspected task waits for the redone branch, by name.
    with pytest.raises(AppError) as blocked:
        await act(session, p[3], "start")
    assert blocked.value.code == "TASK_BLOCKED"
    assert [b["id"] for b in blocked.value.extra["blockers"]] == [str(p[2])]
    with pytest.raises(AppError) as still_blocked:
        await act(session, p[1], "start")
    assert still_blocked.value.code == "TASK_BLOCKED"

    # Walking the branch again, in order, leads to a second QC round.
    await finish(session, p[0], p[1], p[2])
    assert (await state(session, p))[3]["open_blockers"] == 0
    await finish(session, p[3])
    assert (await state(session, p))[3]["status"] == "in_qc"
    rounds = [e["round"] for e in await outbox_rows(session, "task.submitted_for_qc", p[3])]
    assert rounds == [1, 2]
    await act(session, p[3], "qc_accept", {"inspection_id": str(uuid.uuid4())}, caller=QC)
    after = await state(session, p)
    assert (after[3]["status"], after[4]["status"]) == ("done", "ready")
    await check_invariants(session, p)


async def test_qcflow_reject_in_a_diamond_reblocks_both_paths_only(session: AsyncSession) -> None:
    # n0 -> n1 -> n3 (QC), n0 -> n2 -> n3, n0 -> n5 (beside the branch, done), n6 unrelated done,
    # n3 -> n4 (after the inspected task).
    edges = {(0, 1), (0, 2), (1, 3), (2, 3), (3, 4), (0, 5)}
    p = await seed(session, 7, edges, qc={3})
    await finish(session, p[0], p[1], p[2], p[5], p[6], p[3])
    before = await state(session, p)

    await act(session, p[3], "qc_reject", reject(p[0]), caller=QC)
    after = await state(session, p)
    assert [after[i]["status"] for i in range(7)] == [
        "rework",
        "blocked",
        "blocked",
        "rework",
        "blocked",
        "done",
        "done",
    ]
    assert after[3]["open_blockers"] == 2
    # Beside the branch: a finished dependent of the reopened task keeps its status (flagged).
    assert after[5]["status"] == "done" and after[5]["open_blockers"] == 1
    assert (await actions(session, p[5]))[-1] == "blocker_reopened"
    assert after[6] == before[6] and after[4] == before[4]
    await check_invariants(session, p)

    await finish(session, p[0])
    mid = await state(session, p)
    assert (mid[1]["status"], mid[2]["status"], mid[3]["open_blockers"]) == ("ready", "ready", 2)
    await finish(session, p[1])
    assert (await state(session, p))[3]["open_blockers"] == 1
    await finish(session, p[2], p[3])
    assert (await state(session, p))[3]["status"] == "in_qc"
    await check_invariants(session, p)


async def test_qcflow_reject_from_one_side_of_a_diamond_leaves_the_other(
    session: AsyncSession,
) -> None:
    p = await seed(session, 4, {(0, 1), (0, 2), (1, 3), (2, 3)}, qc={3})
    await finish(session, p[0], p[1], p[2], p[3])
    await act(session, p[3], "qc_reject", reject(p[1]), caller=QC)
    after = await state(session, p)
    assert [after[i]["status"] for i in range(4)] == ["done", "rework", "done", "rework"]
    assert after[3]["open_blockers"] == 1
    await check_invariants(session, p)


async def test_qcflow_cancelled_and_started_tasks_in_the_branch_are_left_alone(
    session: AsyncSession,
) -> None:
    # n0 -> n1 -> n3 (QC), n0 -> n2 -> n3, n0 -> n4 -> n3; n1 cancelled; n2 reopened and started.
    edges = {(0, 1), (1, 3), (0, 2), (2, 3), (0, 4), (4, 3)}
    p = await seed(session, 5, edges, qc={3})
    await finish(session, p[0], p[2], p[4])
    await act(session, p[1], "cancel", {"reason": "not needed on this unit"})
    await finish(session, p[3])
    await act(session, p[2], "reopen", {"reason": "redo"})
    await act(session, p[2], "start")

    await act(session, p[3], "qc_reject", reject(p[0]), caller=QC)
    after = await state(session, p)
    assert [after[i]["status"] for i in range(5)] == [
        "rework",
        "cancelled",
        "in_progress",
        "rework",
        "blocked",
    ]
    assert (await actions(session, p[2]))[-1] == "blocker_reopened"
    await check_invariants(session, p)


# --- refusals ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("which", "code"),
    [
        ("dependent", "REWORK_TASK_NOT_UPSTREAM"),
        ("beside", "REWORK_TASK_NOT_UPSTREAM"),
        ("other_deliverable", "REWORK_TASK_OTHER_DELIVERABLE"),
        ("unknown", "REWORK_TASK_NOT_FOUND"),
        ("not_done", "REWORK_TASK_NOT_DONE"),
    ],
)
async def test_qcflow_a_bad_upstream_task_is_refused_and_changes_nothing(
    session: AsyncSession, which: str, code: str
) -> None:
    # n0 -> n1 -> n2 (QC) -> n3; n0 -> n4 (beside); n5 in another deliverable; n6 -> n2 ready
    edges = {(0, 1), (1, 2), (2, 3), (0, 4)}
    p = await seed(session, 7, edges, qc={2}, deliverable_of={5: 1})
    await finish(session, p[0], p[1], p[4], p[5], p[2])
    if which == "not_done":
        await act(session, p[1], "reopen", {"reason": "redo"})
    target = {
        "dependent": p[3],
        "beside": p[4],
        "other_deliverable": p[5],
        "unknown": uuid.uuid4(),
        "not_done": p[1],
    }[which]
    before = await state(session, p)
    with pytest.raises(AppError) as refused:
        await act(session, p[2], "qc_reject", reject(target), caller=QC)
    assert refused.value.code == code
    assert refused.value.extra["rework_from_task_id"] == str(target)
    assert str(target) in refused.value.detail
    assert await state(session, p) == before


# --- the event handlers --------------------------------------------------------------------


def failed_event(
    p: Project, task: int, upstream: uuid.UUID | None
) -> CloudEvent[QcInspectionFailedV1]:
    data = QcInspectionFailedV1(
        inspection_id=uuid.uuid4(),
        org_id=ORG,
        project_id=p.project,
        deliverable_id=uuid.uuid4(),
        task_id=p[task],
        node_key=f"n{task}",
        round=1,
        inspector_id=uuid.uuid4(),
        reason="paint runs on the left door",
        failed_items=["PAINT-1"],
        defects=[DefectV1(code="PAINT-RUN", severity=DefectSeverity.major, description="runs")],
        rework_from_task_id=upstream,
        decided_at=datetime.now(UTC),
    )
    return CloudEvent[QcInspectionFailedV1](
        id=str(uuid.uuid4()),
        source="qc-svc",
        type=QC_INSPECTION_FAILED,
        time=data.decided_at,
        subject=str(data.inspection_id),
        data=data,
    )


def passed_event(p: Project, task: int) -> CloudEvent[QcInspectionPassedV1]:
    data = QcInspectionPassedV1(
        inspection_id=uuid.uuid4(),
        org_id=ORG,
        project_id=p.project,
        deliverable_id=uuid.uuid4(),
        task_id=p[task],
        node_key=f"n{task}",
        round=1,
        inspector_id=uuid.uuid4(),
        decided_at=datetime.now(UTC),
    )
    return CloudEvent[QcInspectionPassedV1](
        id=str(uuid.uuid4()),
        source="qc-svc",
        type=QC_INSPECTION_PASSED,
        time=data.decided_at,
        subject=str(data.inspection_id),
        data=data,
    )


def test_qcflow_handlers_are_registered_for_qc_decisions() -> None:
    assert handlers.types() == [QC_INSPECTION_FAILED, QC_INSPECTION_PASSED]
    assert handlers.producers() == {"qc-svc"}


async def test_qcflow_passed_event_accepts_and_unblocks_once(session: AsyncSession) -> None:
    p = await seed(session, 3, {(0, 1), (1, 2)}, qc={1})
    await finish(session, p[0], p[1])
    event = passed_event(p, 1)
    await apply_qc_passed(session, event)
    after = await state(session, p)
    assert (after[1]["status"], after[2]["status"]) == ("done", "ready")
    # The same event again is a replay of the same transition: nothing more happens.
    await apply_qc_passed(session, event)
    assert await state(session, p) == after
    res = await session.execute(
        text(
            "SELECT actor, client_event_id, payload FROM task.task_events "
            "WHERE task_id = :t AND action = 'qc_accept'"
        ),
        {"t": p[1]},
    )
    rows = res.all()
    assert len(rows) == 1
    assert rows[0][0] == "service:qc-svc" and rows[0][1] == f"qc:{event.id}"
    payload = loads(rows[0][2]) if isinstance(rows[0][2], str) else rows[0][2]
    assert payload == {"inspection_id": str(event.data.inspection_id)}


async def test_qcflow_failed_event_with_upstream_task_applies_the_cascade(
    session: AsyncSession,
) -> None:
    p = await seed(session, 3, {(0, 1), (1, 2)}, qc={2})
    await finish(session, p[0], p[1], p[2])
    await apply_qc_failed(session, failed_event(p, 2, p[0]))
    after = await state(session, p)
    assert [after[i]["status"] for i in range(3)] == ["rework", "blocked", "rework"]
    res = await session.execute(
        text("SELECT payload FROM task.task_events WHERE task_id = :t AND action = 'qc_reject'"),
        {"t": p[2]},
    )
    raw = res.scalar_one()
    payload = loads(raw) if isinstance(raw, str) else raw
    assert payload["rework_from_task_id"] == str(p[0])
    assert payload["defects"] == [{"code": "PAINT-RUN", "severity": "major", "description": "runs"}]
    assert await outbox_rows(session, "task.qc_decision_refused", p[2]) == []
    await check_invariants(session, p)


async def test_qcflow_refused_decision_changes_nothing_and_says_why(
    session: AsyncSession,
) -> None:
    p = await seed(session, 3, {(0, 1), (1, 2)}, qc={1})
    await finish(session, p[0], p[1])
    before = await state(session, p)
    event = failed_event(p, 1, p[2])  # n2 is downstream of n1, not upstream
    await apply_qc_failed(session, event)
    assert await state(session, p) == before
    refused = await outbox_rows(session, "task.qc_decision_refused", p[1])
    assert len(refused) == 1
    assert refused[0]["inspection_id"] == str(event.data.inspection_id)
    assert refused[0]["task_id"] == str(p[1])
    assert refused[0]["decision"] == "failed"
    assert refused[0]["code"] == "REWORK_TASK_NOT_UPSTREAM"
    assert "not upstream" in refused[0]["detail"]


async def test_qcflow_decision_on_a_missing_task_raises_for_a_retry(
    session: AsyncSession,
) -> None:
    p = await seed(session, 1, set())
    event = passed_event(p, 0)
    missing = event.model_copy(
        update={"data": event.data.model_copy(update={"task_id": uuid.uuid4()})}
    )
    with pytest.raises(AppError) as err:
        await apply_qc_passed(session, missing)
    assert err.value.code == "TASK_NOT_FOUND"
