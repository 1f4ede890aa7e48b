"""Graph validation: every problem of a graph at once, each with where it is. Pure Python.

Works on the plain graph (`{"nodes": [...], "edges": [...]}` as stored), so it checks stored
drafts and incoming requests alike. Dependency cycles are found per strongly connected
component: each component that is not a single node is one problem, reported with one cycle
through it (`a -> b -> c -> a`) and the list of every key caught in it; cycles are listed in
the order of their first node. Everything is linear in nodes + edges: Kahn's algorithm settles
an acyclic graph, iterative Tarjan only looks at what Kahn could not order.
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

EMPTY_GRAPH = "EMPTY_GRAPH"
DUPLICATE_NODE_KEY = "DUPLICATE_NODE_KEY"
UNKNOWN_EDGE_KEY = "UNKNOWN_EDGE_KEY"
UNKNOWN_PARENT_KEY = "UNKNOWN_PARENT_KEY"
SELF_LOOP = "SELF_LOOP"
DUPLICATE_EDGE = "DUPLICATE_EDGE"
DEPENDENCY_CYCLE = "DEPENDENCY_CYCLE"
PARENT_CYCLE = "PARENT_CYCLE"
QC_CHECKLIST_MISSING = "QC_CHECKLIST_MISSING"
DUPLICATE_CHECKLIST_CODE = "DUPLICATE_CHECKLIST_CODE"


@dataclass(frozen=True)
class Problem:
    code: str
    message: str
    where: str
    keys: tuple[str, ...] = ()
    path: tuple[str, ...] | None = None
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "code": self.code,
            "message": self.message,
            "where": self.where,
            "keys": list(self.keys),
        }
        if self.path is not None:
            out["path"] = list(self.path)
        return out


def validate_graph(graph: Mapping[str, Any]) -> list[Problem]:
    """Every problem of the graph, in a stable order; an empty list means it can be published."""
    nodes: Sequence[Mapping[str, Any]] = graph.get("nodes") or []
    edges: Sequence[Mapping[str, Any]] = graph.get("edges") or []
    problems: list[Problem] = []
    if not nodes:
        problems.append(Problem(EMPTY_GRAPH, "the graph has no nodes: add at least one", "nodes"))

    index: dict[str, int] = {}
    for i, node in enumerate(nodes):
        key = node["key"]
        if key in index:
            problems.append(
                Problem(
                    DUPLICATE_NODE_KEY,
                    f"node key {key!r} is used again (first at nodes[{index[key]}]); "
                    "keys must be unique in a version",
                    f"nodes[{i}].key",
                    (key,),
                )
            )
        else:
            index[key] = i
        if node.get("qc_required") or node.get("qc_checklist"):
            problems.extend(_checklist_problems(i, node))

    problems.extend(_parent_problems(nodes, index))

    seen_edges: dict[tuple[str, str], int] = {}
    adjacency: dict[str, list[str]] = {key: [] for key in index}
    for i, edge in enumerate(edges):
        blocker, dependent = edge["blocker"], edge["dependent"]
        if blocker not in index or dependent not in index:
            for end, k in (("blocker", blocker), ("dependent", dependent)):
                if k not in index:
                    problems.append(
                        Problem(
                            UNKNOWN_EDGE_KEY,
                            f"edge {blocker} -> {dependent}: {end} {k!r} is not a node of this "
                            "graph",
                            f"edges[{i}].{end}",
                            (k,),
                        )
                    )
            continue
        if blocker == dependent:
            problems.append(
                Problem(
                    SELF_LOOP,
                    f"edge {blocker} -> {dependent}: a node cannot block itself",
                    f"edges[{i}]",
                    (blocker,),
                )
            )
            continue
        pair = (blocker, dependent)
        first = seen_edges.setdefault(pair, i)
        if first != i:
            problems.append(
                Problem(
                    DUPLICATE_EDGE,
                    f"edge {blocker} -> {dependent} is listed again (first at edges[{first}])",
                    f"edges[{i}]",
                    pair,
                )
            )
            continue
        adjacency[blocker].append(dependent)

    problems.extend(_cycle_problems(adjacency, index))
    return problems


def _cycle_problems(adjacency: dict[str, list[str]], index: Mapping[str, int]) -> list[Problem]:
    """One DEPENDENCY_CYCLE problem per strongly connected component of two or more nodes.

    Kahn's algorithm first peels off every node that is on no cycle and not downstream of one
    (all of an acyclic graph, in linear time); Tarjan then only runs on what is left.
    """
    tangled = nodes_not_topologically_sortable(adjacency)
    if not tangled:
        return []
    sub = {
        k: [w for w in adjacency[k] if w in tangled] for k in sorted(tangled, key=index.__getitem__)
    }
    found: list[tuple[int, Problem]] = []
    for component in strongly_connected_components(sub):
        if len(component) < 2:
            continue
        members = set(component)
        ordered = sorted(component, key=index.__getitem__)
        start = ordered[0]
        cycle = _shortest_cycle(sub, start, members)
        found.append(
            (
                index[start],
                Problem(
                    DEPENDENCY_CYCLE,
                    f"dependency cycle: {' -> '.join(cycle)}"
                    + (
                        f" (nodes caught in this cycle: {', '.join(ordered)})"
                        if len(ordered) > len(cycle) - 1
                        else ""
                    ),
                    "edges",
                    tuple(ordered),
                    tuple(cycle),
                ),
            )
        )
    found.sort(key=lambda item: item[0])
    return [p for _, p in found]


def nodes_not_topologically_sortable(adjacency: Mapping[str, Sequence[str]]) -> set[str]:
    """The nodes Kahn's algorithm cannot order: those on a cycle or downstream of one.

    Empty exactly when the graph is acyclic. `adjacency` lists each node's dependents (every
    dependent must itself be a key of `adjacency`).
    """
    indegree = dict.fromkeys(adjacency, 0)
    for successors in adjacency.values():
        for w in successors:
            indegree[w] += 1
    ready = [k for k, d in indegree.items() if d == 0]
    while ready:
        v = ready.pop()
        del indegree[v]
        for w in adjacency[v]:
            indegree[w] -= 1
            if indegree[w] == 0:
                ready.append(w)
    return set(indegree)


def _checklist_problems(i: int, node: Mapping[str, Any]) -> list[Problem]:
    problems: list[Problem] = []
    checklist: Sequence[Mapping[str, Any]] = node.get("qc_checklist") or []
    key = node["key"]
    if node.get("qc_required") and not checklist:
        problems.append(
            Problem(
                QC_CHECKLIST_MISSING,
                f"node {key!r} requires QC but has no qc_checklist: add at least one item",
                f"nodes[{i}].qc_checklist",
                (key,),
            )
        )
    codes: set[str] = set()
    for j, item in enumerate(checklist):
        if item["code"] in codes:
            problems.append(
                Problem(
                    DUPLICATE_CHECKLIST_CODE,
                    f"node {key!r}: checklist code {item['code']!r} is used twice",
                    f"nodes[{i}].qc_checklist[{j}].code",
                    (key,),
                )
            )
        codes.add(item["code"])
    return problems


def _parent_problems(nodes: Sequence[Mapping[str, Any]], index: Mapping[str, int]) -> list[Problem]:
    problems: list[Problem] = []
    parent: dict[str, str] = {}
    for i, node in enumerate(nodes):
        p = node.get("parent_key")
        if p is None:
            continue
        if p not in index:
            problems.append(
                Problem(
                    UNKNOWN_PARENT_KEY,
                    f"node {node['key']!r}: parent_key {p!r} is not a node of this graph",
                    f"nodes[{i}].parent_key",
                    (node["key"], p),
                )
            )
        elif index.get(node["key"]) == i:  # duplicates are reported already
            parent[node["key"]] = p
    # Each node has one parent, so following parents from any node either ends or loops.
    state: dict[str, int] = {}  # 1: on the current walk, 2: done
    for start in sorted(parent, key=index.__getitem__):
        walk: list[str] = []
        key: str | None = start
        while key is not None and state.get(key) is None:
            state[key] = 1
            walk.append(key)
            key = parent.get(key)
        if key is not None and state.get(key) == 1:
            loop = walk[walk.index(key) :]
            first = min(loop, key=index.__getitem__)
            rotated = loop[loop.index(first) :] + loop[: loop.index(first)]
            path = (*rotated, first)
            problems.append(
                Problem(
                    PARENT_CYCLE,
                    f"parent cycle: {' -> '.join(path)} (each node names the next as its parent)",
                    f"nodes[{index[first]}].parent_key",
                    tuple(rotated),
                    path,
                )
            )
        for k in walk:
            state[k] = 2
    return problems


def strongly_connected_components(adjacency: Mapping[str, Sequence[str]]) -> list[list[str]]:
    """Tarjan's algorithm, iterative (no recursion limit on deep graphs)."""
    index_of: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    components: list[list[str]] = []
    counter = 0
    for root in adjacency:
        if root in index_of:
            continue
        work: list[tuple[str, int]] = [(root, 0)]
        while work:
            v, child = work.pop()
            if child == 0:
                index_of[v] = low[v] = counter
                counter += 1
                stack.append(v)
                on_stack.add(v)
            successors = adjacency.get(v, ())
            recurse = False
            for i in range(child, len(successors)):
                w = successors[i]
                if w not in index_of:
                    work.append((v, i + 1))
                    work.append((w, 0))
                    recurse = True
                    break
                if w in on_stack:
                    low[v] = min(low[v], index_of[w])
            if recurse:
                continue
            if low[v] == index_of[v]:
                component: list[str] = []
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    component.append(w)
                    if w == v:
                        break
                components.append(component)
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[v])
    return components


def _shortest_cycle(
    adjacency: Mapping[str, Sequence[str]], start: str, members: set[str]
) -> list[str]:
    """The shortest path start -> ... -> start inside one strongly connected component."""
    came_from: dict[str, str] = {}
    queue = deque([start])
    while queue:
        v = queue.popleft()
        for w in adjacency.get(v, ()):
            if w not in members:
                continue
            if w == start:
                path = [v]
                while path[-1] != start:
                    path.append(came_from[path[-1]])
                path.reverse()
                return [*path, start]
            if w not in came_from:
                came_from[w] = v
                queue.append(w)
    raise ValueError(f"{start!r} is on no cycle")  # unreachable for a real component


def topological_order(graph: Mapping[str, Any]) -> list[str]:
    """Node keys with every blocker before its dependents (Kahn; ties in node order).

    Only meaningful for a valid graph; raises ValueError on a cycle.
    """
    keys = [n["key"] for n in graph.get("nodes") or []]
    position = {k: i for i, k in enumerate(keys)}
    indegree = dict.fromkeys(keys, 0)
    out: dict[str, list[str]] = {k: [] for k in keys}
    for edge in {(e["blocker"], e["dependent"]) for e in graph.get("edges") or []}:
        out[edge[0]].append(edge[1])
        indegree[edge[1]] += 1
    ready = [(position[k], k) for k in keys if indegree[k] == 0]
    heapq.heapify(ready)
    order: list[str] = []
    while ready:
        _, k = heapq.heappop(ready)
        order.append(k)
        for d in out[k]:
            indegree[d] -= 1
            if indegree[d] == 0:
                heapq.heappush(ready, (position[d], d))
    if len(order) != len(keys):
        raise ValueError("the graph has a dependency cycle")
    return order
