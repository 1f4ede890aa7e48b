"""Graph validation names every problem at once, with where it is."""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from template_svc.graph.validation import (
    DEPENDENCY_CYCLE,
    DUPLICATE_CHECKLIST_CODE,
    DUPLICATE_EDGE,
    DUPLICATE_NODE_KEY,
    EMPTY_GRAPH,
    PARENT_CYCLE,
    QC_CHECKLIST_MISSING,
    SELF_LOOP,
    UNKNOWN_EDGE_KEY,
    UNKNOWN_PARENT_KEY,
    strongly_connected_components,
    topological_order,
    validate_graph,
)


def node(key: str, **fields: Any) -> dict[str, Any]:
    return {"key": key, "title": key.upper(), **fields}


def edge(blocker: str, dependent: str) -> dict[str, str]:
    return {"blocker": blocker, "dependent": dependent}


def graph(
    keys: str, edges: Sequence[tuple[str, str]] = (), **per_node: dict[str, Any]
) -> dict[str, Any]:
    return {
        "nodes": [node(k, **per_node.get(k, {})) for k in keys.split()],
        "edges": [edge(b, d) for b, d in edges],
    }


def codes(g: dict[str, Any]) -> list[str]:
    return [p.code for p in validate_graph(g)]


CASES: list[tuple[str, dict[str, Any], list[str]]] = [
    ("a single node is fine", graph("a"), []),
    ("a diamond is fine", graph("a b c d", [("a", "b"), ("a", "c"), ("b", "d"), ("c", "d")]), []),
    ("empty graph", {"nodes": [], "edges": []}, [EMPTY_GRAPH]),
    ("duplicate key", graph("a b a"), [DUPLICATE_NODE_KEY]),
    ("self-loop", graph("a b", [("a", "a")]), [SELF_LOOP]),
    ("duplicate edge", graph("a b", [("a", "b"), ("a", "b")]), [DUPLICATE_EDGE]),
    ("unknown blocker", graph("a", [("x", "a")]), [UNKNOWN_EDGE_KEY]),
    ("unknown both ends", graph("a", [("x", "y")]), [UNKNOWN_EDGE_KEY, UNKNOWN_EDGE_KEY]),
    ("two-node cycle", graph("a b", [("a", "b"), ("b", "a")]), [DEPENDENCY_CYCLE]),
    ("unknown parent", graph("a b", b={"parent_key": "zz"}), [UNKNOWN_PARENT_KEY]),
    ("own parent", graph("a", a={"parent_key": "a"}), [PARENT_CYCLE]),
    (
        "parent cycle",
        graph("a b c", a={"parent_key": "b"}, b={"parent_key": "c"}, c={"parent_key": "a"}),
        [PARENT_CYCLE],
    ),
    ("qc without checklist", graph("a", a={"qc_required": True}), [QC_CHECKLIST_MISSING]),
    (
        "qc with checklist",
        graph("a", a={"qc_required": True, "qc_checklist": [{"code": "C1", "text": "t"}]}),
        [],
    ),
    (
        "checklist code twice",
        graph("a", a={"qc_checklist": [{"code": "C", "text": "x"}, {"code": "C", "text": "y"}]}),
        [DUPLICATE_CHECKLIST_CODE],
    ),
]


@pytest.mark.parametrize(("name", "g", "expected"), CASES, ids=[c[0] for c in CASES])
def test_each_problem_kind(name: str, g: dict[str, Any], expected: list[str]) -> None:
    assert codes(g) == expected


def test_two_cycles_and_a_dangling_edge_are_all_named() -> None:
    g = graph(
        "a b c d e f",
        [("a", "b"), ("b", "c"), ("c", "a"), ("d", "e"), ("e", "d"), ("f", "ghost")],
    )
    problems = validate_graph(g)
    assert sorted(p.code for p in problems) == [
        DEPENDENCY_CYCLE,
        DEPENDENCY_CYCLE,
        UNKNOWN_EDGE_KEY,
    ]
    cycles = sorted(p.path for p in problems if p.code == DEPENDENCY_CYCLE)  # type: ignore[type-var]
    assert cycles == [("a", "b", "c", "a"), ("d", "e", "d")]
    dangling = next(p for p in problems if p.code == UNKNOWN_EDGE_KEY)
    assert dangling.where == "edges[5].dependent"
    assert "ghost" in dangling.message
    cycle_message = next(p.message for p in problems if p.path == ("a", "b", "c", "a"))
    assert "a -> b -> c -> a" in cycle_message


def test_locations_point_at_the_offending_entry() -> None:
    g = graph("a b a", [("a", "b"), ("b", "b"), ("a", "b")], b={"parent_key": "nope"})
    where = {p.code: p.where for p in validate_graph(g)}
    assert where == {
        DUPLICATE_NODE_KEY: "nodes[2].key",
        UNKNOWN_PARENT_KEY: "nodes[1].parent_key",
        SELF_LOOP: "edges[1]",
        DUPLICATE_EDGE: "edges[2]",
    }


def test_a_cycle_through_a_larger_component_lists_every_member() -> None:
    # a -> b -> a and b -> c -> a share b: one component, reported once with all three keys.
    g = graph("a b c", [("a", "b"), ("b", "a"), ("b", "c"), ("c", "a")])
    (problem,) = validate_graph(g)
    assert problem.code == DEPENDENCY_CYCLE
    assert problem.path == ("a", "b", "a")
    assert set(problem.keys) == {"a", "b", "c"}


def test_topological_order_puts_blockers_first() -> None:
    g = graph("d c b a", [("a", "b"), ("a", "c"), ("b", "d"), ("c", "d")])
    assert topological_order(g) == ["a", "c", "b", "d"]
    with pytest.raises(ValueError):
        topological_order(graph("a b", [("a", "b"), ("b", "a")]))


def test_deep_chains_do_not_hit_the_recursion_limit() -> None:
    keys = [f"n{i}" for i in range(5000)]
    g = {
        "nodes": [node(k) for k in keys],
        "edges": [edge(a, b) for a, b in pairwise(keys)] + [edge(keys[-1], keys[0])],
    }
    (problem,) = validate_graph(g)
    assert problem.code == DEPENDENCY_CYCLE
    assert problem.path is not None and len(problem.path) == 5001


@st.composite
def random_graphs(draw: st.DrawFn) -> dict[str, Any]:
    n = draw(st.integers(min_value=1, max_value=12))
    keys = [f"k{i}" for i in range(n)]
    pairs = draw(st.lists(st.tuples(st.sampled_from(keys), st.sampled_from(keys)), max_size=30))
    return {"nodes": [node(k) for k in keys], "edges": [edge(a, b) for a, b in pairs]}


def _reachable(edges: set[tuple[str, str]], start: str, goal: str) -> bool:
    seen, todo = {start}, [start]
    while todo:
        v = todo.pop()
        for a, b in edges:
            if a != v:
                continue
            if b == goal:
                return True
            if b not in seen:
                seen.add(b)
                todo.append(b)
    return False


@settings(max_examples=300, deadline=None)
@given(random_graphs())
def test_cycle_reports_agree_with_reachability(g: dict[str, Any]) -> None:
    edges = {(e["blocker"], e["dependent"]) for e in g["edges"] if e["blocker"] != e["dependent"]}
    problems = validate_graph(g)
    cycles = [p for p in problems if p.code == DEPENDENCY_CYCLE]
    on_a_cycle = {k["key"] for k in g["nodes"] if _reachable(edges, k["key"], k["key"])}
    # Every key on a cycle is in exactly one reported component, and no other key is.
    reported = [k for p in cycles for k in p.keys]
    assert sorted(reported) == sorted(on_a_cycle)
    for p in cycles:
        assert p.path is not None and p.path[0] == p.path[-1]
        assert all(step in edges for step in pairwise(p.path))
    # A graph without cycles (and without self-loops) has a topological order respecting edges.
    if not cycles and all(p.code != SELF_LOOP for p in problems):
        order = {k: i for i, k in enumerate(topological_order(g))}
        assert all(order[a] < order[b] for a, b in edges)


@settings(max_examples=200, deadline=None)
@given(random_graphs())
def test_components_partition_the_nodes(g: dict[str, Any]) -> None:
    adjacency: dict[str, list[str]] = {n["key"]: [] for n in g["nodes"]}
    for e in g["edges"]:
        adjacency[e["blocker"]].append(e["dependent"])
    components = strongly_connected_components(adjacency)
    flat = [k for c in components for k in c]
    assert sorted(flat) == sorted(adjacency)
