"""Differences between two graphs: nodes and edges added, removed, and nodes changed field by
field. Pure Python over plain graphs."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def diff_graphs(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    """What changes going from `old` to `new`.

    Nodes are matched by key; a node whose fields differ is `changed`, with one entry per field
    (`{"field", "from", "to"}`). Edges are identified by (blocker, dependent).
    """
    old_nodes = {n["key"]: n for n in old.get("nodes") or []}
    new_nodes = {n["key"]: n for n in new.get("nodes") or []}
    added = [n for k, n in new_nodes.items() if k not in old_nodes]
    removed = [n for k, n in old_nodes.items() if k not in new_nodes]
    changed = []
    for key, before in old_nodes.items():
        after = new_nodes.get(key)
        if after is None:
            continue
        fields = [
            {"field": f, "from": before.get(f), "to": after.get(f)}
            for f in sorted(set(before) | set(after))
            if before.get(f) != after.get(f)
        ]
        if fields:
            changed.append({"key": key, "changes": fields})

    def edge_set(graph: Mapping[str, Any]) -> list[tuple[str, str]]:
        seen: dict[tuple[str, str], None] = {}
        for e in graph.get("edges") or []:
            seen.setdefault((e["blocker"], e["dependent"]), None)
        return list(seen)

    old_edges, new_edges = edge_set(old), edge_set(new)
    old_set, new_set = set(old_edges), set(new_edges)
    return {
        "nodes": {"added": added, "removed": removed, "changed": changed},
        "edges": {
            "added": [
                {"blocker": b, "dependent": d} for b, d in new_edges if (b, d) not in old_set
            ],
            "removed": [
                {"blocker": b, "dependent": d} for b, d in old_edges if (b, d) not in new_set
            ],
        },
    }
