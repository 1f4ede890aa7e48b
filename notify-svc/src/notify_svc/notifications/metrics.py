"""Notification metrics: outcomes by channel, SMTP latency, reminder lag.

Every (channel, outcome) series exists from the start at 0, so a rate over it is defined before
the first failure.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

CHANNELS = ("email", "webhook")
OUTCOMES = ("sent", "retry", "failed", "skipped")

NOTIFICATIONS = Counter(
    "notification_attempts_total",
    "Notification attempts by channel and outcome: sent, retry (failed, will retry), failed "
    "(attempts exhausted), skipped (no contact, quiet, no address)",
    ["channel", "outcome"],
)
for _channel in CHANNELS:
    for _outcome in OUTCOMES:
        NOTIFICATIONS.labels(_channel, _outcome)

CREATED = Counter(
    "notifications_written_total", "Notifications written, by what asked for them", ["source"]
)
for _source in ("event", "reminder", "job"):
    CREATED.labels(_source)

SMTP_LATENCY = Histogram(
    "notification_smtp_seconds",
    "One SMTP conversation (connect to the server's answer to the mail), success or not",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 15, 30),
)
REMINDER_LAG = Histogram(
    "notification_reminder_lead_seconds",
    "How long before its task's due date a reminder was sent (due_at - sent); negative "
    "values, an overdue notice's lateness, land in the lowest bucket",
    buckets=(0, 60, 300, 600, 1200, 1800, 2700, 3600, 7200, 14400, 86400),
)
REMINDER_SCANS = Counter(
    "notification_reminder_scans_total", "Deadline reminder scans by outcome", ["outcome"]
)
for _outcome in ("ok", "error"):
    REMINDER_SCANS.labels(_outcome)

# Read from the database by one process (beat's `gauges` task, in the Celery worker), like the
# webhook backlog: a backlog that grows or a notification that waits too long shows here first.
WAITING = Gauge(
    "notifications_waiting",
    "Notifications not settled yet, by status: queued (incl. awaiting a retry) and sending",
    ["status"],
    multiprocess_mode="liveall",
)
for _status in ("queued", "sending"):
    WAITING.labels(_status)
OLDEST_WAITING = Gauge(
    "notification_oldest_waiting_age_seconds",
    "Age of the oldest notification not settled yet (queued or sending); 0 when none waits",
    multiprocess_mode="liveall",
)
