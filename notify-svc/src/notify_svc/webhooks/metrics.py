"""Webhook metrics: deliveries by outcome, attempts by status class, latency, backlog gauges.

Counters and the histogram live in the process that does the work (Celery worker, events
process). The pending and dead gauges are read from the database by one process (the API's
/metrics would count per worker; beat's `webhook gauges` task sets them in the worker).
"""

from __future__ import annotations

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
