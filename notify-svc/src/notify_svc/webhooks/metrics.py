"""Webhook metrics: deliveries by outcome, attempts by status class, latency, backlog gauges;
and every Celery task run of the worker by its end state.

Counters and the histogram live in the process that does the work (Celery worker, events
process). The pending and dead gauges are read from the database by one process (the API's
/metrics would count per worker; beat's `webhook gauges` task sets them in the worker).
"""

from __future__ import annotations

from typing import Any

from celery.signals import task_postrun
from prometheus_client import Counter, Gauge, Histogram

DELIVERIES_CREATED = Counter(
    "webhook_deliveries_written_total", "Deliveries written by the consumer (endpoint x event)"
)
DELIVERIES = Counter(
    "webhook_deliveries_total",
    "Deliveries that reached an outcome: succeeded, retry (failed, will retry), dead, disabled",
    ["outcome"],
)
ATTEMPTS = Counter(
    "webhook_attempts_total",
    "HTTP attempts by status class: 2xx, 3xx, 4xx, 5xx, or error (timeout, refused, SSRF)",
    ["status_class"],
)
LATENCY = Histogram(
    "webhook_event_to_delivered_seconds",
    "From the event's commit time to the subscriber's 2xx",
    buckets=(0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800, 7200),
)
ENDPOINTS_DISABLED = Counter(
    "webhook_endpoints_disabled_total", "Endpoints disabled by the platform", ["reason"]
)
BATCH_SIZE = Histogram(
    "webhook_batch_attempts",
    "Attempts sent together in one batch (one endpoint's, claimed and recorded at once)",
    buckets=(1, 2, 4, 8, 16, 32, 64, 100),
)
CELERY_TASKS = Counter(
    "webhook_celery_tasks_total", "Celery task runs by task and outcome", ["task", "outcome"]
)
BACKLOG = Gauge(
    "webhook_deliveries_backlog",
    "Deliveries by status pending (incl. failed, awaiting retry) and dead",
    ["status"],
    multiprocess_mode="liveall",
)

# Every known label combination starts at 0, so a rate has a series before the first event.
for _outcome in ("succeeded", "retry", "dead", "disabled"):
    DELIVERIES.labels(_outcome)
for _status_class in ("2xx", "3xx", "4xx", "5xx", "error"):
    ATTEMPTS.labels(_status_class)
for _reason in ("gone", "failure_window"):
    ENDPOINTS_DISABLED.labels(_reason)
for _task, _outcomes in {
    "deliver": ("succeeded", "failed", "dead", "rate_limited", "not_claimed"),
    "deliver_batch": ("ok",),
    "redrive": ("ok",),
    "prune": ("ok",),
}.items():
    for _task_outcome in _outcomes:
        CELERY_TASKS.labels(_task, _task_outcome)

# Every task run of the worker by how it ended: `failed` raised an exception (a bug, or the
# database or broker gone; the rows stay due and re-drive sends them again), `retried` asked
# Celery for a retry. Outcomes of the work itself (a dead delivery, a failed mail) are in
# webhook_celery_tasks_total and notification_attempts_total.
CELERY_TASK_NAMES = ("deliver", "send_notification", "remind", "redrive", "prune", "gauges")
_STATES = {"SUCCESS": "succeeded", "FAILURE": "failed", "RETRY": "retried"}
CELERY_TASK_RUNS = Counter(
    "celery_task_runs_total",
    "Celery task runs by task and end state: succeeded, failed (raised), retried",
    ["task", "state"],
)
for _task in CELERY_TASK_NAMES:
    for _state in _STATES.values():
        CELERY_TASK_RUNS.labels(_task, _state)


@task_postrun.connect
def _count_task_run(sender: Any = None, state: str | None = None, **_: Any) -> None:
    """One run of a task ended (a task named outside notify_svc counts as `other`)."""
    name = str(getattr(sender, "name", "") or "")
    short = name.removeprefix("notify_svc.")
    task = short if short in CELERY_TASK_NAMES and short != name else "other"
    CELERY_TASK_RUNS.labels(task, _STATES.get(state or "", "other")).inc()
