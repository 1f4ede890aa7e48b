"""Planning a project's move to another template version: pure rules, no I/O.

From the project's current tasks and dependency rows, the graph of its pinned version (the
snapshot), the target version's graph and the rules, `plan_migration` decides every consequence:
which tasks are kept (and which of their fields change), added (and their initial status),
cancelled or kept as orphans, how every task's blockers and status change and why, and which
conflicts the rules leave unsettled (one deliverable at a time: `deliverable_planning.py`).
Applying a migration recomputes the same plan on the locked rows and writes exactly what it
says.

The statuses follow the state machine's cascade rules: a task is `blocked` exactly while it has
an unresolved blocker, a milestone completes by itself once free, a started task that gets a
blocker back is left where it is and flagged (`blocker_reopened`), and a deliverable whose tasks
are all resolved is ready for sign-off. A signed-off deliverable is never touched. Each task's
`status` is what the migration itself writes and `final_status` what it is once the cascade
code has run on those rows (a task left blocked with no open blocker is freed by it).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from task_svc.project_migrations.deliverable_planning import DeliverablePlanner
from task_svc.project_migrations.plan_model import (
    NODE_FIELDS,
    NOT_STARTED,
    STARTED,
    Conflict,
    DeliverablePlan,
    DeliverableState,
    Graph,
    MigrationPlan,
    NewTask,
    Rules,
    RulesError,
    TaskOutcome,
    TaskState,
    node_fields,
    same_value,
)
from task_svc.tasks.fsm import RESOLVED

__all__ = [
    "NODE_FIELDS",
    "NOT_STARTED",
    "RESOLVED",
    "STARTED",
    "Conflict",
    "DeliverablePlan",
    "DeliverableState",
    "Graph",
    "MigrationPlan",
    "NewTask",
    "Rules",
    "RulesError",
    "TaskOutcome",
    "TaskState",
    "check_rules",
    "node_fields",
    "plan_migration",
]


def check_rules(rules: Rules, old: Graph, new: Graph) -> None:
    """Rules that cannot apply to these versions: raise RulesError naming the rule."""
    targets: dict[str, str] = {}
    for source, target in rules.rename.items():
        where = f"rules.rename.{source}"
        if source not in old.nodes:
            raise RulesError(
                f"rename of '{source}': the project's version has no node '{source}'",
                code="RENAME_SOURCE_UNKNOWN",
                field=where,
            )
        if target not in new.nodes:
            raise RulesError(
                f"rename of '{source}' to '{target}': the target version has no node '{target}'",
                code="RENAME_TARGET_UNKNOWN",
                field=where,
            )
        if target in old.nodes and target != source:
            raise RulesError(
                f"rename of '{source}' to '{target}': '{target}' is already a node of the "
                "project's version (a key can only be renamed to a new key)",
                code="RENAME_TARGET_TAKEN",
                field=where,
            )
        if target in targets:
            raise RulesError(
                f"'{targets[target]}' and '{source}' are both renamed to '{target}'",
                code="RENAME_TARGET_TAKEN",
                field=where,
            )
        targets[target] = source


def plan_migration(
    *,
    old: Graph,
    new: Graph,
    rules: Rules,
    tasks: Sequence[TaskState],
    deliverables: Sequence[DeliverableState],
    edges: Sequence[tuple[uuid.UUID, uuid.UUID]],  # (task, blocker) rows of the project
    start_at: datetime,
    new_id: Callable[[], uuid.UUID] = uuid.uuid4,
) -> MigrationPlan:
    """The whole plan. Raises RulesError for rules that do not fit, SnapshotError for a cycle."""
    check_rules(rules, old, new)
    graphs = _GraphChange.of(old, new, rules, start_at)
    result = graphs.plan()
    planner = DeliverablePlanner(
        old=old,
        new=new,
        order=new.order(),
        rules=rules,
        old_to_new=graphs.old_to_new,
        new_fields=graphs.new_fields,
        changed=result.nodes_changed,
        old_blockers=graphs.old_blockers(),
        conflicts=result.conflicts,
        new_id=new_id,
    )
    by_deliverable, edges_of = _per_deliverable(tasks, deliverables, edges)
    for d in deliverables:
        result.deliverables.append(planner.plan(d, by_deliverable[d.id], edges_of[d.id]))
    return result


@dataclass(frozen=True)
class _GraphChange:
    """The template-level change between the two versions, keys mapped through the renames."""

    old: Graph
    new: Graph
    renamed: dict[str, str]
    old_to_new: dict[str, str]
    new_fields: dict[str, dict[str, Any]]
    start_at: datetime

    @classmethod
    def of(cls, old: Graph, new: Graph, rules: Rules, start_at: datetime) -> _GraphChange:
        renamed = dict(rules.rename)
        return cls(
            old=old,
            new=new,
            renamed=renamed,
            old_to_new={k: renamed.get(k, k) for k in old.nodes},
            new_fields={k: node_fields(n, start_at) for k, n in new.nodes.items()},
            start_at=start_at,
        )

    def plan(self) -> MigrationPlan:
        """The plan with the graph's changes, its deliverables still to be planned."""
        old, new, old_to_new = self.old, self.new, self.old_to_new
        new_to_old = {v: k for k, v in old_to_new.items() if v in new.nodes}
        old_edges_mapped = {(old_to_new[b], old_to_new[d]) for b, d in old.edges}
        return MigrationPlan(
            deliverables=[],
            conflicts=[],
            nodes_added=[k for k in new.nodes if k not in new_to_old],
            nodes_removed=[k for k in old.nodes if old_to_new[k] not in new.nodes],
            nodes_changed=self.changed_fields(new_to_old),
            edges_added=sorted(new.edges - old_edges_mapped),
            edges_removed=sorted(old_edges_mapped - new.edges),
            renamed={k: v for k, v in self.renamed.items() if k != v},
        )

    def changed_fields(self, new_to_old: dict[str, str]) -> dict[str, list[str]]:
        """Kept nodes whose fields change: new key -> the fields."""
        changed: dict[str, list[str]] = {}
        for key, fields_after in self.new_fields.items():
            source = new_to_old.get(key)
            if source is None:
                continue
            before = node_fields(self.old.nodes[source], self.start_at)
            diff = [f for f in NODE_FIELDS if not same_value(before[f], fields_after[f])]
            if diff:
                changed[key] = diff
        return changed

    def old_blockers(self) -> dict[str, set[str]]:
        """The blockers every node had in the project's version, under their new keys."""
        out: dict[str, set[str]] = {}
        for b, dep in self.old.edges:
            out.setdefault(self.old_to_new[dep], set()).add(self.old_to_new[b])
        return out


def _per_deliverable(
    tasks: Sequence[TaskState],
    deliverables: Sequence[DeliverableState],
    edges: Sequence[tuple[uuid.UUID, uuid.UUID]],
) -> tuple[dict[uuid.UUID, list[TaskState]], dict[uuid.UUID, set[tuple[uuid.UUID, uuid.UUID]]]]:
    """The project's tasks and dependency rows, by deliverable."""
    by_deliverable: dict[uuid.UUID, list[TaskState]] = {d.id: [] for d in deliverables}
    deliverable_of: dict[uuid.UUID, uuid.UUID] = {}
    for t in tasks:
        by_deliverable.setdefault(t.deliverable_id, []).append(t)
        deliverable_of[t.id] = t.deliverable_id
    edges_of: dict[uuid.UUID, set[tuple[uuid.UUID, uuid.UUID]]] = {
        d.id: set() for d in deliverables
    }
    for t_id, b_id in edges:
        d_id = deliverable_of.get(t_id)
        if d_id is not None:
            edges_of.setdefault(d_id, set()).add((t_id, b_id))
    return by_deliverable, edges_of
