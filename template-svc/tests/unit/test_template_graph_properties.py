"""Properties of graph validation over random graphs.

- Any DAG (edges only from earlier to later in some random topological order) validates with
  no problem at all.
- Adding one back edge to a DAG (v -> u where v is reachable from u, or an existing edge
  reversed) is always reported as a dependency cycle, and the cycle contains both ends.
"""

from __future__ import annotations

from collections.abc import Iterable
from itertools import pairwise
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from template_svc.graph.validation import DEPENDENCY_CYCLE, validate_graph


def _graph(keys: Iterable[str], edges: Iterable[tuple[str, str]]) -> dict[str, Any]:
    return {
        "nodes": [{"key": k, "title": f"Step {k}"} for k in keys],
        "edges": [{"blocker": b, "dependent": d} for b, d in edges],
    }


@st.composite
def random_dags(draw: st.DrawFn) -> tuple[list[str], list[tuple[str, str]]]:
    """Node keys in a random order and edges that only go forward in a random topological
    order: acyclic by construction, with no self-loops and no duplicate edges."""
    n = draw(st.integers(min_value=1, max_value=40))
    keys = [f"step-{i}" for i in range(n)]
    topo = draw(st.permutations(keys))
    forward = [(i, j) for i in range(n) for j in range(i + 1, n)]
    pairs = (
        draw(st.lists(st.sampled_from(forward), unique=True, max_size=min(120, len(forward))))
        if forward
        else []
    )
    edges = [(topo[i], topo[j]) for i, j in pairs]
    # The node list and the edge list are written in an order unrelated to the topology.
    listed = draw(st.permutations(keys))
    shuffled = draw(st.permutations(edges))
    return list(listed), list(shuffled)


def _descendants(edges: Iterable[tuple[str, str]], start: str) -> set[str]:
    out: dict[str, list[str]] = {}
    for b, d in edges:
        out.setdefault(b, []).append(d)
    seen: set[str] = set()
    todo = [start]
    while todo:
        for w in out.get(todo.pop(), ()):
            if w not in seen:
                seen.add(w)
                todo.append(w)
    return seen


@settings(max_examples=300, deadline=None)
@given(random_dags())
def test_random_dags_always_validate(dag: tuple[list[str], list[tuple[str, str]]]) -> None:
    keys, edges = dag
    assert validate_graph(_graph(keys, edges)) == []


@st.composite
def dags_with_a_back_edge(
    draw: st.DrawFn,
) -> tuple[list[str], list[tuple[str, str]], tuple[str, str]]:
    """A DAG with at least one edge, and a back edge v -> u where v is reachable from u."""
    keys, edges = draw(random_dags().filter(lambda d: bool(d[1])))
    reachable = sorted({(u, v) for u in keys for v in _descendants(edges, u)})
    u, v = draw(st.sampled_from(reachable))
    return keys, edges, (v, u)


@settings(max_examples=300, deadline=None)
@given(dags_with_a_back_edge())
def test_any_back_edge_is_caught_as_a_cycle(
    case: tuple[list[str], list[tuple[str, str]], tuple[str, str]],
) -> None:
    keys, edges, back = case
    problems = validate_graph(_graph(keys, [*edges, back]))
    assert [p.code for p in problems] == [DEPENDENCY_CYCLE]
    (cycle,) = problems
    v, u = back
    assert {u, v} <= set(cycle.keys)
    # Every cycle of a DAG plus one edge uses that edge, so the reported path does too.
    assert {u, v} <= set(cycle.path or ())
    assert cycle.path is not None and cycle.path[0] == cycle.path[-1]
    every_edge = {*edges, back}
    assert all(step in every_edge for step in pairwise(cycle.path))
    assert " -> ".join(cycle.path) in cycle.message


@settings(max_examples=200, deadline=None)
@given(random_dags().filter(lambda d: bool(d[1])), st.data())
def test_reversing_an_existing_edge_is_caught_as_a_cycle(
    dag: tuple[list[str], list[tuple[str, str]]], data: st.DataObject
) -> None:
    keys, edges = dag
    u, v = data.draw(st.sampled_from(edges))
    problems = validate_graph(_graph(keys, [*edges, (v, u)]))
    assert [p.code for p in problems] == [DEPENDENCY_CYCLE]
    (cycle,) = problems
    assert {u, v} <= set(cycle.keys)
    assert {u, v} <= set(cycle.path or ())
