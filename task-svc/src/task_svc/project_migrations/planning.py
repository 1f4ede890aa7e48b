"""Planning a project's move to another template version: pure rules, no I/O.

From the project's current tasks and dependency rows, the graph of its pinned version (the
snapshot), the target version's graph and the rules, `plan_migration` decides every consequence:
which tasks are kept (and which of their fields change), added (and their initial status),
cancelled or kept as orphans, how every task's blockers and status change and why, and which
conflicts the rules leave unsettled. Applying a migration recomputes the same plan on the locked
rows and writes exactly what it says.

The statuses follow the state machine's cascade rules: a task is `blocked` exactly while it has
an unresolved blocker, a milestone completes by itself once free, a started task that gets a
blocker back is left where it is and flagged (`blocker_reopened`), and a deliverable whose tasks
are all resolved is ready for sign-off. A signed-off deliverable is never touched.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
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
RESOLVED = frozenset({"done", "cancelled"})

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


def _same(a: Any, b: Any) -> bool:
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
    order = new.order()
    renamed = dict(rules.rename)
    old_to_new = {k: renamed.get(k, k) for k in old.nodes}
    new_to_old = {v: k for k, v in old_to_new.items() if v in new.nodes}
    old_edges_mapped = {(old_to_new[b], old_to_new[d]) for b, d in old.edges}
    new_fields = {k: node_fields(n, start_at) for k, n in new.nodes.items()}
    changed: dict[str, list[str]] = {}
    for key, fields_after in new_fields.items():
        source = new_to_old.get(key)
        if source is None:
            continue
        before = node_fields(old.nodes[source], start_at)
        diff = [f for f in NODE_FIELDS if not _same(before[f], fields_after[f])]
        if diff:
            changed[key] = diff
    result = MigrationPlan(
        deliverables=[],
        conflicts=[],
        nodes_added=[k for k in new.nodes if k not in new_to_old],
        nodes_removed=[k for k in old.nodes if old_to_new[k] not in new.nodes],
        nodes_changed=changed,
        edges_added=sorted(new.edges - old_edges_mapped),
        edges_removed=sorted(old_edges_mapped - new.edges),
        renamed={k: v for k, v in renamed.items() if k != v},
    )
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
    # The blockers every node had in the project's version, under their new keys.
    old_blockers: dict[str, set[str]] = {}
    for b, dep in old.edges:
        old_blockers.setdefault(old_to_new[dep], set()).add(old_to_new[b])
    for d in deliverables:
        result.deliverables.append(
            _plan_deliverable(
                d,
                by_deliverable[d.id],
                old=old,
                new=new,
                order=order,
                rules=rules,
                old_to_new=old_to_new,
                new_fields=new_fields,
                changed=changed,
                current_edges=edges_of[d.id],
                old_blockers=old_blockers,
                conflicts=result.conflicts,
                new_id=new_id,
            )
        )
    return result


def _plan_deliverable(
    d: DeliverableState,
    tasks: list[TaskState],
    *,
    old: Graph,
    new: Graph,
    order: list[str],
    rules: Rules,
    old_to_new: dict[str, str],
    new_fields: dict[str, dict[str, Any]],
    changed: dict[str, list[str]],
    current_edges: set[tuple[uuid.UUID, uuid.UUID]],
    old_blockers: dict[str, set[str]],
    conflicts: list[Conflict],
    new_id: Callable[[], uuid.UUID],
) -> DeliverablePlan:
    if d.status == "signed_off":
        plan = DeliverablePlan(d, d.status, edges=current_edges)
        plan.outcomes = [
            TaskOutcome(t, t.node_key, "untouched", t.status, t.status, t.open_blockers)
            for t in tasks
        ]
        return plan
    plan = DeliverablePlan(d, d.status)
    # The task of every key of the target version; tasks whose key leaves the graph.
    by_new_key: dict[str, TaskState] = {}
    outcome_of: dict[uuid.UUID, TaskOutcome] = {}
    for t in tasks:
        key = old_to_new.get(t.node_key, t.node_key)
        if key in new.nodes and key not in by_new_key:
            by_new_key[key] = t
            if key != t.node_key:
                plan.renamed.append((t.node_key, key))
            continue
        outcome = TaskOutcome(t, t.node_key, "untouched", t.status, t.status, 0)
        outcome_of[t.id] = outcome
        plan.outcomes.append(outcome)
        if t.node_key not in old.nodes:
            continue  # an orphan of an earlier migration: left as it is
        if t.status in NOT_STARTED:
            _cancel(outcome, f"node '{t.node_key}' is removed and the task was not started")
        elif t.status == "cancelled":
            outcome.kind, outcome.reason = "cancelled", f"node '{t.node_key}' is removed"
        elif rules.removed_started == "cancel":
            _cancel(outcome, f"node '{t.node_key}' is removed (rule removed_started: cancel)")
        elif rules.removed_started == "keep_as_orphan":
            outcome.kind = "orphan"
            outcome.reason = (
                f"node '{t.node_key}' is removed (rule removed_started: keep_as_orphan)"
            )
        else:
            conflicts.append(
                Conflict(
                    "REMOVED_TASK_STARTED",
                    d.id,
                    t.node_key,
                    t.id,
                    t.status,
                    f"node '{t.node_key}' is removed but its task is {t.status}",
                    {"removed_started": ["cancel", "keep_as_orphan"]},
                )
            )
    # Added nodes behind work that has started may be taken as done (rule added_behind_started).
    dependents = new.dependents
    started_keys = {k for k, t in by_new_key.items() if t.status in STARTED}

    def behind_started(key: str) -> bool:
        seen: set[str] = set()
        stack = list(dependents[key])
        while stack:
            k = stack.pop()
            if k in seen:
                continue
            seen.add(k)
            if k in started_keys:
                return True
            if k not in by_new_key:
                stack.extend(dependents[k])
        return False

    blockers_of = new.blockers
    final: dict[str, str] = {}  # new key -> final status
    direct: dict[str, str] = {}  # new key -> the status the migration writes
    id_of: dict[str, uuid.UUID] = {}
    for key in order:
        fields_after = new_fields[key]
        milestone = fields_after["work_kind"] == "milestone"
        open_keys = [b for b in blockers_of[key] if final[b] not in RESOLVED]
        direct_keys = [b for b in blockers_of[key] if direct[b] not in RESOLVED]
        kept = by_new_key.get(key)
        if kept is None:
            task_id = new_id()
            id_of[key] = task_id
            if rules.added_behind_started == "done" and behind_started(key):
                status, final_status = "done", "done"
                reason = (
                    f"node '{key}' is added behind work already started "
                    "(rule added_behind_started: done)"
                )
            else:
                status = "blocked" if direct_keys else "ready"
                final_status = "blocked" if open_keys else "ready"
                final_status = "done" if milestone and not open_keys else final_status
                reason = f"node '{key}' is added" + (
                    f", blocked by {', '.join(open_keys)}" if open_keys else ""
                )
            written = "done" if milestone and status == "ready" else status
            plan.added.append(
                NewTask(
                    task_id,
                    d.id,
                    key,
                    fields_after,
                    status,
                    final_status,
                    len(open_keys),
                    reason,
                    written,
                    len(direct_keys),
                )
            )
            final[key], direct[key] = final_status, written
            continue
        id_of[key] = kept.id
        outcome = TaskOutcome(kept, key, "kept", kept.status, kept.status, len(open_keys))
        outcome_of[kept.id] = outcome
        plan.outcomes.append(outcome)
        _field_changes(outcome, kept, key, fields_after, changed.get(key, []), rules)
        _kept_status(
            outcome,
            kept,
            key,
            open_keys,
            milestone,
            old_blockers.get(key, set()),
            rules,
            d,
            conflicts,
        )
        if kept.status == "ready" and direct_keys and not open_keys:
            # Behind a milestone the cascades complete: blocked until they do.
            outcome.status = "blocked"
            outcome.reason = f"blocked by {', '.join(direct_keys)} until it completes"
        outcome.direct_open = len(direct_keys)
        final[key], direct[key] = outcome.final_status, outcome.status
    # Dependencies after the migration, and the blockers reopened by it.
    for key in order:
        for b in blockers_of[key]:
            plan.edges.add((id_of[key], id_of[b]))
    for o in plan.outcomes:
        o.blockers_added = [id_of[k] for k in o.blocker_keys_added]
    plan.edges_added = sorted(new.edges - {(old_to_new[b], old_to_new[k]) for b, k in old.edges})
    plan.edges_removed = sorted({(old_to_new[b], old_to_new[k]) for b, k in old.edges} - new.edges)
    before_status = {t.id: t.status for t in tasks}
    for task_id, blocker_id in plan.edges:
        dependent = outcome_of.get(task_id)
        blocker = outcome_of.get(blocker_id)
        if dependent is None or blocker is None or (task_id, blocker_id) not in current_edges:
            continue
        if (
            dependent.task.status in STARTED
            and dependent.status == dependent.task.status
            and before_status[blocker_id] in RESOLVED
            and blocker.final_status not in RESOLVED
        ):
            dependent.blockers_reopened.append(blocker_id)
            dependent.blockers_reopened.sort()
            dependent.reason = dependent.reason or "a blocker was reopened by the migration"
    # Every task resolved: ready for sign-off; anything open again: back in progress.
    statuses = [o.final_status for o in plan.outcomes] + [n.final_status for n in plan.added]
    plan.status_after = (
        "ready_for_signoff" if all(s in RESOLVED for s in statuses) else "in_progress"
    )
    return plan


def _cancel(outcome: TaskOutcome, reason: str) -> None:
    outcome.kind, outcome.status, outcome.final_status = "cancelled", "cancelled", "cancelled"
    outcome.reason = reason


def _field_changes(
    outcome: TaskOutcome,
    t: TaskState,
    key: str,
    fields_after: dict[str, Any],
    changed_fields: list[str],
    rules: Rules,
) -> None:
    finished = t.status in RESOLVED
    for f in changed_fields:
        before, after = t.fields.get(f), fields_after[f]
        if _same(before, after):
            continue
        if finished and not rules.update_finished:
            outcome.fields_held_back.append(f)
            continue
        if f == "work_kind" and t.status not in NOT_STARTED and not finished:
            # A started task keeps what it is; the change reaches it at its next version.
            outcome.fields_held_back.append(f)
            continue
        outcome.field_changes[f] = (before, after)
    if "qc_checklist" in outcome.field_changes and t.status == "in_qc":
        outcome.qc_round_keeps_checklist = True


def _kept_status(
    outcome: TaskOutcome,
    t: TaskState,
    key: str,
    open_keys: list[str],
    milestone: bool,
    old_blockers: set[str],
    rules: Rules,
    d: DeliverableState,
    conflicts: list[Conflict],
) -> None:
    if t.status in NOT_STARTED:
        # A blocked task left with no open blocker stays blocked here: the cascades free it.
        status = "blocked" if open_keys else "ready"
        outcome.status = "blocked" if t.status == "blocked" and not open_keys else status
        outcome.final_status = "done" if milestone and not open_keys else status
        if outcome.final_status != t.status:
            outcome.reason = (
                f"now blocked by {', '.join(open_keys)}" if open_keys else "no open blocker left"
            )
        return
    if t.status in ("cancelled",):
        return
    added = [b for b in open_keys if b not in old_blockers]
    if not added:
        return
    names = ", ".join(added)
    if rules.blocker_added_to_started == "keep":
        outcome.reason = (
            f"{t.status} with new blocker(s) {names} (rule blocker_added_to_started: keep)"
        )
        outcome.blocker_keys_added = added
    elif rules.blocker_added_to_started == "reopen":
        target = "blocked" if milestone else "rework"
        outcome.status = outcome.final_status = target
        outcome.reason = f"new blocker(s) {names} (rule blocker_added_to_started: reopen)"
    else:
        conflicts.append(
            Conflict(
                "BLOCKER_ADDED_TO_STARTED",
                d.id,
                key,
                t.id,
                t.status,
                f"task '{key}' is {t.status} but would now wait for {names}",
                {"blocker_added_to_started": ["keep", "reopen"]},
            )
        )
