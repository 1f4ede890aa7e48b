"""Fixtures of the integration tests: a real local webhook receiver."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from notify_svc.receiver import Receiver


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as r:
        yield r
