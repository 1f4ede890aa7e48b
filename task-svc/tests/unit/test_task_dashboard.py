"""The project dashboard computed from task rows (pure)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from itertools import pairwise

from hypothesis import given, settings
from hypothesis import strategies as st

from task_svc.graph.critical_path import WorkItem, critical_path
from task_svc.projects.dashboard import build_dashboard

NOW = datetime(2026, 12, 10, 12, tzinfo=UTC)
D1, D2 = uuid.uuid4(), uuid.uuid4()
ALICE = uuid.uuid4()


@dataclass
class Row:
    id: uuid.UUID
    deliverable_id: uuid.UUID
    node_key: str
    title: str
    status: str
    assigned_to: uuid.UUID | None = None
    due_at: datetime | None = None
    estimate_hours: Decimal | None = None


@dataclass
class ProjectRow:
    id: uuid.UUID
    status: str
    due_at: datetime | None


@dataclass
class DeliverableRow:
    id: uuid.UUID
    name: str
    serial: str
    status: str


def test_dashboard_sections() -> None:
    a = Row(uuid.uuid4(), D1, "a", "Cut", "done", ALICE, NOW - timedelta(days=2), Decimal(4))
    b = Row(
        uuid.uuid4(), D1, "b", "Weld", "in_progress", ALICE, NOW - timedelta(hours=1), Decimal(6)
    )
    c = Row(uuid.uuid4(), D1, "c", "Paint", "blocked", None, NOW + timedelta(days=1), Decimal(2))
    x = Row(uuid.uuid4(), D2, "a", "Cut", "cancelled", None, None, Decimal(4))
    y = Row(uuid.uuid4(), D2, "b", "Weld", "ready", None, None, Decimal(6))
    edges = [(a.id, b.id), (b.id, c.id), (x.id, y.id)]
    project = ProjectRow(uuid.uuid4(), "active", NOW + timedelta(hours=5))
    dash = build_dashboard(
        project=project,
        deliverables=[
            DeliverableRow(D1, "Left", "DLV-000001", "in_progress"),
            DeliverableRow(D2, "Right", "DLV-000002", "in_progress"),
        ],
        tasks=[a, b, c, x, y],
        edges=edges,
        now=NOW,
    )
    assert dash.counts.done == 1 and dash.counts.cancelled == 1 and dash.counts.blocked == 1
    # 2 of 5 resolved; 4 of 18 non-cancelled hours done.
    assert dash.progress.by_count == 0.4
    assert dash.progress.total_hours == 18 and dash.progress.by_estimate == round(4 / 18, 4)
    assert [d.progress.by_count for d in dash.deliverables] == [round(1 / 3, 4), 0.5]
    assert [(t.title, [b.title for b in t.blocked_by]) for t in dash.blocked] == [
        ("Paint", ["Weld"])
    ]
    assert [t.id for t in dash.overdue] == [b.id]  # done work is never overdue
    assert [
        (w.assigned_to, w.open_tasks, w.in_progress, w.remaining_hours) for w in dash.workload
    ] == [(ALICE, 1, 1, 6.0), (None, 2, 0, 8.0)]
    # b (6 h) then c (2 h) = 8 h, longer than y (6 h).
    assert [s.id for s in dash.critical_path.steps] == [b.id, c.id]
    assert [s.finish_after_hours for s in dash.critical_path.steps] == [6.0, 8.0]
    assert dash.critical_path.estimated_finish == NOW + timedelta(hours=8)
    assert dash.late is True


def test_finished_project() -> None:
    a = Row(uuid.uuid4(), D1, "a", "Cut", "done", estimate_hours=Decimal(1))
    dash = build_dashboard(
        project=ProjectRow(uuid.uuid4(), "active", None),
        deliverables=[],
        tasks=[a],
        edges=[],
        now=NOW,
    )
    assert dash.critical_path.steps == [] and dash.critical_path.estimated_finish is None
    assert dash.progress.by_count == 1 and dash.progress.by_estimate == 1
    assert dash.late is None


@st.composite
def weighted_dags(draw: st.DrawFn) -> tuple[list[WorkItem[int]], dict[int, list[int]]]:
    n = draw(st.integers(1, 9))
    statuses = draw(
        st.lists(st.sampled_from(["ready", "blocked", "done", "cancelled"]), min_size=n, max_size=n)
    )
    hours = draw(st.lists(st.integers(0, 9), min_size=n, max_size=n))
    pairs = draw(
        st.sets(
            st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)).filter(lambda p: p[0] < p[1]),
            max_size=20,
        )
    )
    blockers: dict[int, list[int]] = {}
    for a, b in pairs:
        blockers.setdefault(b, []).append(a)
    items = [
        WorkItem(id=i, status=statuses[i], estimate_hours=float(hours[i]), order=f"{i:02d}")
        for i in range(n)
    ]
    return items, blockers


@settings(max_examples=200, deadline=None)
@given(weighted_dags())
def test_critical_path_is_the_longest_chain_of_remaining_work(
    graph: tuple[list[WorkItem[int]], dict[int, list[int]]],
) -> None:
    items, blockers = graph
    remaining = {i.id: i for i in items if i.status not in ("done", "cancelled")}

    def longest_to(k: int) -> float:  # brute force over every chain ending at k
        preds = [b for b in blockers.get(k, []) if b in remaining]
        best = max((longest_to(b) for b in preds), default=0.0)
        return best + float(remaining[k].estimate_hours or 0)

    cp = critical_path(items, blockers, as_of=NOW)
    if not remaining:
        assert cp.path == ()
        return
    assert cp.remaining_hours == max(longest_to(k) for k in remaining)
    # The path is a real chain of remaining tasks whose hours add up to the total.
    assert all(p in remaining for p in cp.path)
    assert all(a in blockers.get(b, []) for a, b in pairwise(cp.path))
    assert sum(float(remaining[p].estimate_hours or 0) for p in cp.path) == cp.remaining_hours
