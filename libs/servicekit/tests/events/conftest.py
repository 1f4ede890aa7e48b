"""Fixtures of the event backbone tests: a throwaway `events_test` schema with an outbox, an
inbox, an aggregate table and a ledger (the business effect), plus helpers to write events."""

from __future__ import annotations

import asyncio
import importlib.util
import secrets
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import redis.asyncio as aioredis
from sqlalchemy import BigInteger, Column, Identity, Integer, MetaData, Table, Text, text
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from servicekit.db import NAMING_CONVENTION, Database, make_engine
from servicekit.dbadmin import ServiceSchema, provision
from servicekit.events import emit
from servicekit.outbox import create_outbox_sql, inbox_table, outbox_table

HERE = Path(__file__).resolve().parent
PROC_SCRIPT = HERE / "events_proc.py"
SCHEMA = "events_test"


def _load_proc() -> ModuleType:
    spec = importlib.util.spec_from_file_location("events_proc", PROC_SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["events_proc"] = module
    spec.loader.exec_module(module)
    return module


proc = _load_proc()

metadata = MetaData(schema=SCHEMA, naming_convention=NAMING_CONVENTION)
outbox = outbox_table(metadata)
inbox = inbox_table(metadata)
Table("aggregate", metadata, Column("id", Text, primary_key=True), Column("version", Integer))
Table(
    "ledger",
    metadata,
    Column("id", BigInteger, Identity(always=True), primary_key=True),  # handling order
    Column("event_id", UUID(as_uuid=True), nullable=False),
    Column("aggregate_id", Text, nullable=False),
    Column("n", Integer, nullable=False),
)


@dataclass
class EventsDb:
    url: str
    schema: str = SCHEMA


@pytest.fixture(scope="session")
def events_db(test_database: Any) -> EventsDb:
    password = secrets.token_hex(12)
    asyncio.run(
        provision(
            test_database.server.admin_dsn,
            test_database.name,
            [ServiceSchema("events_test", SCHEMA, password)],
        )
    )
    url = test_database.server.url_for("events_test", password, test_database.name)

    async def create() -> None:
        engine = create_async_engine(url)
        async with engine.begin() as conn:
            await conn.run_sync(metadata.create_all)
            for stmt in create_outbox_sql(SCHEMA):
                await conn.execute(text(stmt))
        await engine.dispose()

    asyncio.run(create())
    return EventsDb(url)


@pytest.fixture(scope="session")
async def ev_engine(events_db: EventsDb) -> AsyncIterator[AsyncEngine]:
    engine = make_engine(
        events_db.url, schema=SCHEMA, application_name="events-tests", pool_size=10
    )
    yield engine
    await engine.dispose()


@pytest.fixture
async def ev_database(ev_engine: AsyncEngine) -> AsyncIterator[Database]:
    yield Database(ev_engine)
    async with ev_engine.begin() as conn:
        await conn.execute(
            text(
                "TRUNCATE events_test.outbox, events_test.inbox, events_test.aggregate,"
                " events_test.ledger RESTART IDENTITY"
            )
        )


@pytest.fixture
def prefix() -> str:
    """Stream names of their own for each test, on the shared Redis."""
    return f"t{uuid.uuid4().hex[:10]}"


@pytest.fixture
async def rds(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.from_url(redis_url, decode_responses=True)
    yield client
    await client.aclose()


async def write_event(
    engine: AsyncEngine, aggregate_id: str, *, poison: bool = False
) -> tuple[uuid.UUID, int]:
    """One change of an aggregate: bump its row (taking its lock), then write its event."""
    db = Database(engine)
    async with db.sessionmaker() as session, session.begin():
        n = (
            await session.execute(
                text(
                    "INSERT INTO events_test.aggregate (id, version) VALUES (:id, 1)"
                    " ON CONFLICT (id) DO UPDATE SET version = aggregate.version + 1"
                    " RETURNING version"
                ),
                {"id": aggregate_id},
            )
        ).scalar_one()
        event_id = await emit(
            session,
            outbox,
            proc.LedgerEntryV1(aggregate_id=aggregate_id, n=n, poison=poison),
            source=proc.SERVICE,
            aggregate_type="aggregate",
            aggregate_id=aggregate_id,
        )
    return event_id, n


async def eventually(
    check: Callable[[], Awaitable[bool]], *, timeout: float = 30.0, what: str = "condition"
) -> None:
    """Wait until `check()` is true (polling), failing after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def scalar(engine: AsyncEngine, sql: str, **params: Any) -> Any:
    async with engine.connect() as conn:
        return (await conn.execute(text(sql), params)).scalar()


@dataclass
class Procs:
    events_db: EventsDb
    started: list[subprocess.Popen[bytes]]

    def start(self, mode: str, redis_url: str, prefix: str, *extra: str) -> subprocess.Popen[bytes]:
        p = subprocess.Popen(
            [
                sys.executable,
                str(PROC_SCRIPT),
                mode,
                "--db-url",
                self.events_db.url,
                "--redis-url",
                redis_url,
                "--prefix",
                prefix,
                *extra,
            ],
        )
        self.started.append(p)
        return p


@pytest.fixture
def procs(events_db: EventsDb) -> Iterator[Procs]:
    p = Procs(events_db, [])
    yield p
    for child in p.started:
        if child.poll() is None:
            child.kill()
            child.wait(10)


@dataclass
class Kit:
    """What the tests share: the engine, the test payload module and the helpers above."""

    engine: AsyncEngine
    database: Database
    events_db: EventsDb
    proc: ModuleType = proc
    outbox: Table = outbox

    async def write(self, aggregate_id: str, *, poison: bool = False) -> tuple[uuid.UUID, int]:
        return await write_event(self.engine, aggregate_id, poison=poison)

    async def scalar(self, sql: str, **params: Any) -> Any:
        return await scalar(self.engine, sql, **params)

    async def eventually(
        self, check: Callable[[], Awaitable[bool]], *, timeout: float = 30.0, what: str = "it"
    ) -> None:
        await eventually(check, timeout=timeout, what=what)


@pytest.fixture
def kit(ev_engine: AsyncEngine, ev_database: Database, events_db: EventsDb) -> Kit:
    return Kit(ev_engine, ev_database, events_db)
