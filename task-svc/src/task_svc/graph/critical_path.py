"""The critical path of the remaining work of a project, and when it should finish.

Remaining work is every task not yet resolved (done or cancelled). Resolved blockers no longer
hold anything back, so only edges between unresolved tasks count. Each task takes its estimate
(0 when it has none); tasks run as soon as their blockers finish (no resource limits), so the
path with the largest summed estimate decides the finish. Pure Python, no I/O.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)

RESOLVED = frozenset({"done", "cancelled"})


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


def critical_path(
    items: Sequence[WorkItem[K]],
    blockers: Mapping[K, Sequence[K]],
    *,
    as_of: datetime,
) -> CriticalPath[K]:
    """Longest chain (by estimate) through the unresolved tasks; `blockers[task]` = its blockers."""
    remaining = {i.id: i for i in items if i.status not in RESOLVED}
    if not remaining:
        return CriticalPath((), 0.0, None)
    preds: dict[K, list[K]] = {
        k: [b for b in blockers.get(k, ()) if b in remaining] for k in remaining
    }
    dependents: dict[K, list[K]] = {k: [] for k in remaining}
    indegree = {k: len(v) for k, v in preds.items()}
    for k, bs in preds.items():
        for b in bs:
            dependents[b].append(k)

    def rank(k: K) -> tuple[str, str]:
        return (remaining[k].order, str(k))

    queue = sorted((k for k, d in indegree.items() if d == 0), key=rank)
    finish: dict[K, float] = {}
    via: dict[K, K | None] = {}
    seen = 0
    while queue:
        k = queue.pop(0)
        seen += 1
        best: K | None = None
        for b in sorted(preds[k], key=rank):
            if best is None or finish[b] > finish[best]:
                best = b
        start = finish[best] if best is not None else 0.0
        finish[k] = start + float(remaining[k].estimate_hours or 0.0)
        via[k] = best
        for d in dependents[k]:
            indegree[d] -= 1
            if indegree[d] == 0:
                queue.append(d)
    if seen != len(remaining):
        raise ValueError("the task graph has a cycle")

    # The path ends at a task nothing else waits for (so a closing milestone is included).
    end: K | None = None
    for k in sorted((k for k in finish if not dependents[k]), key=rank):
        if end is None or finish[k] > finish[end]:
            end = k
    assert end is not None
    path: list[K] = []
    cursor: K | None = end
    while cursor is not None:
        path.append(cursor)
        cursor = via[cursor]
    path.reverse()
    hours = finish[end]
    return CriticalPath(tuple(path), hours, as_of + timedelta(hours=hours))
