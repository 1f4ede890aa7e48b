"""Random template version pairs and project states for the migration planner's tests, and
the checks every migrated project must pass (pure: no database)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from hypothesis import strategies as st

from task_svc.project_migrations.events import PlannedEvent
from task_svc.project_migrations.planning import RESOLVED, MigrationPlan

START = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
WORKING = ("ready", "in_progress", "on_hold", "in_qc", "rework", "done", "cancelled")


def node(
    key: str, *, milestone: bool = False, title: str | None = None, **extra: Any
) -> dict[str, Any]:
    return {
        "key": key,
        "title": title or f"Task {key}",
        "work_kind": "milestone" if milestone else "work",
        **extra,
    }


def version(nodes: Sequence[Mapping[str, Any]], edges: Sequence[tuple[str, str]]) -> dict[str, Any]:
    return {
        "nodes": [dict(n) for n in nodes],
        "edges": [{"blocker": b, "dependent": d} for b, d in edges],
    }


@dataclass(frozen=True)
class Pair:
    v1: dict[str, Any]
    v2: dict[str, Any]
    rename: dict[str, str]


@st.composite
def version_pairs(draw: st.DrawFn) -> Pair:
    """v1 with 2-8 nodes; v2 drops, renames, adds nodes and edges (always acyclic)."""
    n = draw(st.integers(2, 8))
    milestones = draw(st.sets(st.integers(0, n - 1), max_size=2))
    old_keys = [f"k{i}" for i in range(n)]
    pairs = [(i, j) for j in range(n) for i in range(j)]
    old_edges = (
        draw(st.sets(st.sampled_from(pairs), max_size=min(len(pairs), 10))) if pairs else set()
    )
    v1_nodes = [node(k, milestone=i in milestones) for i, k in enumerate(old_keys)]
    dropped = draw(st.sets(st.integers(0, n - 1), max_size=n - 1))
    renamed = draw(st.sets(st.integers(0, n - 1), max_size=2)) - dropped
    retitled = draw(st.sets(st.integers(0, n - 1), max_size=2))
    # Positions order every node of v2 so that edges always go forward (no cycle).
    positions: dict[str, float] = {}
    v2_nodes: list[dict[str, Any]] = []
    rename: dict[str, str] = {}
    for i, k in enumerate(old_keys):
        if i in dropped:
            continue
        key = f"r{i}" if i in renamed else k
        if i in renamed:
            rename[k] = key
        title = f"Task {k} v2" if i in retitled else f"Task {k}"
        checklist = [{"code": "C1", "text": "check"}] if i in retitled else []
        v2_nodes.append(node(key, milestone=i in milestones, title=title, qc_checklist=checklist))
        positions[key] = float(i)
    added = draw(st.integers(0, 3))
    for j in range(added):
        key = f"n{j}"
        v2_nodes.append(node(key, milestone=draw(st.booleans()) and j == 0))
        positions[key] = draw(st.integers(-1, n)) + 0.5
    mapped = {k: rename.get(k, k) for k in old_keys}
    kept_edges = {
        (mapped[old_keys[b]], mapped[old_keys[d]])
        for b, d in old_edges
        if mapped[old_keys[b]] in positions and mapped[old_keys[d]] in positions
    }
    kept_edges -= (
        draw(st.sets(st.sampled_from(sorted(kept_edges)), max_size=2)) if kept_edges else set()
    )
    keys2 = list(positions)
    forward = [(a, b) for a in keys2 for b in keys2 if positions[a] < positions[b]]
    new_edges = draw(st.sets(st.sampled_from(forward), max_size=4)) if forward else set()
    v1 = version(v1_nodes, [(old_keys[b], old_keys[d]) for b, d in sorted(old_edges)])
    v2 = version(v2_nodes, sorted(kept_edges | new_edges))
    return Pair(v1, v2, rename)


@st.composite
def project_states(draw: st.DrawFn, v1: Mapping[str, Any]) -> dict[str, str]:
    """A reachable status per node of v1 (by the state machine's rules, no reopened blockers)."""
    blockers: dict[str, list[str]] = {n["key"]: [] for n in v1["nodes"]}
    for e in v1["edges"]:
        blockers[e["dependent"]].append(e["blocker"])
    status: dict[str, str] = {}
    for n in v1["nodes"]:  # keys are in topological order
        free = all(status[b] in RESOLVED for b in blockers[n["key"]])
        if n["work_kind"] == "milestone":
            status[n["key"]] = draw(
                st.sampled_from(("done", "cancelled") if free else ("blocked", "cancelled"))
            )
        else:
            status[n["key"]] = draw(st.sampled_from(WORKING if free else ("blocked", "cancelled")))
    return status


def fold(events: Sequence[PlannedEvent], start: tuple[str, int] | None) -> tuple[str, int]:
    """A task's (status, row_version) from its events: each starts where the last one ended."""
    status, version = start if start is not None else (None, 0)
    for e in events:
        assert e.from_status == status, f"{e} after status {status}"
        if e.action in ("blocker_added", "blocker_reopened"):
            assert e.row_version == version, e
        else:
            assert e.row_version == version + 1, f"{e} after v{version}"
        status, version = e.to_status, e.row_version
    assert status is not None
    return status, version


def final_state(plan: MigrationPlan) -> dict[uuid.UUID, dict[str, Any]]:
    """Every task after the migration: status, open_blockers, milestone, and its blockers."""
    out: dict[uuid.UUID, dict[str, Any]] = {}
    for d in plan.deliverables:
        for o in d.outcomes:
            out[o.task.id] = {
                "status": o.final_status,
                "open": o.open_blockers,
                "milestone": o.task.fields.get("work_kind") == "milestone",
                "flags": len(o.blockers_added) + len(o.blockers_reopened),
                "reason": o.reason,
                "blockers": [],
            }
        for n in d.added:
            out[n.id] = {
                "status": n.final_status,
                "open": n.open_blockers,
                "milestone": n.fields["work_kind"] == "milestone",
                "flags": 0,
                "reason": n.reason,
                "blockers": [],
            }
        for t, b in d.edges:
            out[t]["blockers"].append(b)
    return out


def check_invariants(plan: MigrationPlan) -> None:
    """Counters exact, blocked iff open, milestones sane, started work with open blockers only
    when a rule said so, and every unresolved task can still complete."""
    state = final_state(plan)
    for tid, s in state.items():
        open_now = sum(1 for b in s["blockers"] if state[b]["status"] not in RESOLVED)
        assert s["open"] == open_now, f"{tid} counter {s} vs {open_now}"
        if s["status"] in ("blocked", "ready"):
            assert (s["status"] == "blocked") == (open_now > 0), s
        if s["milestone"]:
            assert s["status"] in ("blocked", "done", "cancelled"), s
        if s["status"] in ("in_progress", "on_hold", "in_qc", "done") and open_now:
            assert s["flags"] >= open_now or "rule" in s["reason"], s
    # Run the project forward: everything unresolved must be able to finish.
    status = {t: s["status"] for t, s in state.items()}
    changed = True
    while changed:
        changed = False
        for tid, s in state.items():
            if status[tid] in RESOLVED:
                continue
            free = all(status[b] in RESOLVED for b in s["blockers"])
            if status[tid] in ("in_progress", "on_hold", "in_qc") or free:
                status[tid], changed = "done", True
    stuck = [t for t, st_ in status.items() if st_ not in RESOLVED]
    assert not stuck, f"tasks that can never complete: {stuck}"


# ---------------------------------------------------------------------------------------------
# Through the API and the database


def fold_rows(events: Sequence[Mapping[str, Any]]) -> tuple[str, int, str | None]:
    """(status, row_version, node_key) a task's `task_events` rows fold to: `create` first, each
    event from the status the last one left; `blocker_reopened` / `blocker_added` keep the row
    version, every other event adds one; `migrated` carries the key it renamed the task to."""
    assert events and events[0]["action"] == "create", events[:1]
    first = events[0]
    payload = first["payload"]
    status, version, key = first["to_status"], first["row_version"], payload.get("node_key")
    for e in events[1:]:
        assert e["from_status"] == status, f"{e} after status {status}"
        if e["action"] in ("blocker_reopened", "blocker_added"):
            assert e["row_version"] == version, e
        else:
            assert e["row_version"] == version + 1, f"{e} after v{version}"
        if e["action"] == "migrated":
            after = e["payload"]["after"]
            assert after.get("status", status) == e["to_status"], e
            key = after.get("node_key", key)
        status, version = e["to_status"], e["row_version"]
    return status, version, key
