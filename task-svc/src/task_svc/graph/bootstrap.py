"""Bootstrap planning: from a frozen template graph to the initial state of its tasks.

Every deliverable of a project gets the same plan (one task per node), so the plan is computed
once per project and then replicated with fresh ids. Pure Python, no I/O.

A milestone completes by itself once it is unblocked, so a milestone whose blockers are all
resolved at the start (or that has none) begins `done`, and it does not count as an open blocker
of its dependents.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any


class SnapshotError(ValueError):
    """The template graph cannot be bootstrapped (it should have been refused at publishing)."""


@dataclass(frozen=True)
class NodePlan:
    """The initial state of the task made from one node, the same in every deliverable."""

    index: int
    key: str
    blockers: tuple[int, ...]  # indexes of the node's blockers
    parent: int | None
    open_blockers: int
    status: str  # 'blocked' | 'ready' | 'done' (milestone auto-completed at the start)
    auto_completed: bool
    due_offset_hours: float | None

    @property
    def initial_status(self) -> str:
        """The status the creation event records (before a milestone's auto-completion)."""
        return "ready" if self.auto_completed else self.status


@dataclass(frozen=True)
class GraphPlan:
    nodes: tuple[NodePlan, ...]

    @property
    def edge_count(self) -> int:
        return sum(len(n.blockers) for n in self.nodes)

    def count(self, status: str) -> int:
        return sum(1 for n in self.nodes if n.status == status)


def topological_order(count: int, blockers: Sequence[Sequence[int]]) -> list[int]:
    """Kahn's order of nodes 0..count-1 (blockers first); raises SnapshotError on a cycle."""
    dependents: list[list[int]] = [[] for _ in range(count)]
    indegree = [0] * count
    for node, bs in enumerate(blockers):
        for b in bs:
            dependents[b].append(node)
            indegree[node] += 1
    queue = [n for n in range(count) if indegree[n] == 0]
    order: list[int] = []
    while queue:
        n = queue.pop()
        order.append(n)
        for d in dependents[n]:
            indegree[d] -= 1
            if indegree[d] == 0:
                queue.append(d)
    if len(order) != count:
        raise SnapshotError("the template graph has a cycle")
    return order


def plan_graph(nodes: Sequence[Mapping[str, Any]], edges: Sequence[Mapping[str, Any]]) -> GraphPlan:
    """Plan the tasks of one deliverable from the snapshot's nodes and edges."""
    index: dict[str, int] = {}
    for i, node in enumerate(nodes):
        key = str(node["key"])
        if key in index:
            raise SnapshotError(f"node key '{key}' appears twice")
        index[key] = i
    blockers: list[set[int]] = [set() for _ in nodes]
    for edge in edges:
        try:
            b, d = index[str(edge["blocker"])], index[str(edge["dependent"])]
        except KeyError as exc:
            raise SnapshotError(f"an edge names an unknown node {exc.args[0]!r}") from None
        if b == d:
            raise SnapshotError(f"node '{edge['blocker']}' blocks itself")
        blockers[d].add(b)
    ordered_blockers = [tuple(sorted(bs)) for bs in blockers]
    order = topological_order(len(nodes), ordered_blockers)

    resolved = [False] * len(nodes)
    open_count = [0] * len(nodes)
    for n in order:
        open_count[n] = sum(1 for b in ordered_blockers[n] if not resolved[b])
        is_milestone = nodes[n].get("work_kind") == "milestone"
        resolved[n] = is_milestone and open_count[n] == 0

    plans = []
    for i, node in enumerate(nodes):
        parent_key = node.get("parent_key")
        parent = index.get(str(parent_key)) if parent_key else None
        if parent_key and parent is None:
            raise SnapshotError(f"node '{node['key']}' names an unknown parent '{parent_key}'")
        status = "done" if resolved[i] else ("ready" if open_count[i] == 0 else "blocked")
        offset = node.get("due_offset_hours")
        plans.append(
            NodePlan(
                index=i,
                key=str(node["key"]),
                blockers=ordered_blockers[i],
                parent=parent,
                open_blockers=open_count[i],
                status=status,
                auto_completed=resolved[i],
                due_offset_hours=float(offset) if offset is not None else None,
            )
        )
    return GraphPlan(tuple(plans))


def due_at(start_at: datetime, offset_hours: float | None) -> datetime | None:
    return None if offset_hours is None else start_at + timedelta(hours=offset_hours)
