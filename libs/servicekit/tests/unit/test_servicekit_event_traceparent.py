"""The traceparent an event carries keeps the request's sampled flag."""

from __future__ import annotations

import pytest

from servicekit.context import traceparent_var
from servicekit.outbox import event_headers

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"


@pytest.mark.parametrize("flags", ["00", "01"])
def test_an_event_carries_the_incoming_traceparent_unchanged(flags: str) -> None:
    incoming = f"00-{TRACE}-00f067aa0ba902b7-{flags}"
    token = traceparent_var.set(incoming)
    try:
        assert event_headers()["traceparent"] == incoming
    finally:
        traceparent_var.reset(token)


def test_an_event_without_a_request_trace_carries_none() -> None:
    assert "traceparent" not in event_headers()
