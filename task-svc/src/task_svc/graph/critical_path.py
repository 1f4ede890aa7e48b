"""The critical path of the remaining work of a project, and when it should finish.

Remaining work is every task not yet resolved (done or cancelled). Resolved blockers no longer
hold anything back, so only edges between unresolved tasks count. Each task takes its estimate
(0 when it has none); tasks run as soon as their blockers finish (no resource limits), so the
path with the largest summed estimate decides the finish. Pure Python, no I/O.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Generic, TypeVar

from task_svc.tasks.fsm import RESOLVED

K = TypeVar("K", bound=Hashable)


@dataclass(frozen=True)
class WorkItem(Generic[K]):
    id: K
    status: str
    estimate_hours: float | None
    order: str = ""  # tie-breaker between equally long paths (e.g. title or key)


@dataclass(frozen=True)
class CriticalPath(Generic[K]):
    path: tuple[K, ...]  # first to last
    remaining_hours: float
    estimated_finish: datetime | None  # None when nothing remains


def longest_path(
    hours: Sequence[float], edge_from: Sequence[int], edge_to: Sequence[int]
) -> tuple[list[int], float]:
    """The longest chain (by `hours`) of a DAG on nodes 0..n-1, ranked by their index.

    Edges go from a blocker to its dependent. Returns (the chain's nodes, its total hours);
    ties between equally long chains go to the lower index. O(V + E), with flat integer lists
    only (no per-node containers: a big graph must not wake the garbage collector).
    """
    count = len(hours)
    if count == 0:
        return [], 0.0
    # Dependents of node i are adjacent[first[i]:first[i + 1]] (counting sort by blocker).
    first = [0] * (count + 1)
    for b in edge_from:
        first[b + 1] += 1
    for i in range(count):
        first[i + 1] += first[i]
    fill = first[:-1]
    adjacent = [0] * len(edge_from)
    indegree = [0] * count
    for b, d in zip(edge_from, edge_to, strict=True):
        adjacent[fill[b]] = d
        fill[b] += 1
        indegree[d] += 1

    begin = [0.0] * count  # when a task can start: the latest finish among its blockers
    finish = [0.0] * count
    via = [-1] * count
    queue = deque(i for i in range(count) if indegree[i] == 0)
    seen = 0
    while queue:
        i = queue.popleft()
        seen += 1
        f = begin[i] + hours[i]
        finish[i] = f
        for k in range(first[i], first[i + 1]):
            d = adjacent[k]
            p = via[d]
            if p < 0 or f > begin[d] or (f == begin[d] and i < p):
                begin[d] = f
                via[d] = i
            indegree[d] -= 1
            if indegree[d] == 0:
                queue.append(d)
    if seen != count:
        raise ValueError("the task graph has a cycle")

    # The path ends at a task nothing else waits for (so a closing milestone is included).
    end = -1
    for i in range(count):
        if first[i] == first[i + 1] and (end < 0 or finish[i] > finish[end]):
            end = i
    path: list[int] = []
    cursor = end
    while cursor >= 0:
        path.append(cursor)
        cursor = via[cursor]
    path.reverse()
    return path, finish[end]


def critical_path(
    items: Sequence[WorkItem[K]],
    blockers: Mapping[K, Sequence[K]],
    *,
    as_of: datetime,
) -> CriticalPath[K]:
    """Longest chain (by estimate) through the unresolved tasks; `blockers[task]` = its blockers.

    The tasks are ranked by (`order`, id); ties between equally long chains go to the lower rank.
    """
    ranked = sorted(
        (i for i in items if i.status not in RESOLVED), key=lambda i: (i.order, str(i.id))
    )
    if not ranked:
        return CriticalPath((), 0.0, None)
    index = {item.id: n for n, item in enumerate(ranked)}
    edge_from: list[int] = []
    edge_to: list[int] = []
    for n, item in enumerate(ranked):
        for b in blockers.get(item.id, ()):
            i = index.get(b)
            if i is not None:
                edge_from.append(i)
                edge_to.append(n)
    path, hours = longest_path([float(i.estimate_hours or 0.0) for i in ranked], edge_from, edge_to)
    return CriticalPath(tuple(ranked[n].id for n in path), hours, as_of + timedelta(hours=hours))
