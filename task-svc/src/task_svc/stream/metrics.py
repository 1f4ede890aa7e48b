"""Metrics of the live event stream."""

from prometheus_client import Counter, Gauge

STREAM_CLIENTS = Gauge(
    "event_stream_clients",
    "Open live event streams (SSE) in this process",
    multiprocess_mode="livesum",
)
STREAM_DROPPED = Counter(
    "event_stream_dropped_total", "Live streams dropped because the client fell too far behind"
)
STREAM_EVENTS = Counter("event_stream_events_sent_total", "Events written to live streams")
