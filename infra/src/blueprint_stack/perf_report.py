"""The top statements of pg_stat_statements on the running stack, per service role: by total
time and by calls, with calls, mean and max ms and rows (`make perf-report [RESET=1]`).

    python -m blueprint_stack.perf_report [--top 10] [--reset]

The stack's cluster loads pg_stat_statements (track=all) and provisioning creates the extension;
this reads it as the superuser over the unix socket, like `psql` from `make run`'s banner.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import sys
from collections.abc import Sequence
from typing import Any

import asyncpg

from blueprint_stack.config import SERVICES, StackConfig
from servicekit.devstack.postgres import PostgresCluster

_QUERY = """
SELECT r.rolname AS role, s.calls, s.total_exec_time AS total_ms, s.mean_exec_time AS mean_ms,
       s.max_exec_time AS max_ms, s.rows, regexp_replace(s.query, '\\s+', ' ', 'g') AS query
FROM pg_stat_statements s
JOIN pg_roles r ON r.oid = s.userid
JOIN pg_database d ON d.oid = s.dbid
WHERE d.datname = $1 AND r.rolname = ANY($2::text[])
ORDER BY r.rolname, {order} DESC
"""
QUERY_WIDTH = 90


def _table(title: str, rows: Sequence[Any], top: int) -> list[str]:
    lines = [f"-- {title}", f"{'calls':>9} {'total ms':>10} {'mean ms':>8} {'max ms':>8} "
             f"{'rows':>9}  query"]  # fmt: skip
    for row in rows[:top]:
        query = row["query"] if len(row["query"]) <= QUERY_WIDTH else row["query"][:87] + "..."
        lines.append(
            f"{row['calls']:>9} {row['total_ms']:>10.1f} {row['mean_ms']:>8.2f} "
            f"{row['max_ms']:>8.2f} {row['rows']:>9}  {query}"
        )
    return lines


def _per_role(rows: Sequence[Any]) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {}
    for row in rows:
        out.setdefault(row["role"], []).append(row)
    return out


def service_roles() -> list[str]:
    """The database role of each service (its package's ROLE)."""
    return [str(importlib.import_module(svc.package).ROLE) for svc in SERVICES]


async def report(dsn: str, database: str, *, top: int, reset: bool) -> list[str]:
    roles = service_roles()
    conn = await asyncpg.connect(dsn, database=database)
    try:
        by_time = _per_role(
            await conn.fetch(_QUERY.format(order="s.total_exec_time"), database, roles)
        )
        by_calls = _per_role(await conn.fetch(_QUERY.format(order="s.calls"), database, roles))
        if reset:
            await conn.execute("SELECT pg_stat_statements_reset()")
    finally:
        await conn.close()
    lines: list[str] = []
    for role in sorted(by_time):
        lines.append(f"== {role}")
        lines += _table(f"top {top} by total time", by_time[role], top)
        lines += _table(f"top {top} by calls", by_calls[role], top)
        lines.append("")
    if not lines:
        lines.append("pg_stat_statements holds no statement of the services yet: run some load")
    if reset:
        lines.append("statistics reset: the next report counts from now")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--top", type=int, default=10)
    parser.add_argument("--reset", action="store_true", help="reset the statistics afterwards")
    args = parser.parse_args(argv)
    config = StackConfig.from_env()
    cluster = PostgresCluster(config.pg_dir, config.postgres_port, name="blueprint")
    try:
        lines = asyncio.run(
            report(cluster.admin_dsn, config.database, top=args.top, reset=args.reset)
        )
    except (OSError, asyncpg.PostgresError) as exc:
        print(f"cannot read pg_stat_statements (is `make run` up?): {exc}", file=sys.stderr)
        return 1
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
