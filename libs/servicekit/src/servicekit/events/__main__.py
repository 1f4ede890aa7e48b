"""`python -m servicekit.events dead-letters list|redrive --service <name>`.

Redis comes from `--redis-url`, else `BLUEPRINT_REDIS_URL`, else redis://localhost:6379/0.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys

import redis.asyncio as aioredis

from servicekit.events.deadletters import list_dead_letters, redrive
from servicekit.jsonutil import dumps


async def _run(args: argparse.Namespace) -> int:
    client = aioredis.from_url(args.redis_url, decode_responses=True)
    try:
        if args.action == "list":
            for letter in await list_dead_letters(
                client, args.service, prefix=args.prefix, limit=args.limit
            ):
                sys.stdout.write(dumps(letter.__dict__).decode() + "\n")
            return 0
        moved = await redrive(client, args.service, prefix=args.prefix, ids=args.id or None)
        sys.stdout.write(f"re-drove {moved} event(s) to {args.service}\n")
        return 0
    finally:
        await client.aclose()  # type: ignore[attr-defined]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m servicekit.events")
    sub = parser.add_subparsers(dest="command", required=True)
    dl = sub.add_parser("dead-letters", help="list or re-drive a service's dead letters")
    dl.add_argument("action", choices=["list", "redrive"])
    dl.add_argument(
        "--service", required=True, help="the consuming service (its group), e.g. qc-svc"
    )
    dl.add_argument("--id", action="append", help="re-drive only this dead-letter id (repeatable)")
    dl.add_argument("--limit", type=int, default=100)
    dl.add_argument("--prefix", default="events")
    dl.add_argument(
        "--redis-url",
        default=os.environ.get("BLUEPRINT_REDIS_URL", "redis://localhost:6379/0"),
    )
    args = parser.parse_args(argv)
    return asyncio.run(_run(args))


if __name__ == "__main__":
    raise SystemExit(main())
