"""A relay or consumer of the `events_test` schema run as a real process, for the crash tests.

Also imported by the tests (by path) for the payload model and handlers they share.

    python events_proc.py relay --db-url ... --redis-url ... --prefix ... [--hang-after-publish F]
    python events_proc.py consumer --db-url ... --redis-url ... --prefix ... [--hang-in-handler F]

`--hang-*` write file F at the chosen moment and then hang until killed.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import redis.asyncio as aioredis
from pydantic import BaseModel, ConfigDict
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.envelope import CloudEvent
from servicekit.db import Database, make_engine
from servicekit.events import Consumer, EventHandlers, Relay, stream_for

SCHEMA = "events_test"
SERVICE = "events-test"


class LedgerEntryV1(BaseModel):
    """A test event: the `n`-th change of an aggregate."""

    model_config = ConfigDict(frozen=True, extra="ignore")
    event_type: ClassVar[str] = "ledger.entry_added"
    schema_version: ClassVar[int] = 1

    aggregate_id: str
    n: int
    poison: bool = False


async def record(session: AsyncSession, event: CloudEvent[LedgerEntryV1]) -> None:
    """The business effect of an event: one ledger row (no unique key, so twice shows)."""
    await session.execute(
        text("INSERT INTO events_test.ledger (event_id, aggregate_id, n) VALUES (:id, :agg, :n)"),
        {"id": event.id, "agg": event.data.aggregate_id, "n": event.data.n},
    )


def make_handlers(
    before_commit: Callable[[CloudEvent[LedgerEntryV1]], Any] | None = None,
) -> EventHandlers:
    handlers = EventHandlers()

    async def handle(session: AsyncSession, event: CloudEvent[LedgerEntryV1]) -> None:
        await record(session, event)
        if before_commit is not None:
            result = before_commit(event)
            if asyncio.iscoroutine(result):
                await result

    handlers.add(LedgerEntryV1, handle, producer=SERVICE)
    return handlers


async def _hang(marker: Path) -> None:
    marker.write_text("here")
    await asyncio.Event().wait()  # until SIGKILL


async def main(args: argparse.Namespace) -> None:
    engine = make_engine(args.db_url, schema=SCHEMA, application_name=f"events-proc-{args.mode}")
    redis = aioredis.from_url(args.redis_url, decode_responses=True)
    if args.mode == "relay":

        async def after_publish(rows: Any) -> None:
            if args.hang_after_publish:
                await _hang(Path(args.hang_after_publish))

        relay = Relay(
            engine=engine,
            schema=SCHEMA,
            redis=redis,
            stream=stream_for(SERVICE, args.prefix),
            service=SERVICE,
            batch_size=args.batch_size,
            poll_interval=0.2,
            after_publish=after_publish,
        )
        await relay.run()
    else:

        async def hang(event: CloudEvent[LedgerEntryV1]) -> None:
            if args.hang_in_handler:
                await _hang(Path(args.hang_in_handler))

        consumer = Consumer(
            sessionmaker=Database(engine).sessionmaker,
            schema=SCHEMA,
            redis=redis,
            group=SERVICE,
            handlers=make_handlers(hang),
            prefix=args.prefix,
            block_ms=200,
            claim_idle_ms=args.claim_idle_ms,
        )
        await consumer.run()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["relay", "consumer"])
    parser.add_argument("--db-url", required=True)
    parser.add_argument("--redis-url", required=True)
    parser.add_argument("--prefix", required=True)
    parser.add_argument("--batch-size", type=int, default=50)
    parser.add_argument("--claim-idle-ms", type=int, default=500)
    parser.add_argument("--hang-after-publish")
    parser.add_argument("--hang-in-handler")
    asyncio.run(main(parser.parse_args()))
