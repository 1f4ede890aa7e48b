"""What the raw transition transaction weighs in PostgreSQL, statement by statement.

    uv run python tests/perf/weigh_transition.py [--clients 16] [--seconds 5] [--tasks 20000]
        [--drop-index NAME ...]

Runs bench_transitions' raw asyncpg transactions (start + complete) against a private cluster,
then prints, per statement, pg_stat_statements' figures per call (time, buffers dirtied, WAL
records and bytes), the WAL of one whole transition, the indexes each written table carries,
the stored sizes of the JSON columns, and EXPLAIN (ANALYZE, BUFFERS, WAL) of one start's
statements (rolled back). `--drop-index` drops indexes first, to weigh what they cost.
"""

from __future__ import annotations

import argparse
import asyncio
import uuid
from datetime import UTC, datetime
from urllib.parse import urlsplit

import asyncpg
import bench_transitions as bt
from benchkit import DATABASE, Platform, platform

import task_svc
from task_svc import SCHEMA

_TOP = """
SELECT calls, total_exec_time / calls AS ms, shared_blks_dirtied::float / calls AS dirtied,
  wal_records::float / calls AS wal_records, wal_bytes::float / calls AS wal_bytes,
  left(regexp_replace(query, '\\s+', ' ', 'g'), 90) AS query
FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid
WHERE d.datname = $1 AND calls >= 100 ORDER BY total_exec_time DESC LIMIT 12
"""
_INDEXES = """
SELECT c.relname, count(*) AS indexes, string_agg(i.relname, ', ' ORDER BY i.relname) AS names
FROM pg_index x JOIN pg_class c ON c.oid = x.indrelid JOIN pg_class i ON i.oid = x.indexrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = $1 AND c.relname IN ('tasks', 'task_events', 'outbox') GROUP BY c.relname
"""
_SIZES = """
SELECT 'task_events.response' AS what, avg(pg_column_size(response))::int AS bytes
FROM task_events WHERE response IS NOT NULL
UNION ALL SELECT 'task_events.payload', avg(pg_column_size(payload))::int FROM task_events
UNION ALL SELECT 'outbox.payload', avg(pg_column_size(payload))::int FROM outbox
UNION ALL SELECT 'outbox.headers', avg(pg_column_size(headers))::int FROM outbox
"""


def admin_dsn(p: Platform) -> str:
    """The cluster's superuser over its unix socket, in the benchmark's database."""
    port = urlsplit(p.dsn).port
    return f"postgresql://postgres@/{DATABASE}?host={p.workdir / 'pg' / 'run'}&port={port}"


async def explain_start(dsn: str, s: bt.Seed) -> None:
    """EXPLAIN (ANALYZE, BUFFERS, WAL) of a start's statements on a fresh task, rolled back."""
    [tid] = await bt.seed_tasks(dsn, s, 1)
    now = datetime.now(UTC)
    con = await asyncpg.connect(dsn, server_settings={"search_path": SCHEMA})
    try:
        tr = con.transaction()
        await tr.start()
        explain = "EXPLAIN (ANALYZE, BUFFERS, WAL, COSTS OFF, TIMING OFF) "
        statements = [
            (bt._RAW_LOCK, (tid, s.org)),
            (bt._RAW_EVENT, (s.org, tid, "start", "ready", "in_progress", "u", "{}", "c", 2,
                             "r", '{"task": {}}')),
            (bt._RAW_OUTBOX, ([uuid.uuid4()], ["task.status_changed"], [str(tid)], ["{}"], "{}")),
            (bt._RAW_UPDATE, (tid, s.org, "in_progress", s.user, now, now, None, 2, now)),
        ]  # fmt: skip
        for sql, params in statements:
            print("--", " ".join(sql.split())[:100])
            for row in await con.fetch(explain + sql, *params):
                print("  ", row[0])
        await tr.rollback()
    finally:
        await con.close()


async def weigh(p: Platform, args: argparse.Namespace) -> None:
    admin = await asyncpg.connect(
        admin_dsn(p), server_settings={"search_path": f"{SCHEMA}, public"}
    )
    try:
        await admin.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements SCHEMA public")
        for name in args.drop_index:
            await admin.execute(f'DROP INDEX "{SCHEMA}"."{name}"')
        s = await bt.seed_project(p.dsn)
        await admin.execute("SELECT pg_stat_statements_reset()")
        raw = await bt.bench_raw(p.dsn, s, args)
        print(raw.line(None))
        top = await admin.fetch(_TOP, DATABASE)
        # One lock statement per transition (start or complete, warm-up included). Statements
        # called more often also ran for the seeding (the foreign key checks): left out.
        n = max(r["calls"] for r in top if r["query"].startswith("SELECT t.id, t.org_id"))
        mine = [r for r in top if r["calls"] <= n]
        per = sum(r["wal_bytes"] * r["calls"] for r in mine) / n
        records = sum(r["wal_records"] * r["calls"] for r in mine) / n
        print(f"WAL of the statements per transition: {records:.1f} records, {per:,.0f} bytes")
        print(f"{'calls':>7} {'ms':>6} {'dirtied':>7} {'walrec':>6} {'walbytes':>8}  statement")
        for r in top:
            print(
                f"{r['calls']:7d} {r['ms']:6.3f} {r['dirtied']:7.2f} {r['wal_records']:6.1f} "
                f"{r['wal_bytes']:8.0f}  {r['query']}"
            )
        for r in await admin.fetch(_INDEXES, SCHEMA):
            print(f"{r['relname']}: {r['indexes']} indexes ({r['names']})")
        for r in await admin.fetch(_SIZES):
            print(f"{r['what']}: {r['bytes']} bytes on average")
    finally:
        await admin.close()
    await explain_start(p.dsn, s)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--tasks", type=int, default=20_000)
    parser.add_argument("--drop-index", action="append", default=[], help="an index to drop")
    args = parser.parse_args()
    with platform(task_svc, name="weigh") as p:
        asyncio.run(weigh(p, args))


if __name__ == "__main__":
    main()
