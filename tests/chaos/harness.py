"""One chaos run on a started stack: the driver and the fault injector at once, then the checker;
and the figures it prints. Used by the short test (tests/chaos/test_chaos.py) and `make chaos`
(`python -m tests.chaos`)."""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from blueprint_stack import Stack, StackConfig
from blueprint_stack.config import SERVICES
from notify_svc.receiver import Received, Receiver

from .checker import Checker, Report
from .driver import Records, drive
from .faults import KINDS, FaultLog, Injector

# The gateway's write limit is for clients on the internet; the driver is many users behind
# one address, so it is lifted (a 429 would only be retried).
STACK_OVERRIDES: dict[str, Any] = {"write_rate": "100000r/s", "write_burst": 100000}


def chaos_stack_config(var_dir: Path, **overrides: Any) -> StackConfig:
    return StackConfig.for_tests(var_dir, **{**STACK_OVERRIDES, **overrides})


def consumer_env(claim_idle_ms: int) -> dict[str, str]:
    """Settings for every service's consumer: how long an entry a crashed consumer read stays
    pending before another one takes it over (default 30 s)."""
    return {f"{svc.env_prefix}CONSUMER_CLAIM_IDLE_MS": str(claim_idle_ms) for svc in SERVICES}


def admin_dsn(stack: Stack) -> str:
    pg = stack.postgres
    return f"postgresql://postgres@/{stack.config.database}?host={pg.socket_dir}&port={pg.port}"


@dataclass
class Outcome:
    seconds: float
    records: Records
    faults: FaultLog
    report: Report
    timings: dict[str, float] = field(default_factory=dict)
    receipts: list[Received] = field(default_factory=list)  # what the webhook receiver got

    @property
    def ok(self) -> bool:
        return not self.report.findings


async def chaos_run(
    stack: Stack,
    *,
    seconds: float,
    lanes: int,
    seed: int,
    max_requests: int = 1_000_000,
    kinds: Sequence[str] = KINDS,
    pause: tuple[float, float] = (1.0, 4.0),
    grace: float = 5.0,
    min_rounds: int = 1,
    quiescence_deadline: float = 180.0,
    say: Callable[[str], None] = print,
) -> Outcome:
    """Drive traffic for `seconds` (longer if needed until every kind of fault was injected
    `min_rounds` times under traffic) while injecting faults; then check."""
    with Receiver() as receiver:
        return await _chaos_run(
            stack, receiver, seconds=seconds, lanes=lanes, seed=seed, max_requests=max_requests,
            kinds=kinds, pause=pause, grace=grace, min_rounds=min_rounds,
            quiescence_deadline=quiescence_deadline, say=say,
        )  # fmt: skip


async def _chaos_run(
    stack: Stack,
    receiver: Receiver,
    *,
    seconds: float,
    lanes: int,
    seed: int,
    max_requests: int,
    kinds: Sequence[str],
    pause: tuple[float, float],
    grace: float,
    min_rounds: int,
    quiescence_deadline: float,
    say: Callable[[str], None],
) -> Outcome:
    records = Records(webhook_url=receiver.url)
    rng = random.Random(seed)
    injector = Injector(
        stack, random.Random(rng.random()), kinds=kinds, pause=pause, grace=grace, say=say
    )
    stop = asyncio.Event()
    started = time.monotonic()
    faults = asyncio.create_task(injector.run(stop))
    try:
        await drive(
            f"http://127.0.0.1:{stack.config.gateway_port}",
            stack.config.keys_dir,
            seconds=seconds,
            lanes=lanes,
            max_requests=max_requests,
            seed=rng.randrange(2**32),
            records=records,
            keep_going=lambda: injector.rounds < min_rounds and not faults.done(),
        )
    finally:
        stop.set()
        log = await faults
    driven = time.monotonic() - started
    say(f"driving done after {driven:.0f}s; checking")
    checker = Checker(admin_dsn(stack), stack.redis.url, records, receipts=receiver.requests)
    settled = asyncio.Event()
    supervisor = asyncio.create_task(injector.supervise(settled))
    try:
        report = await checker.run(quiescence_deadline)
    finally:
        settled.set()
        await supervisor
    for problem in records.unexpected:
        report.bad("unexpected answer to the driver", problem)
    report.notes += [f"stalled wait (the lane gave that project up): {s}" for s in records.stalls]
    report.notes += [f"collateral: {c}" for c in log.collateral]
    return Outcome(
        driven, records, log, report, {"checking": time.monotonic() - started - driven},
        receipts=receiver.requests(),
    )  # fmt: skip


def _code(body: Any) -> str:
    return str(body.get("code", "")) if isinstance(body, dict) else ""


def figures(outcome: Outcome, *, command: str | None = None) -> str:
    """The figures of a run, as printed by `make chaos` and quoted in docs/reliability.md."""
    r = outcome.records
    writes = r.writes
    acked = sum(1 for w in writes if w.acked)
    retried = [w for w in writes if w.failures]
    refused = Counter(
        f"{w.op} {w.status} {_code(w.response)}".strip()
        for w in writes
        if w.status is not None and not w.effective
    )
    refused_detail = ", ".join(f"{k} x{n}" for k, n in sorted(refused.items()))
    lines = [
        f"chaos run: {outcome.seconds:.0f}s of traffic, "
        f"checked in {outcome.timings.get('checking', 0):.0f}s",
        f"requests sent: {r.requests_sent} ({r.reads} reads, {len(writes)} writes plus "
        f"{sum(len(w.failures) for w in writes)} retried attempts)",
        f"writes acknowledged: {acked}; refused: "
        f"{sum(1 for w in writes if w.status is not None and not w.effective)}"
        + (f" ({refused_detail})" if refused_detail else ""),
        f"writes failed (5xx / connection / timeout) then retried with the same id: {len(retried)} "
        f"-> {sum(1 for w in retried if w.acked)} acknowledged "
        f"({sum(1 for w in retried if w.replayed)} as an idempotent replay of an applied first "
        f"attempt), {sum(1 for w in retried if w.reconciled)} reconciled, "
        f"{sum(1 for w in retried if w.status is None)} without a definite answer",
        f"reads failed then retried: {r.read_failures}",
        "walk: " + ", ".join(f"{k} {v}" for k, v in sorted(r.counts.items())),
        "faults injected: "
        + ", ".join(f"{k} {v}" for k, v in outcome.faults.by_kind().items())
        + f" (total {len(outcome.faults.faults)})",
    ]
    recoveries = [f.recovery for f in outcome.faults.faults if f.recovery is not None]
    if recoveries:
        lines.append(
            f"recovery per fault: median {sorted(recoveries)[len(recoveries) // 2]:.1f}s, "
            f"longest {max(recoveries):.1f}s"
        )
    lines.append(outcome.report.summary())
    lost = sum(
        len(v)
        for k, v in outcome.report.findings.items()
        if "lost" in k or "never" in k or "missing" in k or "without" in k
    )
    lines.append(f"lost: {lost}; duplicated or inconsistent: {outcome.report.finding_count - lost}")
    if command:
        lines.append(f"reproduce: {command}")
    return "\n".join(lines)
