"""Planning one deliverable's move: pure rules, no I/O (`planning.plan_migration` runs it for
every deliverable of the project).

Tasks whose node is removed are cancelled, kept as orphans or a conflict; then, in the target
version's topological order, every node gets its task: a new one (its creation status), or the
kept one (field changes, status by the rules). For each task two statuses are worked out: what
the migration itself writes (`status`, counted in `direct_open`) and what it is once the cascade
code has freed the tasks left blocked with no open blocker (`final_status`, `open_blockers`).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from task_svc.project_migrations.plan_model import (
    NOT_STARTED,
    STARTED,
    Conflict,
    DeliverablePlan,
    DeliverableState,
    Graph,
    NewTask,
    Rules,
    TaskOutcome,
    TaskState,
    same_value,
)
from task_svc.tasks.fsm import RESOLVED


@dataclass
class _Work:
    """One deliverable's plan while it is made."""

    plan: DeliverablePlan
    by_new_key: dict[str, TaskState] = field(default_factory=dict)  # the task of every new key
    outcome_of: dict[uuid.UUID, TaskOutcome] = field(default_factory=dict)
    final: dict[str, str] = field(default_factory=dict)  # new key -> final status
    direct: dict[str, str] = field(default_factory=dict)  # new key -> the status written
    id_of: dict[str, uuid.UUID] = field(default_factory=dict)

    def add_outcome(self, outcome: TaskOutcome) -> None:
        self.outcome_of[outcome.task.id] = outcome
        self.plan.outcomes.append(outcome)


@dataclass
class DeliverablePlanner:
    """What stays the same for every deliverable of one migration."""

    old: Graph
    new: Graph
    order: list[str]
    rules: Rules
    old_to_new: dict[str, str]
    new_fields: dict[str, dict[str, Any]]
    changed: dict[str, list[str]]
    old_blockers: dict[str, set[str]]
    conflicts: list[Conflict]
    new_id: Callable[[], uuid.UUID]

    def plan(
        self,
        d: DeliverableState,
        tasks: list[TaskState],
        current_edges: set[tuple[uuid.UUID, uuid.UUID]],
    ) -> DeliverablePlan:
        if d.status == "signed_off":
            plan = DeliverablePlan(d, d.status, edges=current_edges)
            plan.outcomes = [
                TaskOutcome(t, t.node_key, "untouched", t.status, t.status, t.open_blockers)
                for t in tasks
            ]
            return plan
        work = _Work(DeliverablePlan(d, d.status))
        for t in tasks:
            self._match(work, t)
        blockers_of = self.new.blockers
        for key in self.order:
            open_keys = [b for b in blockers_of[key] if work.final[b] not in RESOLVED]
            direct_keys = [b for b in blockers_of[key] if work.direct[b] not in RESOLVED]
            kept = work.by_new_key.get(key)
            if kept is None:
                self._place_new(work, key, open_keys, direct_keys)
            else:
                self._place_kept(work, key, kept, open_keys, direct_keys)
        self._edges(work, current_edges)
        # Every task resolved: ready for sign-off; anything open again: back in progress.
        plan = work.plan
        statuses = [o.final_status for o in plan.outcomes] + [n.final_status for n in plan.added]
        plan.status_after = (
            "ready_for_signoff" if all(s in RESOLVED for s in statuses) else "in_progress"
        )
        return plan

    def _match(self, work: _Work, t: TaskState) -> None:
        """The task of a key of the target version, or one whose key leaves the graph."""
        key = self.old_to_new.get(t.node_key, t.node_key)
        if key in self.new.nodes and key not in work.by_new_key:
            work.by_new_key[key] = t
            if key != t.node_key:
                work.plan.renamed.append((t.node_key, key))
            return
        outcome = TaskOutcome(t, t.node_key, "untouched", t.status, t.status, 0)
        work.add_outcome(outcome)
        if t.node_key in self.old.nodes:  # else an orphan of an earlier migration: left as is
            self._remove(work.plan.deliverable, t, outcome)

    def _remove(self, d: DeliverableState, t: TaskState, outcome: TaskOutcome) -> None:
        """A task whose node is removed: cancelled, kept as an orphan, or a conflict."""
        rule = self.rules.removed_started
        if t.status in NOT_STARTED:
            _cancel(outcome, f"node '{t.node_key}' is removed and the task was not started")
        elif t.status == "cancelled":
            outcome.kind, outcome.reason = "cancelled", f"node '{t.node_key}' is removed"
        elif rule == "cancel":
            _cancel(outcome, f"node '{t.node_key}' is removed (rule removed_started: cancel)")
        elif rule == "keep_as_orphan":
            outcome.kind = "orphan"
            outcome.reason = (
                f"node '{t.node_key}' is removed (rule removed_started: keep_as_orphan)"
            )
        else:
            self.conflicts.append(
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

    def _behind_started(self, work: _Work, key: str) -> bool:
        """An added node in front of work that has started (rule added_behind_started)."""
        dependents = self.new.dependents
        seen: set[str] = set()
        stack = list(dependents[key])
        while stack:
            k = stack.pop()
            if k in seen:
                continue
            seen.add(k)
            kept = work.by_new_key.get(k)
            if kept is not None and kept.status in STARTED:
                return True
            if kept is None:
                stack.extend(dependents[k])
        return False

    def _place_new(
        self, work: _Work, key: str, open_keys: list[str], direct_keys: list[str]
    ) -> None:
        fields_after = self.new_fields[key]
        milestone = fields_after["work_kind"] == "milestone"
        task_id = self.new_id()
        work.id_of[key] = task_id
        if self.rules.added_behind_started == "done" and self._behind_started(work, key):
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
        # A milestone free at creation completes at once, as at project start.
        written = "done" if milestone and status == "ready" else status
        work.plan.added.append(
            NewTask(
                task_id,
                work.plan.deliverable.id,
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
        work.final[key], work.direct[key] = final_status, written

    def _place_kept(
        self,
        work: _Work,
        key: str,
        kept: TaskState,
        open_keys: list[str],
        direct_keys: list[str],
    ) -> None:
        fields_after = self.new_fields[key]
        work.id_of[key] = kept.id
        outcome = TaskOutcome(kept, key, "kept", kept.status, kept.status, len(open_keys))
        work.add_outcome(outcome)
        _field_changes(outcome, kept, fields_after, self.changed.get(key, []), self.rules)
        _kept_status(
            outcome,
            kept,
            key,
            open_keys,
            fields_after["work_kind"] == "milestone",
            self.old_blockers.get(key, set()),
            self.rules,
            work.plan.deliverable,
            self.conflicts,
        )
        if kept.status == "ready" and direct_keys and not open_keys:
            # Behind a milestone the cascades complete: blocked until they do.
            outcome.status = "blocked"
            outcome.reason = f"blocked by {', '.join(direct_keys)} until it completes"
        outcome.direct_open = len(direct_keys)
        work.final[key], work.direct[key] = outcome.final_status, outcome.status

    def _edges(self, work: _Work, current_edges: set[tuple[uuid.UUID, uuid.UUID]]) -> None:
        """Dependencies after the migration, and the blockers it adds to or reopens for started
        tasks."""
        plan, id_of, old_to_new = work.plan, work.id_of, self.old_to_new
        for key in self.order:
            for b in self.new.blockers[key]:
                plan.edges.add((id_of[key], id_of[b]))
        for o in plan.outcomes:
            o.blockers_added = [id_of[k] for k in o.blocker_keys_added]
        old_edges = {(old_to_new[b], old_to_new[k]) for b, k in self.old.edges}
        plan.edges_added = sorted(self.new.edges - old_edges)
        plan.edges_removed = sorted(old_edges - self.new.edges)
        for task_id, blocker_id in plan.edges:
            dependent = work.outcome_of.get(task_id)
            blocker = work.outcome_of.get(blocker_id)
            if dependent is None or blocker is None or (task_id, blocker_id) not in current_edges:
                continue
            if (
                dependent.task.status in STARTED
                and dependent.status == dependent.task.status
                and blocker.task.status in RESOLVED
                and blocker.final_status not in RESOLVED
            ):
                dependent.blockers_reopened.append(blocker_id)
                dependent.blockers_reopened.sort()
                dependent.reason = dependent.reason or "a blocker was reopened by the migration"


def _cancel(outcome: TaskOutcome, reason: str) -> None:
    outcome.kind, outcome.status, outcome.final_status = "cancelled", "cancelled", "cancelled"
    outcome.reason = reason


def _field_changes(
    outcome: TaskOutcome,
    t: TaskState,
    fields_after: dict[str, Any],
    changed_fields: list[str],
    rules: Rules,
) -> None:
    finished = t.status in RESOLVED
    for f in changed_fields:
        before, after = t.fields.get(f), fields_after[f]
        if same_value(before, after):
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
