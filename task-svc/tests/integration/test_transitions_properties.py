"""Property-based tests of the transition service against real PostgreSQL.

Hypothesis draws a small dependency DAG (some tasks need QC, some are milestones) and a sequence
of actions (user actions as an admin, QC decisions as the system), some with stale row versions
and repeated client_event_ids. Each action goes through `apply_transition` in a savepoint, as the
unit of work of a request would (a refusal rolls back). Each example runs in one transaction that
is rolled back at the end. After every step:

1. Counters: every task's `open_blockers` equals the number of its blockers that are not
   resolved (`done` or `cancelled`).
2. Blocked iff blocked: a task in `blocked` or `ready` is `blocked` exactly when
   `open_blockers > 0`.
3. Started work with open blockers was started before they reopened: a task in a started status
   (in_progress, on_hold, in_qc, rework, done) has a `start` or `auto_complete` event (when it
   had no open blocker: the guard) and `open_blockers` is at most the number of its
   `blocker_reopened` events after the last of those (each reopened blocker adds one counter and
   one event; a blocker resolved again removes the counter and leaves the event).
4. History is the row: folding a task's `task_events` from `create` (each event starting from the
   status the previous one left; row_version +1 per change, unchanged for `blocker_reopened`)
   gives exactly its status, assignee and row_version.
5. A refused action changes nothing (the tasks are the same before and after).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from servicekit.conditional import ExpectedVersion
from servicekit.errors import AppError
from servicekit.jsonutil import loads
from task_svc.tasks.fsm import actions_from
from task_svc.tasks.transitions import Caller, apply_transition

from ..support.taskgraph import insert_edge, insert_task, project_with_deliverable

ORG = uuid.UUID("00000000-0000-4000-8000-00000000d001")
USERS = (
    uuid.UUID("00000000-0000-4000-8000-0000000000d1"),
    uuid.UUID("00000000-0000-4000-8000-0000000000d2"),
)
ADMIN = Caller(actor="user:admin", roles=frozenset({"admin"}), user_id=USERS[0])
QC_SERVICE = Caller(actor="service:qc-svc", roles=frozenset({"service"}), user_id=None, system=True)

USER_ACTIONS = (
    "assign",
    "unassign",
    "start",
    "complete",
    "pause",
    "resume",
    "cancel",
    "restore",
    "reopen",
)
QC_ACTIONS = ("qc_accept", "qc_reject")
FORWARD = ("start", "complete", "qc_accept", "resume")
STARTED = frozenset({"in_progress", "on_hold", "in_qc", "rework", "done"})
RESOLVED = frozenset({"done", "cancelled"})
MILESTONE_STATES = frozenset({"blocked", "done", "cancelled"})


@dataclass(frozen=True)
class Graph:
    n: int
    edges: frozenset[tuple[int, int]]  # (blocker, dependent), blocker < dependent
    qc: frozenset[int]
    milestones: frozenset[int]


@st.composite
def graphs(draw: st.DrawFn) -> Graph:
    n = draw(st.integers(min_value=3, max_value=10))
    pairs = [(i, j) for j in range(n) for i in range(j)]
    edges = frozenset(p for p in pairs if draw(st.booleans()) and draw(st.booleans()))
    has_blocker = {d for _, d in edges}
    qc = frozenset(i for i in range(n) if draw(st.booleans()))
    # A milestone waits for something: only nodes with a blocker may be milestones.
    milestones = frozenset(
        i for i in sorted(has_blocker) if draw(st.integers(min_value=0, max_value=2)) == 0
    )
    return Graph(n, edges, qc - milestones, milestones)


@dataclass(frozen=True)
class Step:
    node: int  # -1: the node of the previous step (so a task gets deep into the table)
    action: str
    user: int  # which of USERS to assign
    stale: bool  # send a row_version that is one behind
    reuse_id: bool  # send the task's previous client_event_id again
    valid: bool  # replace `action` by one the table allows from the task's status (if any)


steps = st.builds(
    Step,
    node=st.one_of(st.just(-1), st.integers(min_value=0, max_value=9)),
    action=st.sampled_from(USER_ACTIONS + QC_ACTIONS),
    user=st.integers(min_value=0, max_value=1),
    stale=st.integers(min_value=0, max_value=9).map(lambda x: x == 0),
    reuse_id=st.integers(min_value=0, max_value=7).map(lambda x: x == 0),
    valid=st.integers(min_value=0, max_value=3).map(lambda x: x != 0),
)


def choose_action(step: Step, status: str) -> str:
    """Mostly an action the table allows from `status`, so examples get deep into the FSM."""
    if not step.valid:
        return step.action
    allowed = [str(a) for a in actions_from(status) if str(a) in USER_ACTIONS + QC_ACTIONS]
    if not allowed:
        return step.action
    forward = [a for a in allowed if a in FORWARD]
    if forward and step.user == 0:
        return forward[0]
    return allowed[(USER_ACTIONS + QC_ACTIONS).index(step.action) % len(allowed)]


async def seed(conn: AsyncConnection, g: Graph) -> list[uuid.UUID]:
    """A project, one deliverable, one task per node (with its `create` event), the edges."""
    project, dl = await project_with_deliverable(conn, org_id=ORG, serial_prefix="H")
    ids: list[uuid.UUID] = []
    for i in range(g.n):
        blockers = sum(1 for _, d in g.edges if d == i)
        ids.append(
            await insert_task(
                conn,
                org_id=ORG,
                project_id=project,
                deliverable_id=dl,
                node_key=f"n{i}",
                status="blocked" if blockers else "ready",
                qc=i in g.qc,
                milestone=i in g.milestones,
                open_blockers=blockers,
                create_event=True,
            )
        )
    for b, d in sorted(g.edges):
        await insert_edge(conn, blocker=ids[b], dependent=ids[d])
    return ids


async def tasks_state(conn: AsyncConnection, ids: list[uuid.UUID]) -> dict[uuid.UUID, Any]:
    res = await conn.execute(
        text(
            "SELECT id, status, assigned_to, row_version, open_blockers, is_milestone "
            "FROM task.tasks WHERE id = ANY(:ids)"
        ),
        {"ids": ids},
    )
    return {r["id"]: dict(r) for r in res.mappings()}


def payload_for(action: str, step: Step) -> dict[str, Any]:
    if action == "assign":
        return {"assign_to": str(USERS[step.user])}
    if action in ("pause", "cancel", "restore", "reopen"):
        return {"reason": f"{action} in a property test"}
    if action == "complete":
        return {"note": "done"}
    if action == "qc_accept":
        return {"inspection_id": str(uuid.uuid4())}
    if action == "qc_reject":
        return {"inspection_id": str(uuid.uuid4()), "reason": "defect", "defects": []}
    return {}


async def check_invariants(
    conn: AsyncConnection, g: Graph, ids: list[uuid.UUID], trail: list[str]
) -> None:
    rows = await tasks_state(conn, ids)
    where = " after: " + " | ".join(trail)
    for i, tid in enumerate(ids):
        row = rows[tid]
        open_blockers = sum(
            1 for b, d in g.edges if d == i and rows[ids[b]]["status"] not in RESOLVED
        )
        assert row["open_blockers"] == open_blockers, f"n{i} counter {row}{where}"
        if row["status"] in ("blocked", "ready"):
            assert (row["status"] == "blocked") == (open_blockers > 0), f"n{i} {row}{where}"
        if row["is_milestone"]:
            # It waits (blocked), completed by itself (done) or was cancelled: nothing else.
            assert row["status"] in MILESTONE_STATES, f"milestone n{i}: {row}{where}"

        res = await conn.execute(
            text(
                "SELECT id, action, from_status, to_status, payload, row_version "
                "FROM task.task_events WHERE task_id = :t ORDER BY id"
            ),
            {"t": tid},
        )
        events = [dict(e) for e in res.mappings()]
        assert events[0]["action"] == "create", f"n{i} history starts with {events[0]}"
        status, assignee, version = events[0]["to_status"], None, events[0]["row_version"]
        anchor: int | None = None
        reopened_since = 0
        for e in events[1:]:
            assert e["from_status"] == status, f"n{i} event {e} after status {status}{where}"
            payload = loads(e["payload"]) if isinstance(e["payload"], str) else e["payload"]
            if e["action"] == "blocker_reopened":
                assert e["row_version"] == version, f"n{i} {e}{where}"
                reopened_since += 1
            else:
                assert e["row_version"] == version + 1, f"n{i} {e} after v{version}{where}"
            if e["action"] == "assign":
                assignee = payload["assign_to"]
            elif e["action"] == "unassign":
                assignee = None
            elif e["action"] == "start" and "assigned_to" in payload:
                assignee = payload["assigned_to"]
            if e["action"] in ("start", "auto_complete"):
                anchor, reopened_since = e["id"], 0
            status, version = e["to_status"], e["row_version"]
        current = (row["status"], str(row["assigned_to"]) if row["assigned_to"] else None)
        assert (status, assignee, version) == (*current, row["row_version"]), (
            f"n{i} history folds to {(status, assignee, version)}, row is {row}{where}"
        )
        if row["status"] in STARTED:
            assert anchor is not None, f"n{i} is {row['status']} and never started{where}"
            assert row["open_blockers"] <= reopened_since, (
                f"n{i} started with open blockers: {row}, {reopened_since} reopened{where}"
            )


async def run_example(engine: AsyncEngine, g: Graph, plan: list[Step]) -> None:
    async with engine.connect() as conn:
        outer = await conn.begin()
        try:
            ids = await seed(conn, g)
            last_id: dict[int, str] = {}
            trail: list[str] = []
            await check_invariants(conn, g, ids, trail)
            node = 0
            for k, step in enumerate(plan):
                node = node if step.node < 0 else step.node % g.n
                tid = ids[node]
                before = await tasks_state(conn, ids)
                version = before[tid]["row_version"] - (1 if step.stale else 0)
                cid = last_id.get(node) if step.reuse_id else None
                cid = cid or f"p-{k}-{uuid.uuid4().hex[:8]}"
                last_id[node] = cid
                action = choose_action(step, before[tid]["status"])
                system = action in QC_ACTIONS
                outcome = "ok"
                try:
                    async with (
                        AsyncSession(bind=conn, join_transaction_mode="create_savepoint") as s,
                        s.begin(),
                    ):
                        result = await apply_transition(
                            s,
                            org_id=ORG,
                            task_id=tid,
                            action=action,
                            payload=payload_for(action, step),
                            expected=None if system else ExpectedVersion(version),
                            client_event_id=cid,
                            caller=QC_SERVICE if system else ADMIN,
                        )
                    if result.replayed:
                        outcome = "replayed"
                except AppError as exc:
                    outcome = exc.code
                    assert exc.status < 500
                trail.append(f"n{node}.{action}(v{version}) -> {outcome}")
                event(f"{action} -> {outcome}")
                if outcome != "ok":
                    after = await tasks_state(conn, ids)
                    assert after == before, f"refused step changed tasks{' | '.join(trail)}"
                await check_invariants(conn, g, ids, trail)
        finally:
            await outer.rollback()


# A milestone restored with nothing open before it completes at once (it cannot be started).
MILESTONE_RESTORED = (
    Graph(3, frozenset({(0, 1)}), frozenset(), frozenset({1})),
    [
        Step(1, "cancel", 0, stale=False, reuse_id=False, valid=False),
        Step(0, "start", 0, stale=False, reuse_id=False, valid=False),
        Step(0, "complete", 0, stale=False, reuse_id=False, valid=False),
        Step(1, "restore", 0, stale=False, reuse_id=False, valid=False),
    ],
)
# A finished milestone is not reopened (it could never finish again).
MILESTONE_REOPENED = (
    Graph(3, frozenset({(0, 1)}), frozenset(), frozenset({1})),
    [
        Step(0, "start", 0, stale=False, reuse_id=False, valid=False),
        Step(0, "complete", 0, stale=False, reuse_id=False, valid=False),
        Step(1, "reopen", 0, stale=False, reuse_id=False, valid=False),
        Step(0, "reopen", 0, stale=False, reuse_id=False, valid=False),
    ],
)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(g=graphs(), plan=st.lists(steps, min_size=10, max_size=40))
@example(g=MILESTONE_RESTORED[0], plan=MILESTONE_RESTORED[1])
@example(g=MILESTONE_REOPENED[0], plan=MILESTONE_REOPENED[1])
async def test_transitions_properties_invariants_hold(
    engine: AsyncEngine, g: Graph, plan: list[Step]
) -> None:
    await run_example(engine, g, plan)


async def act(conn: AsyncConnection, task: uuid.UUID, action: str) -> Any:
    """Apply `action` as an admin at the task's current row_version: the body, or the error."""
    version = (await tasks_state(conn, [task]))[task]["row_version"]
    try:
        async with (
            AsyncSession(bind=conn, join_transaction_mode="create_savepoint") as s,
            s.begin(),
        ):
            out = await apply_transition(
                s,
                org_id=ORG,
                task_id=task,
                action=action,
                payload=payload_for(action, Step(0, action, 0, False, False, False)),
                expected=ExpectedVersion(version),
                client_event_id=None,
                caller=ADMIN,
            )
    except AppError as exc:
        return exc
    return out.body


async def test_transitions_properties_milestone_restored_when_free_completes_at_once(
    engine: AsyncEngine,
) -> None:
    g = MILESTONE_RESTORED[0]
    async with engine.connect() as conn:
        outer = await conn.begin()
        try:
            ids = await seed(conn, g)
            a, m = ids[0], ids[1]
            await act(conn, m, "cancel")
            await act(conn, a, "start")
            await act(conn, a, "complete")
            body = await act(conn, m, "restore")
            assert (body["to_status"], body["task"]["status"]) == ("ready", "done")
            assert body["row_version"] == body["task"]["row_version"] == 4
            res = await conn.execute(
                text("SELECT action FROM task.task_events WHERE task_id = :t ORDER BY id"),
                {"t": m},
            )
            assert [r[0] for r in res] == ["create", "cancel", "restore", "auto_complete"]
            await check_invariants(conn, g, ids, ["restore of a free milestone"])
        finally:
            await outer.rollback()


async def test_transitions_properties_finished_milestone_is_not_reopened(
    engine: AsyncEngine,
) -> None:
    g = MILESTONE_REOPENED[0]
    async with engine.connect() as conn:
        outer = await conn.begin()
        try:
            ids = await seed(conn, g)
            a, m = ids[0], ids[1]
            await act(conn, a, "start")
            await act(conn, a, "complete")
            assert (await tasks_state(conn, [m]))[m]["status"] == "done"
            refused = await act(conn, m, "reopen")
            assert isinstance(refused, AppError)
            assert (refused.code, refused.status) == ("ACTION_NOT_ALLOWED", 409)
            assert "milestone" in refused.detail
            # Reopening the work before it leaves the milestone done, flagged.
            body = await act(conn, a, "reopen")
            assert body["to_status"] == "rework"
            res = await conn.execute(
                text("SELECT action FROM task.task_events WHERE task_id = :t ORDER BY id"),
                {"t": m},
            )
            assert [r[0] for r in res] == ["create", "unblock", "auto_complete", "blocker_reopened"]
        finally:
            await outer.rollback()
