"""Prometheus metrics of the outbox relay and the event consumers."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

OUTBOX_BACKLOG = Gauge(
    "outbox_backlog",
    "Outbox rows committed and not yet published",
    ["service"],
    multiprocess_mode="livemax",
)
OUTBOX_OLDEST_PENDING_AGE = Gauge(
    "outbox_oldest_pending_age_seconds",
    "Age of the oldest unpublished outbox row (0 when none)",
    ["service"],
    multiprocess_mode="livemax",
)
OUTBOX_PUBLISH_LAG = Histogram(
    "outbox_publish_lag_seconds",
    "From an event's transaction to its publication on the stream",
    ["service"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0),
)
OUTBOX_PUBLISHED = Counter(
    "outbox_published_total", "Outbox rows published to the stream", ["service"]
)
RELAY_ERRORS = Counter(
    "outbox_relay_errors_total", "Relay batches that failed (database or Redis)", ["service"]
)
OUTBOX_PRUNED = Counter(
    "outbox_pruned_total", "Published outbox rows deleted after the retention period", ["service"]
)
EVENTS_CONSUMED = Counter(
    "events_consumed_total",
    "Events taken from a stream, by outcome: processed, duplicate, retried, dead_lettered,"
    " ignored, deferred (waiting behind a failed event of the same aggregate)",
    ["service", "type", "outcome"],
)
EVENT_HANDLE_LATENCY = Histogram(
    "events_commit_to_handled_seconds",
    "From the producer's transaction to the consumer's commit of the handling",
    ["service", "type"],
    buckets=(0.005, 0.01, 0.02, 0.05, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 60.0),
)
CONSUMER_LAG = Gauge(
    "consumer_lag",
    "Stream entries not yet delivered to the consumer group",
    ["service", "stream"],
    multiprocess_mode="livemax",
)
STREAM_GROUP_LAG = Gauge(
    "stream_group_lag",
    "Entries of this service's stream not yet delivered to each consumer group, by group;"
    " reported by the producing relay",
    ["service", "group"],
    multiprocess_mode="livemax",
)
CONSUMER_PENDING = Gauge(
    "consumer_pending",
    "Entries delivered to the consumer group and not yet acknowledged",
    ["service", "stream"],
    multiprocess_mode="livemax",
)
DEAD_LETTER_DEPTH = Gauge(
    "dead_letter_depth",
    "Events waiting in the consumer group's dead-letter stream",
    ["service"],
    multiprocess_mode="livemax",
)


def start_at_zero(service: str, consumed_types: list[str], outcomes: tuple[str, ...]) -> None:
    """Create every label combination this process will report, at 0, before any event.

    A counter that appears only with its first increment has no earlier sample, so `rate()` and
    `increase()` miss that first event, and an alert on "dead letters growing" could never see
    the first one.
    """
    for metric in (OUTBOX_PUBLISHED, RELAY_ERRORS, OUTBOX_PRUNED, OUTBOX_BACKLOG):
        metric.labels(service)
    OUTBOX_PUBLISH_LAG.labels(service)
    OUTBOX_OLDEST_PENDING_AGE.labels(service)
    if consumed_types:
        DEAD_LETTER_DEPTH.labels(service)
    for event_type in consumed_types:
        EVENT_HANDLE_LATENCY.labels(service, event_type)
        for outcome in outcomes:
            EVENTS_CONSUMED.labels(service, event_type, outcome)
