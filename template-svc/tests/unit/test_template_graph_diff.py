"""Diffs between graphs, and the canonical checksum."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from template_svc.graph.canonical import checksum
from template_svc.graph.diff import diff_graphs


def node(key: str, **fields: Any) -> dict[str, Any]:
    return {"key": key, "title": key.upper(), "priority": 50, **fields}


def test_added_removed_and_changed_field_by_field() -> None:
    old = {
        "nodes": [node("a"), node("b"), node("c", priority=10)],
        "edges": [{"blocker": "a", "dependent": "b"}, {"blocker": "b", "dependent": "c"}],
    }
    new = {
        "nodes": [node("a"), node("c", priority=90, title="Cut"), node("d")],
        "edges": [{"blocker": "a", "dependent": "c"}, {"blocker": "c", "dependent": "d"}],
    }
    d = diff_graphs(old, new)
    assert [n["key"] for n in d["nodes"]["added"]] == ["d"]
    assert [n["key"] for n in d["nodes"]["removed"]] == ["b"]
    assert d["nodes"]["changed"] == [
        {
            "key": "c",
            "changes": [
                {"field": "priority", "from": 10, "to": 90},
                {"field": "title", "from": "C", "to": "Cut"},
            ],
        }
    ]
    assert d["edges"]["added"] == [
        {"blocker": "a", "dependent": "c"},
        {"blocker": "c", "dependent": "d"},
    ]
    assert d["edges"]["removed"] == [
        {"blocker": "a", "dependent": "b"},
        {"blocker": "b", "dependent": "c"},
    ]


def test_same_graph_has_an_empty_diff() -> None:
    g = {"nodes": [node("a"), node("b")], "edges": [{"blocker": "a", "dependent": "b"}]}
    d = diff_graphs(g, g)
    assert d["nodes"] == {"added": [], "removed": [], "changed": []}
    assert d["edges"] == {"added": [], "removed": []}


graphs = st.builds(
    lambda keys, pairs: {
        "nodes": [node(k) for k in keys],
        "edges": [{"blocker": a, "dependent": b} for a, b in pairs],
    },
    st.lists(st.sampled_from("abcdef"), unique=True, max_size=6),
    st.lists(st.tuples(st.sampled_from("abcdef"), st.sampled_from("abcdef")), max_size=8),
)


@settings(max_examples=200, deadline=None)
@given(graphs, st.randoms(use_true_random=False))
def test_checksum_ignores_order_but_not_content(g: dict[str, Any], rnd: Any) -> None:
    shuffled = {"nodes": list(g["nodes"]), "edges": list(g["edges"])}
    rnd.shuffle(shuffled["nodes"])
    rnd.shuffle(shuffled["edges"])
    assert checksum(shuffled) == checksum(g)
    changed = {**g, "nodes": [*g["nodes"], node("zz")]}
    assert checksum(changed) != checksum(g)


@settings(max_examples=200, deadline=None)
@given(graphs, graphs)
def test_applying_a_diff_gives_the_new_key_and_edge_sets(
    a: dict[str, Any], b: dict[str, Any]
) -> None:
    d = diff_graphs(a, b)
    keys = {n["key"] for n in a["nodes"]}
    keys -= {n["key"] for n in d["nodes"]["removed"]}
    keys |= {n["key"] for n in d["nodes"]["added"]}
    assert keys == {n["key"] for n in b["nodes"]}
    edges = {(e["blocker"], e["dependent"]) for e in a["edges"]}
    edges -= {(e["blocker"], e["dependent"]) for e in d["edges"]["removed"]}
    edges |= {(e["blocker"], e["dependent"]) for e in d["edges"]["added"]}
    assert edges == {(e["blocker"], e["dependent"]) for e in b["edges"]}
