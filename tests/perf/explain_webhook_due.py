"""The dispatcher's due query on a large table: EXPLAIN (ANALYZE, BUFFERS) and timings.

    uv run python tests/perf/explain_webhook_due.py [--settled 100000] [--due 5000]
        [--endpoints 50] [--runs 20] [--plans] [--old-sql FILE]

Fills a private cluster's webhook tables directly (`--settled` succeeded deliveries, `--due`
due ones spread over `--endpoints` endpoints, two of each endpoint's rows being attempted and
one handed out), then runs `dispatch.DUE_SQL` (its marking rolled back) `--runs` times and
prints the median and best execution time; `--plans` prints one EXPLAIN ANALYZE. With
`--old-sql FILE` (a statement with the same parameters, e.g. an earlier `DUE_SQL` saved to a
file) that statement is timed too, in the same run, with `--old-index` statements (';'
separated) applied first in its transaction to give it its schema.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
from pathlib import Path
from typing import Any

import asyncpg
from benchkit import platform

import notify_svc
from notify_svc.delivery.dispatch import DUE_SQL

FILL = """
INSERT INTO webhook_endpoint (id, org_id, url, event_types, secret_encrypted)
SELECT gen_random_uuid(), '00000000-0000-4000-8000-0000000000b1', 'http://127.0.0.1:9/' || n,
       ARRAY['webhook.test'], 'x'
FROM generate_series(1, $1) n;
"""
EVENTS = """
INSERT INTO webhook_event (id, org_id, type, body, occurred_at)
SELECT gen_random_uuid(), '00000000-0000-4000-8000-0000000000b1', 'webhook.test', '{}', now()
FROM generate_series(1, $1)
"""
DELIVERIES = """
WITH e AS (SELECT id, row_number() OVER (ORDER BY id) - 1 AS n FROM webhook_endpoint),
     v AS (SELECT id, row_number() OVER (ORDER BY id) - 1 AS n FROM webhook_event)
INSERT INTO webhook_delivery (id, org_id, endpoint_id, event_id, event_type, status, attempts,
    next_attempt_at, claimed_until, enqueued_at, event_time, delivered_at)
SELECT gen_random_uuid(), '00000000-0000-4000-8000-0000000000b1', e.id, v.id, 'webhook.test',
    CASE WHEN v.n < $1 THEN 'succeeded' WHEN (v.n - $1) / $2 < 2 THEN 'delivering'
         ELSE 'pending' END,
    CASE WHEN v.n < $1 OR (v.n - $1) / $2 < 2 THEN 1 ELSE 0 END,
    CASE WHEN v.n >= $1 THEN now() - interval '1 hour' + (v.n - $1) * interval '1 ms' END,
    CASE WHEN v.n >= $1 AND (v.n - $1) / $2 < 2 THEN now() + interval '1 minute' END,
    CASE WHEN v.n >= $1 AND (v.n - $1) / $2 = 2 THEN now() END,
    now(), CASE WHEN v.n < $1 THEN now() END
FROM v JOIN e ON e.n = v.n % $2
"""
PARAMS = {"batch": 500, "requeue_after": 10.0, "max_in_flight": 8}


def positional(sql: str) -> str:
    for i, name in enumerate(PARAMS, 1):
        sql = sql.replace(f":{name}", f"${i}")
    return sql


async def explain(conn: asyncpg.Connection, options: str, sql: str, setup: list[str]) -> list[Any]:
    """`EXPLAIN (<options>)` of `sql` after the setup statements, in a transaction rolled back
    (the statement marks rows, the setup swaps indexes: neither may stay)."""
    tr = conn.transaction()
    await tr.start()
    try:
        for statement in setup:
            await conn.execute(statement)
        rows = await conn.fetch(f"EXPLAIN ({options}) " + positional(sql), *PARAMS.values())
        return [r[0] for r in rows]
    finally:
        await tr.rollback()


async def timed(conn: asyncpg.Connection, sql: str, setup: list[str], runs: int) -> list[float]:
    """Execution times (ms) of `sql`, each run in a transaction rolled back."""
    out: list[float] = []
    for _ in range(runs):
        plan = (await explain(conn, "ANALYZE, FORMAT JSON", sql, setup))[0]
        out.append(float(json.loads(plan)[0]["Execution Time"]))
    return out


async def main(args: argparse.Namespace, dsn: str) -> None:
    conn = await asyncpg.connect(dsn, server_settings={"search_path": "notify"})
    await conn.execute(FILL.replace("$1", str(args.endpoints)))
    await conn.execute(EVENTS, args.settled + args.due)
    await conn.execute(DELIVERIES, args.settled, args.endpoints)
    await conn.execute("ANALYZE")
    counts = await conn.fetch("SELECT status, count(*) FROM webhook_delivery GROUP BY 1 ORDER BY 1")
    print("rows:", ", ".join(f"{r[0]} {r[1]}" for r in counts))
    statements = [("new", str(DUE_SQL), [])]
    if args.old_sql:
        old_setup = [s for s in args.old_index.split(";") if s.strip()]
        statements.insert(0, ("old", Path(args.old_sql).read_text(), old_setup))
    for label, sql, setup in statements:
        if args.plans:
            lines = await explain(conn, "ANALYZE, BUFFERS", sql, setup)
            print(f"--- {label}\n" + "\n".join(lines))
        times = await timed(conn, sql, setup, args.runs)
        print(
            f"{label}: median {statistics.median(times):.1f} ms, best {min(times):.1f} ms "
            f"over {args.runs} runs"
        )
    await conn.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--settled", type=int, default=100_000)
    parser.add_argument("--due", type=int, default=5_000)
    parser.add_argument("--endpoints", type=int, default=50)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--plans", action="store_true")
    parser.add_argument("--old-sql")
    parser.add_argument("--old-index", default="")
    cli = parser.parse_args()
    with platform(notify_svc, name="due") as p:
        asyncio.run(main(cli, p.dsn))
