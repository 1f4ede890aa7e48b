"""The short chaos run of `make test`: traffic through the gateway of a stack of its own for at
least 20 s and until every kind of fault was injected once, then the checker; any finding fails.

The long run is `make chaos` (docs/reliability.md).
"""

from __future__ import annotations

import asyncio
import random
import shutil

import asyncpg
import pytest

from blueprint_stack import Stack
from blueprint_stack.testing import processes_mentioning, temp_var_dir

from .checker import Checker
from .faults import KINDS
from .harness import Outcome, admin_dsn, chaos_run, chaos_stack_config, consumer_env, figures

pytestmark = [pytest.mark.e2e, pytest.mark.chaos]

SECONDS = 20
LANES = 4
# This stack does not restart what crashed (the runner does): the injector waits this long for a
# process to come back by itself before it starts it.
GRACE = 1.0
# Entries a killed consumer had read are taken over after 3 s instead of 30 s, so the run
# settles within the test's time.
CLAIM_IDLE_MS = 3000
# Likewise for webhook deliveries: a claim held by a killed Celery worker expires after 8 s (not
# the attempt timeout + 30 s), and a message lost with Redis is enqueued again after 4 s. The
# receiver answers at once, so an attempt never outlives its claim.
WEBHOOK_ENV = {
    "NOTIFY_SVC_WEBHOOK_TIMEOUT_SECONDS": "5",
    "NOTIFY_SVC_WEBHOOK_CLAIM_SECONDS": "8",
    "NOTIFY_SVC_WEBHOOK_REQUEUE_AFTER_SECONDS": "4",
}


@pytest.mark.timeout(900)
def test_nothing_is_lost_or_doubled_while_processes_crash_and_databases_restart(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for key, value in {**consumer_env(CLAIM_IDLE_MS), **WEBHOOK_ENV}.items():
        monkeypatch.setenv(key, value)
    seed = random.randrange(1, 2**31)
    var_dir = temp_var_dir("blueprint-chaos-")
    stack = Stack(chaos_stack_config(var_dir, ready_timeout=300.0))
    stack.start()
    try:
        outcome = asyncio.run(
            chaos_run(
                stack, seconds=SECONDS, lanes=LANES, seed=seed, pause=(0.3, 1.5), grace=GRACE,
                quiescence_deadline=120.0, say=lambda _: None,
            )
        )  # fmt: skip
        caught = asyncio.run(corrupt_and_check_again(stack, outcome)) if outcome.ok else None
    finally:
        stack.stop()
        leftovers = processes_mentioning(str(var_dir))
        if not leftovers:
            shutil.rmtree(var_dir, ignore_errors=True)
    assert not leftovers, f"processes left behind: {leftovers}"
    report = figures(outcome, command=f"seed {seed}")
    with capsys.disabled():
        print("\n" + report)
    injected = outcome.faults.by_kind()
    assert all(injected[k] >= 1 for k in KINDS), f"not every kind of fault was injected: {injected}"
    acked = [w for w in outcome.records.writes if w.acked]
    assert any(w.op.startswith("transition:") for w in acked), "no transition was acknowledged"
    assert outcome.ok, report
    # The checker is alive: the same databases with a few things broken by hand fail it.
    assert caught is not None and set(caught) >= EXPECTED_CATCHES, caught


EXPECTED_CATCHES = {
    "task history does not replay to its row",
    "open_blockers differs from the unresolved blockers",
    "event never handled by its consumer",
    "acknowledged write not recorded exactly once",
    "webhook never received (lost)",
}


async def corrupt_and_check_again(stack: Stack, outcome: Outcome) -> dict[str, list[str]]:
    """Break one thing of each kind the checker looks for, then run it again."""
    acked = next(
        w.key for w in outcome.records.writes if w.acked and w.op.startswith("transition:")
    )
    conn = await asyncpg.connect(admin_dsn(stack))
    try:
        first, second = await conn.fetch("SELECT id FROM task.tasks ORDER BY id LIMIT 2")
        await conn.execute(
            "UPDATE task.tasks SET row_version = row_version + 1 WHERE id = $1", first["id"]
        )
        await conn.execute(
            "UPDATE task.tasks SET open_blockers = open_blockers + 1 WHERE id = $1", second["id"]
        )
        await conn.execute(
            "DELETE FROM qc.inbox WHERE event_id = (SELECT event_id FROM qc.inbox LIMIT 1)"
        )
        await conn.execute(
            "UPDATE task.task_events SET client_event_id = client_event_id || '-lost' "
            "WHERE client_event_id = $1",
            acked,
        )
    finally:
        await conn.close()
    # A task event the subscriber never got: its receipts are read back without one of them.
    received = outcome.receipts
    dropped = next(r.webhook_id for r in received if r.path.endswith("/lane/0"))
    kept = [r for r in received if r.webhook_id != dropped]
    report = await Checker(
        admin_dsn(stack), stack.redis.url, outcome.records, receipts=lambda: kept
    ).run(30.0)
    return report.findings
