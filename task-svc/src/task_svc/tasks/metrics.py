"""Prometheus metrics of the transition service (served by the app's `/metrics`).

- `transitions_total{action, outcome}`: every transition request that reached the service.
- `optimistic_lock_conflicts_total`: refused because `expected_row_version` was stale.
- `idempotent_replays_total`: a repeated `client_event_id` answered with the stored result.
- `transition_duration_seconds{action}`: time spent in the service (lock to last write).
- `transition_writes_total{path}`: how the hot route wrote a transition: `one_statement` (read
  unlocked, written in one self-committing statement) or `locked` (a transaction locking the
  task: an action that cascades, a refusal, or a row changed between the read and the write).

The label children are bound once at import, so counting on the hot path is a dict lookup and an
increment, with no label resolution per request.
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

from task_svc.tasks.fsm import Action

# An action that is not in the table is counted under this label (bounded cardinality).
UNKNOWN_ACTION = "unknown"

OUTCOMES: tuple[str, ...] = (
    "ok",
    "conflict",
    "not_allowed",
    "blocked",
    "forbidden",
    "payload_invalid",
    "replayed",
    "mismatch",
    "not_found",
    "rework_refused",
)

# Problem codes raised by the transition service -> outcome label.
OUTCOME_OF_CODE: dict[str, str] = {
    "VERSION_CONFLICT": "conflict",
    "ACTION_NOT_ALLOWED": "not_allowed",
    "PROJECT_NOT_ACTIVE": "not_allowed",
    "DELIVERABLE_SIGNED_OFF": "not_allowed",
    "TASK_BLOCKED": "blocked",
    "ACTION_FORBIDDEN": "forbidden",
    "SYSTEM_ACTION": "forbidden",
    "USER_ACTION": "forbidden",
    "PAYLOAD_INVALID": "payload_invalid",
    "ACTION_UNKNOWN": "payload_invalid",
    "IDEMPOTENCY_KEY_REUSED": "mismatch",
    "TASK_NOT_FOUND": "not_found",
    # A QC reject whose rework_from_task_id cannot be reworked (docs/qc.md).
    "REWORK_TASK_NOT_FOUND": "rework_refused",
    "REWORK_TASK_OTHER_DELIVERABLE": "rework_refused",
    "REWORK_TASK_NOT_UPSTREAM": "rework_refused",
    "REWORK_TASK_NOT_DONE": "rework_refused",
    "REWORK_TASK_IS_MILESTONE": "rework_refused",
}
# Any other refusal (none is expected) is counted as not_allowed rather than dropped.
DEFAULT_REFUSAL = "not_allowed"

ACTION_LABELS: tuple[str, ...] = (*(str(a) for a in Action), UNKNOWN_ACTION)

TRANSITIONS = Counter(
    "transitions_total",
    "Task transition requests handled by the transition service, by action and outcome",
    ["action", "outcome"],
)
OPTIMISTIC_LOCK_CONFLICTS = Counter(
    "optimistic_lock_conflicts_total",
    "Task transitions refused because expected_row_version was not the current row_version",
)
IDEMPOTENT_REPLAYS = Counter(
    "idempotent_replays_total",
    "Task transitions answered from the stored result of a repeated client_event_id",
)
TRANSITION_DURATION = Histogram(
    "transition_duration_seconds",
    "Time spent in the transition service for one transition (inside its transaction)",
    ["action"],
    buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)

TRANSITION_WRITES = Counter(
    "transition_writes_total",
    "Transitions of the hot route by how they were written: one_statement (unlocked read, "
    "one self-committing write) or locked (a transaction locking the task)",
    ["path"],
)
_WRITE_PATHS = {p: TRANSITION_WRITES.labels(path=p) for p in ("one_statement", "locked")}

# Pre-bound children: the hot path never resolves labels.
_COUNT = {(a, o): TRANSITIONS.labels(action=a, outcome=o) for a in ACTION_LABELS for o in OUTCOMES}
_DURATION = {a: TRANSITION_DURATION.labels(action=a) for a in ACTION_LABELS}


def action_label(action: str) -> str:
    return action if action in _DURATION else UNKNOWN_ACTION


def record(action: str, outcome: str, seconds: float | None = None) -> None:
    """Count one transition request (`action` need not be valid) and, if given, its duration."""
    label = action_label(action)
    _COUNT[(label, outcome)].inc()
    if outcome == "conflict":
        OPTIMISTIC_LOCK_CONFLICTS.inc()
    elif outcome == "replayed":
        IDEMPOTENT_REPLAYS.inc()
    if seconds is not None:
        _DURATION[label].observe(seconds)


def record_refusal(action: str, code: str, seconds: float | None = None) -> None:
    record(action, OUTCOME_OF_CODE.get(code, DEFAULT_REFUSAL), seconds)


def record_write_path(path: str) -> None:
    """Count one transition of the hot route by how it was written."""
    _WRITE_PATHS[path].inc()
