"""Label combinations an events process will report exist at 0 before any event."""

from __future__ import annotations

from prometheus_client import REGISTRY

from servicekit.events.entries import OUTCOMES
from servicekit.events.metrics import start_at_zero


def _value(name: str, labels: dict[str, str]) -> float | None:
    return REGISTRY.get_sample_value(name, labels)


def test_relay_and_consumer_series_start_at_zero() -> None:
    start_at_zero("zero-svc", ["task.submitted_for_qc"], OUTCOMES)
    assert _value("outbox_published_total", {"service": "zero-svc"}) == 0
    assert _value("outbox_relay_errors_total", {"service": "zero-svc"}) == 0
    assert _value("dead_letter_depth", {"service": "zero-svc"}) == 0
    assert _value("outbox_publish_lag_seconds_count", {"service": "zero-svc"}) == 0
    latency = {"service": "zero-svc", "type": "task.submitted_for_qc"}
    assert _value("events_commit_to_handled_seconds_count", latency) == 0
    for outcome in ("processed", "dead_lettered", "retried"):
        labels = {"service": "zero-svc", "type": "task.submitted_for_qc", "outcome": outcome}
        assert _value("events_consumed_total", labels) == 0, outcome


def test_a_service_that_consumes_nothing_reports_no_dead_letter_depth() -> None:
    start_at_zero("producer-only-svc", [], OUTCOMES)
    assert _value("outbox_backlog", {"service": "producer-only-svc"}) == 0
    assert _value("dead_letter_depth", {"service": "producer-only-svc"}) is None
