"""What a migration plan is made of: the rules, the project's tasks and the two versions'
graphs as the planner reads them, and the plan it answers (per deliverable, per task). Pure
data, no I/O; `planning.py` makes the plan.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from functools import cached_property
from typing import Any, Literal

from task_svc.graph.bootstrap import SnapshotError, topological_order

RemovedStarted = Literal["refuse", "cancel", "keep_as_orphan"]
BlockerAddedToStarted = Literal["refuse", "keep", "reopen"]
AddedBehindStarted = Literal["open", "done"]

STARTED = frozenset({"in_progress", "on_hold", "in_qc", "rework", "done"})
NOT_STARTED = frozenset({"blocked", "ready"})

# The fields of a task that come from its template node, in the order plans list them.
NODE_FIELDS = (
    "title",
    "description",
    "kind",
    "work_kind",
    "priority",
    "estimate_hours",
    "due_at",
    "role_hint",
    "qc_required",
    "qc_checklist",
    "parent_key",
)


class RulesError(ValueError):
    """The rules cannot be used with these two versions (a rename naming a missing key...)."""

    def __init__(self, message: str, *, code: str, field: str) -> None:
        super().__init__(message)
        self.code = code
        self.field = field


@dataclass(frozen=True)
class Rules:
    """How the conflicts of a migration are settled. The defaults refuse every conflict."""

    rename: Mapping[str, str] = field(default_factory=dict)
    removed_started: RemovedStarted = "refuse"
    blocker_added_to_started: BlockerAddedToStarted = "refuse"
    added_behind_started: AddedBehindStarted = "open"
    update_finished: bool = False


@dataclass(frozen=True)
class TaskState:
    """A task as the plan reads it."""

    id: uuid.UUID
    deliverable_id: uuid.UUID
    node_key: str
    status: str
    open_blockers: int
    row_version: int
    fields: Mapping[str, Any]  # NODE_FIELDS as the task has them (parent as parent_key)


@dataclass(frozen=True)
class DeliverableState:
    id: uuid.UUID
    status: str
    name: str = ""
    serial: str = ""


@dataclass(frozen=True)
class Graph:
    """A template version's graph: nodes by key (in the version's order) and its edges."""

    nodes: Mapping[str, Mapping[str, Any]]
    edges: frozenset[tuple[str, str]]  # (blocker, dependent)

    @classmethod
    def of(cls, version: Mapping[str, Any]) -> Graph:
        """The graph of a version's JSON; SnapshotError when an edge names an unknown node."""
        nodes = {str(n["key"]): n for n in version.get("nodes") or []}
        edges = frozenset(
            (str(e["blocker"]), str(e["dependent"])) for e in version.get("edges") or []
        )
        for b, d in edges:
            if b not in nodes or d not in nodes:
                raise SnapshotError(f"the edge {b} -> {d} names an unknown node")
        return cls(nodes, edges)

    @cached_property
    def blockers(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {k: [] for k in self.nodes}
        for b, d in sorted(self.edges):
            out[d].append(b)
        return out

    @cached_property
    def dependents(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {k: [] for k in self.nodes}
        for b, d in sorted(self.edges):
            out[b].append(d)
        return out

    def order(self) -> list[str]:
        keys = list(self.nodes)
        index = {k: i for i, k in enumerate(keys)}
        blockers = [[index[b] for b in bs] for bs in self.blockers.values()]
        return [keys[i] for i in topological_order(len(keys), blockers)]


def node_fields(node: Mapping[str, Any], start_at: datetime) -> dict[str, Any]:
    """The task fields a template node gives (what a task made from it would have)."""
    offset = node.get("due_offset_hours")
    estimate = node.get("estimate_hours")
    return {
        "title": str(node.get("title") or ""),
        "description": str(node.get("description") or ""),
        "kind": str(node.get("kind") or "task"),
        "work_kind": str(node.get("work_kind") or "work"),
        "priority": int(node.get("priority") or 0),
        "estimate_hours": None if estimate is None else Decimal(str(estimate)),
        "due_at": None if offset is None else start_at + timedelta(hours=float(offset)),
        "role_hint": node.get("role_hint"),
        "qc_required": bool(node.get("qc_required")),
        "qc_checklist": list(node.get("qc_checklist") or []),
        "parent_key": node.get("parent_key") or None,
    }


def same_value(a: Any, b: Any) -> bool:
    if isinstance(a, Decimal) or isinstance(b, Decimal):
        return (None if a is None else Decimal(str(a))) == (None if b is None else Decimal(str(b)))
    return bool(a == b)


# ---------------------------------------------------------------------------------------------
# The plan


@dataclass
class Conflict:
    code: str
    deliverable_id: uuid.UUID
    node_key: str
    task_id: uuid.UUID | None
    status: str | None
    message: str
    settle_with: dict[str, list[str]]


@dataclass
class TaskOutcome:
    """What happens to one existing task."""

    task: TaskState
    node_key: str  # after the migration (a rename changes it)
    kind: Literal["kept", "cancelled", "orphan", "untouched"]
    status: str  # the status the migration itself writes (before the cascades free anything)
    final_status: str  # after the cascades: unblocking and milestones completing
    open_blockers: int  # after the cascades
    field_changes: dict[str, tuple[Any, Any]] = field(default_factory=dict)
    reason: str = ""
    blocker_keys_added: list[str] = field(default_factory=list)  # kept despite being started
    blockers_added: list[uuid.UUID] = field(default_factory=list)
    blockers_reopened: list[uuid.UUID] = field(default_factory=list)
    fields_held_back: list[str] = field(default_factory=list)  # changes not applied (finished)
    qc_round_keeps_checklist: bool = False
    direct_open: int = 0  # the counter the migration writes, before the cascades

    @property
    def row_changed(self) -> bool:
        return bool(
            self.field_changes
            or self.final_status != self.task.status
            or self.open_blockers != self.task.open_blockers
            or self.node_key != self.task.node_key
        )


@dataclass
class NewTask:
    id: uuid.UUID
    deliverable_id: uuid.UUID
    node_key: str
    fields: dict[str, Any]
    status: str  # the creation status
    final_status: str  # after the cascades
    open_blockers: int  # after the cascades
    reason: str
    direct_status: str = ""  # as written: a free milestone completes at creation
    direct_open: int = 0  # the counter written, before the cascades


@dataclass
class DeliverablePlan:
    deliverable: DeliverableState
    status_after: str
    outcomes: list[TaskOutcome] = field(default_factory=list)
    added: list[NewTask] = field(default_factory=list)
    edges: set[tuple[uuid.UUID, uuid.UUID]] = field(default_factory=set)  # (task, blocker)
    edges_added: list[tuple[str, str]] = field(default_factory=list)  # (blocker, dependent) keys
    edges_removed: list[tuple[str, str]] = field(default_factory=list)
    renamed: list[tuple[str, str]] = field(default_factory=list)

    @property
    def untouched(self) -> bool:
        return self.deliverable.status == "signed_off"


@dataclass
class MigrationPlan:
    deliverables: list[DeliverablePlan]
    conflicts: list[Conflict]
    nodes_added: list[str]
    nodes_removed: list[str]
    nodes_changed: dict[str, list[str]]  # new key -> fields that change
    edges_added: list[tuple[str, str]]
    edges_removed: list[tuple[str, str]]
    renamed: dict[str, str]

    @property
    def changes_anything(self) -> bool:
        return any(
            d.added
            or any(o.row_changed for o in d.outcomes)
            or d.edges_added
            or d.edges_removed
            or d.status_after != d.deliverable.status
            for d in self.deliverables
        )
