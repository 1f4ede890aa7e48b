"""What an attempt's answer means for a delivery: pure rules, no I/O.

Only 2xx is a success. 410 Gone disables the endpoint at once. 429 and 503 with `Retry-After`
wait that long (capped). Otherwise the next attempt follows the schedule with +-20 % jitter, and
after the schedule's last delay the delivery is dead.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

SUCCEEDED = "succeeded"
FAILED = "failed"
DEAD = "dead"
DISABLE = "disable"


@dataclass(frozen=True)
class Decision:
    status: str  # succeeded | failed (retry at next_attempt_at) | dead
    next_attempt_at: datetime | None = None
    disable_endpoint: bool = False


def status_class(status_code: int | None) -> str:
    return "error" if status_code is None else f"{status_code // 100}xx"


def retry_after_seconds(value: str | None, now: datetime) -> float | None:
    """Seconds a `Retry-After` header asks for (delta-seconds or an HTTP date); None if absent
    or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


def decide(
    *,
    status_code: int | None,
    attempt: int,
    schedule: list[float],
    retry_after: str | None = None,
    retry_after_cap: float = 3600.0,
    now: datetime | None = None,
    rng: random.Random | None = None,
) -> Decision:
    """The delivery's next state after its `attempt`-th attempt (1-based)."""
    now = now or datetime.now(UTC)
    if status_code is not None and 200 <= status_code < 300:
        return Decision(SUCCEEDED)
    if status_code == 410:
        return Decision(FAILED, now, disable_endpoint=True)
    if attempt > len(schedule):
        return Decision(DEAD)
    delay = schedule[attempt - 1] * (rng or random).uniform(0.8, 1.2)
    if status_code in (429, 503):
        asked = retry_after_seconds(retry_after, now)
        if asked is not None:
            delay = min(asked, retry_after_cap)
    return Decision(FAILED, now + timedelta(seconds=delay))
