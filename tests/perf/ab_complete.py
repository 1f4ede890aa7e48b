"""A/B of `complete` in one process: the deliverable locked with the task (A, as shipped) or at
the write and checked in a statement of its own (B, as before; ADR 0004).

    uv run python tests/perf/ab_complete.py [--rounds 6] [--tasks 3000] [--clients 16]

Starts its own PostgreSQL (benchkit), migrates task-svc's schema and, per measurement, seeds
fresh tasks (20 per deliverable, as bench_transitions.py), puts them in progress with one
UPDATE, then completes every one through `transitions.apply_from_pool` (the hot route's unit of
work, without HTTP) from `--clients` concurrent coroutines. B is A with no action locking the
deliverable early (`MAY_RESOLVE_ACTIONS` emptied), which sends complete down the older path.
The variants alternate within each round (AB, BA, ...). Prints completes per second and this
process's CPU per complete (the service's code and its asyncpg client) for each measurement,
then the medians.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import uuid

import asyncpg
from bench_transitions import SCHEMA, Seed, seed_project, seed_tasks
from benchkit import platform

import task_svc
from servicekit.conditional import ExpectedVersion
from servicekit.db import Database, make_engine
from task_svc.tasks import transitions
from task_svc.tasks.transition_request import Caller

SHIPPED = transitions.MAY_RESOLVE_ACTIONS


async def in_progress(dsn: str, s: Seed, n: int) -> list[uuid.UUID]:
    ids = await seed_tasks(dsn, s, n)
    conn = await asyncpg.connect(dsn, server_settings={"search_path": SCHEMA})
    try:
        await conn.execute(
            "UPDATE tasks SET status = 'in_progress', row_version = 2, assigned_to = $2, "
            "started_at = now() WHERE id = ANY($1::uuid[])",
            ids,
            s.user,
        )
        await conn.execute("VACUUM ANALYZE tasks")
    finally:
        await conn.close()
    return ids


async def done(dsn: str, ids: list[uuid.UUID]) -> int:
    conn = await asyncpg.connect(dsn, server_settings={"search_path": SCHEMA})
    try:
        n: int = await conn.fetchval(
            "SELECT count(*) FROM tasks WHERE id = ANY($1::uuid[]) AND status = 'done'", ids
        )
    finally:
        await conn.close()
    return n


async def measure(db: Database, s: Seed, ids: list[uuid.UUID], clients: int) -> tuple[float, float]:
    """(completes per second, CPU ms per complete) for completing every one of `ids`."""
    caller = Caller(actor=str(s.user), roles=frozenset({"operator"}), user_id=s.user)
    queue = list(ids)

    async def client() -> None:
        while queue:
            await transitions.apply_from_pool(
                db,
                org_id=s.org,
                task_id=queue.pop(),
                action="complete",
                payload={},
                expected=ExpectedVersion(2),
                client_event_id=None,
                caller=caller,
            )

    wall, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(client() for _ in range(clients)))
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return len(ids) / wall, cpu / len(ids) * 1000


async def run(url: str, dsn: str, args: argparse.Namespace) -> None:
    s = await seed_project(dsn)
    engine = make_engine(
        url, schema=SCHEMA, application_name="ab", pool_size=args.clients, max_overflow=0
    )
    db = Database(engine)
    results: dict[str, list[tuple[float, float]]] = {"A": [], "B": []}

    def median(variant: str, figure: int) -> float:
        return statistics.median(r[figure] for r in results[variant])

    try:
        for rnd in range(args.rounds):
            for variant in ("A", "B") if rnd % 2 == 0 else ("B", "A"):
                ids = await in_progress(dsn, s, args.tasks)
                transitions.MAY_RESOLVE_ACTIONS = SHIPPED if variant == "A" else frozenset()
                rate, cpu = await measure(db, s, ids, args.clients)
                assert await done(dsn, ids) == len(ids)
                results[variant].append((rate, cpu))
                print(
                    f"round {rnd + 1} {variant}: {rate:6.0f} completes/s, "
                    f"{cpu:.3f} ms CPU per complete",
                    flush=True,
                )
    finally:
        transitions.MAY_RESOLVE_ACTIONS = SHIPPED
        await engine.dispose()
    for v, name in (("A", "deliverable locked with the task"), ("B", "checked on its own")):
        print(f"{v} ({name}): median {median(v, 0):.0f}/s, {median(v, 1):.3f} ms CPU")
    print(f"A / B throughput: {median('A', 0) / median('B', 0):.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--tasks", type=int, default=3000)
    parser.add_argument("--clients", type=int, default=16)
    args = parser.parse_args()
    with platform(task_svc, name="ab-complete") as p:
        asyncio.run(run(p.url, p.dsn, args))


if __name__ == "__main__":
    main()
