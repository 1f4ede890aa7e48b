"""Mermaid rendering of a task graph."""

from __future__ import annotations

from task_svc.graph.mermaid import MermaidNode, render


def test_nodes_edges_groups_and_styles() -> None:
    nodes = [
        MermaidNode("t1", "Cut", "done", group="DLV-000001 #1"),
        MermaidNode("t2", 'Weld "frame" <A>', "ready", group="DLV-000001 #1"),
    ]
    text = render(nodes, [("t1", "t2"), ("t2", "unknown")])
    lines = text.splitlines()
    assert lines[0] == "flowchart TD"
    assert '    subgraph g1["DLV-000001 #35;1"]' in lines
    assert '        n0["Cut<br/>done"]:::done' in lines
    assert '        n1["Weld #quot;frame#quot; #lt;A#gt;<br/>ready"]:::ready' in lines
    assert "    n0 --> n1" in lines
    assert not any("unknown" in line for line in lines)
    assert any(line.startswith("    classDef done ") for line in lines)
    assert any(line.startswith("    classDef ready ") for line in lines)
    assert not any(line.startswith("    classDef blocked") for line in lines)


def test_empty_graph() -> None:
    assert render([], []) == "flowchart TD\n"
