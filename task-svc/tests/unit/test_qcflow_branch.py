"""The branch a QC reject re-blocks: the tasks strictly between an upstream task and the
inspected one on dependency paths, avoiding cancelled tasks (pure graph rule)."""

from __future__ import annotations

import uuid

from hypothesis import given
from hypothesis import strategies as st

from task_svc.tasks.rework import ancestors_of, branch_between

IDS = [uuid.UUID(int=i + 1) for i in range(12)]


def blockers_map(edges: set[tuple[int, int]]) -> dict[uuid.UUID, list[uuid.UUID]]:
    out: dict[uuid.UUID, list[uuid.UUID]] = {}
    for b, d in sorted(edges):
        out.setdefault(IDS[d], []).append(IDS[b])
    return out


def names(ids: set[uuid.UUID]) -> set[int]:
    return {IDS.index(i) for i in ids}


def test_qcflow_branch_of_a_chain_is_the_tasks_between() -> None:
    chain = blockers_map({(0, 1), (1, 2), (2, 3), (3, 4)})
    assert names(branch_between(chain, upstream=IDS[0], target=IDS[3])) == {1, 2}
    assert names(branch_between(chain, upstream=IDS[2], target=IDS[3])) == set()
    assert names(ancestors_of(chain, IDS[3])) == {0, 1, 2}


def test_qcflow_branch_of_a_diamond_takes_both_paths_and_nothing_beside() -> None:
    # 0 -> 1 -> 3, 0 -> 2 -> 3, 0 -> 5 (beside), 3 -> 4 (after), 6 -> 2 (another input)
    diamond = blockers_map({(0, 1), (0, 2), (1, 3), (2, 3), (0, 5), (3, 4), (6, 2)})
    assert names(branch_between(diamond, upstream=IDS[0], target=IDS[3])) == {1, 2}
    assert names(branch_between(diamond, upstream=IDS[6], target=IDS[3])) == {2}


def test_qcflow_branch_does_not_pass_through_cancelled_tasks() -> None:
    # 0 -> 1 -> 2 -> 4 and 0 -> 3 -> 4; 1 is cancelled: 2 is not reached from 0 any more.
    g = blockers_map({(0, 1), (1, 2), (2, 4), (0, 3), (3, 4)})
    assert names(branch_between(g, upstream=IDS[0], target=IDS[4], skip={IDS[1]})) == {3}


def test_qcflow_branch_is_empty_when_not_upstream() -> None:
    g = blockers_map({(0, 1), (2, 1)})
    assert branch_between(g, upstream=IDS[2], target=IDS[0]) == set()
    assert IDS[2] not in ancestors_of(g, IDS[0])


@st.composite
def dags(draw: st.DrawFn) -> tuple[int, set[tuple[int, int]], set[int]]:
    n = draw(st.integers(min_value=2, max_value=len(IDS)))
    edges = {(i, j) for j in range(n) for i in range(j) if draw(st.integers(0, 2)) == 0}
    skip = {i for i in range(n) if draw(st.integers(0, 5)) == 0}
    return n, edges, skip


def reachable(edges: set[tuple[int, int]], start: int, avoid: set[int]) -> set[int]:
    seen: set[int] = set()
    stack = [start]
    while stack:
        x = stack.pop()
        for b, d in edges:
            if b == x and d not in seen and d not in avoid:
                seen.add(d)
                stack.append(d)
    return seen


@given(dags(), st.data())
def test_qcflow_branch_matches_the_definition(
    dag: tuple[int, set[tuple[int, int]], set[int]], data: st.DataObject
) -> None:
    n, edges, skip = dag
    target = data.draw(st.integers(1, n - 1))
    upstream = data.draw(st.integers(0, target - 1))
    skip = skip - {upstream, target}
    got = names(
        branch_between(
            blockers_map(edges),
            upstream=IDS[upstream],
            target=IDS[target],
            skip={IDS[s] for s in skip},
        )
    )
    # x is between when a path upstream -> x -> target avoids the skipped tasks.
    forward = reachable(edges, upstream, skip)
    reversed_edges = {(d, b) for b, d in edges}
    backward = reachable(reversed_edges, target, skip)
    expected = (forward & backward) - {upstream, target} if target in forward else set()
    assert got == expected
