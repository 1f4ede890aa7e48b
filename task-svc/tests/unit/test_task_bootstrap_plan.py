"""Bootstrap planning: open_blockers, the blocked/ready split and milestones, on any DAG."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from task_svc.graph.bootstrap import SnapshotError, due_at, plan_graph


def node(key: str, **kw: object) -> dict[str, object]:
    return {"key": key, "title": key.title(), **kw}


def test_chain_with_a_fork() -> None:
    nodes = [node("cut"), node("weld"), node("paint"), node("pack")]
    edges = [
        {"blocker": "cut", "dependent": "weld"},
        {"blocker": "cut", "dependent": "paint"},
        {"blocker": "weld", "dependent": "pack"},
        {"blocker": "paint", "dependent": "pack"},
    ]
    plan = plan_graph(nodes, edges)
    by_key = {p.key: p for p in plan.nodes}
    assert by_key["cut"].status == "ready" and by_key["cut"].open_blockers == 0
    assert by_key["weld"].status == "blocked" and by_key["weld"].open_blockers == 1
    assert by_key["pack"].open_blockers == 2
    assert plan.count("ready") == 1 and plan.count("blocked") == 3
    assert plan.edge_count == 4


def test_milestone_without_open_blockers_completes_at_once_and_frees_dependents() -> None:
    nodes = [
        node("kickoff", work_kind="milestone"),
        node("cut"),
        node("gate", work_kind="milestone"),
    ]
    edges = [{"blocker": "kickoff", "dependent": "cut"}, {"blocker": "cut", "dependent": "gate"}]
    by_key = {p.key: p for p in plan_graph(nodes, edges).nodes}
    assert by_key["kickoff"].status == "done" and by_key["kickoff"].auto_completed
    assert by_key["kickoff"].initial_status == "ready"
    assert by_key["cut"].status == "ready" and by_key["cut"].open_blockers == 0
    assert by_key["gate"].status == "blocked" and not by_key["gate"].auto_completed


def test_parent_links_and_due_dates() -> None:
    nodes = [node("frame"), node("weld", parent_key="frame", due_offset_hours=36)]
    plan = plan_graph(nodes, [])
    weld = plan.nodes[1]
    assert weld.parent == 0
    start = datetime(2026, 12, 1, 8, tzinfo=UTC)
    assert due_at(start, weld.due_offset_hours) == datetime(2026, 12, 2, 20, tzinfo=UTC)
    assert due_at(start, plan.nodes[0].due_offset_hours) is None


@pytest.mark.parametrize(
    ("nodes", "edges", "message"),
    [
        ([node("a"), node("a")], [], "appears twice"),
        ([node("a")], [{"blocker": "a", "dependent": "zz"}], "unknown node"),
        ([node("a")], [{"blocker": "a", "dependent": "a"}], "blocks itself"),
        (
            [node("a"), node("b")],
            [{"blocker": "a", "dependent": "b"}, {"blocker": "b", "dependent": "a"}],
            "cycle",
        ),
        ([node("a", parent_key="nope")], [], "unknown parent"),
    ],
)
def test_broken_snapshots_are_refused(
    nodes: list[dict[str, object]], edges: list[dict[str, str]], message: str
) -> None:
    with pytest.raises(SnapshotError, match=message):
        plan_graph(nodes, edges)


@st.composite
def dags(draw: st.DrawFn) -> tuple[list[dict[str, object]], list[dict[str, str]]]:
    """Random DAGs: edges only go from a lower to a higher index (then shuffled)."""
    n = draw(st.integers(min_value=1, max_value=25))
    kinds = draw(st.lists(st.sampled_from(["work", "qc", "milestone"]), min_size=n, max_size=n))
    nodes = [node(f"n{i}", work_kind=kinds[i]) for i in range(n)]
    pairs = draw(
        st.sets(
            st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)).filter(lambda p: p[0] < p[1]),
            max_size=60,
        )
    )
    edges = [{"blocker": f"n{a}", "dependent": f"n{b}"} for a, b in pairs]
    order = draw(st.permutations(range(n)))
    return [nodes[i] for i in order], edges


@settings(max_examples=200, deadline=None)
@given(dags())
def test_invariants_on_random_dags(
    graph: tuple[list[dict[str, object]], list[dict[str, str]]],
) -> None:
    nodes, edges = graph
    plan = plan_graph(nodes, edges)
    by_key = {p.key: p for p in plan.nodes}
    for p in plan.nodes:
        blockers = [plan.nodes[b] for b in p.blockers]
        unresolved = [b for b in blockers if b.status != "done"]
        # open_blockers counts exactly the unresolved blockers.
        assert p.open_blockers == len(unresolved)
        # blocked <=> open blockers; done only for milestones that nothing holds back.
        if p.status == "done":
            assert nodes[p.index]["work_kind"] == "milestone" and p.open_blockers == 0
        elif p.open_blockers == 0:
            assert p.status == "ready"
            assert nodes[p.index]["work_kind"] != "milestone"
        else:
            assert p.status == "blocked"
    # Every edge is kept, once.
    assert plan.edge_count == len(edges)
    # Some task can always start unless everything is already done or the graph is empty.
    assert any(p.status in ("ready", "done") for p in by_key.values())
