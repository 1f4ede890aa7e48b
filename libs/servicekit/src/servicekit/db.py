"""Async engine, sessions, the unit of work, and the declarative Base factory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Depends, Request
from sqlalchemy import MetaData, text
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from servicekit.db_tracing import driver_span_logger
from servicekit.jsonutil import dumps, loads

# Stable constraint names, so Alembic diffs and error messages never depend on luck.
NAMING_CONVENTION: dict[str, str] = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def service_metadata(schema: str) -> MetaData:
    """The MetaData of a service: its tables live in `schema`, named by the convention.

    A service spells its Base out, so type checkers see a class:

        class Base(DeclarativeBase):
            metadata = service_metadata(SCHEMA)
    """
    return MetaData(schema=schema, naming_convention=NAMING_CONVENTION)


def _json_serializer(value: Any) -> str:
    return dumps(value).decode()


def make_engine(
    url: str,
    *,
    schema: str,
    application_name: str,
    pool_size: int = 10,
    max_overflow: int = 10,
    echo: bool = False,
) -> AsyncEngine:
    return create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_pre_ping=False,
        echo=echo,
        json_serializer=_json_serializer,
        json_deserializer=loads,
        connect_args={
            "server_settings": {"search_path": schema, "application_name": application_name},
            "timeout": 10,
        },
    )


class Database:
    """The engine and session factory of one service.

    In tests a Database can be bound to one connection inside an outer transaction, so that every
    unit of work commits into a savepoint and the test rolls everything back at the end.
    """

    def __init__(self, engine: AsyncEngine, bind: AsyncConnection | None = None) -> None:
        self.engine = engine
        self.bind = bind
        if bind is None:
            self.sessionmaker = async_sessionmaker(engine, expire_on_commit=False)
        else:
            self.sessionmaker = async_sessionmaker(
                bind=bind, expire_on_commit=False, join_transaction_mode="create_savepoint"
            )

    async def ping(self) -> None:
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def dispose(self) -> None:
        await self.engine.dispose()


async def get_database(request: Request) -> Database:
    # async on purpose: FastAPI runs a plain `def` dependency in a thread pool, per request.
    db: Database = request.app.state.db
    return db


@asynccontextmanager
async def transaction(db: Database) -> AsyncIterator[AsyncSession]:
    """One unit of work: commit when the block ends normally, roll back when it raises."""
    async with db.sessionmaker() as session:
        try:
            yield session
        except BaseException:
            await session.rollback()
            raise
        else:
            await session.commit()


@asynccontextmanager
async def connection_transaction(db: Database) -> AsyncIterator[AsyncConnection]:
    """One unit of work on a bare connection, without an ORM session: commit when the block
    ends normally, roll back when it raises (as `transaction`).

    For the hottest routes, whose work is explicit SQL on a connection: the session's identity
    map and transaction state machine are pure overhead there. Bound to a test's connection, the
    block is a savepoint of the test's transaction, like a session's.
    """
    if db.bind is None:
        async with db.engine.begin() as conn:
            yield conn
    else:
        async with db.bind.begin_nested():
            yield db.bind


async def _driver(conn: AsyncConnection) -> Any:
    """The asyncpg connection under a SQLAlchemy connection."""
    driver = (await conn.get_raw_connection()).driver_connection
    assert driver is not None  # a connection checked out of the pool is open
    return driver


@asynccontextmanager
async def _pooled_driver(db: Database) -> AsyncIterator[Any]:
    """The asyncpg connection of a pooled SQLAlchemy connection, with its query spans; left
    broken or inside a transaction (a cancelled request), it is invalidated, never handed out
    again."""
    async with db.engine.connect() as conn:
        driver = await _driver(conn)
        spans = driver_span_logger(db.engine.sync_engine)
        if spans is not None:
            driver.add_query_logger(spans)
        try:
            yield driver
        except BaseException:
            if driver.is_closed() or driver.is_in_transaction():
                await conn.invalidate()
            raise
        finally:
            if spans is not None:
                driver.remove_query_logger(spans)


@asynccontextmanager
async def driver_transaction(db: Database) -> AsyncIterator[Any]:
    """One unit of work on the pool's asyncpg connection itself: commit when the block ends
    normally, roll back when it raises (as `transaction`).

    For the hottest route, whose few statements are explicit SQL: SQLAlchemy's connection,
    cursor and result layers (a greenlet switch, a lock, a regex and a result wrapper per
    statement) are skipped; the pool still hands the connection out and takes it back. A
    connection left broken or inside a transaction is invalidated, never handed out again.
    Bound to a test's connection, the block is a savepoint of the test's transaction, like a
    session's.
    """
    if db.bind is not None:
        async with db.bind.begin_nested():
            yield await _driver(db.bind)
        return
    async with _pooled_driver(db) as driver, driver.transaction():
        yield driver


@asynccontextmanager
async def driver_autocommit(db: Database) -> AsyncIterator[Any]:
    """The pool's asyncpg connection outside any transaction: each statement commits by itself,
    with no BEGIN and COMMIT round trips (as `driver_transaction` otherwise).

    For a hot path that reads, decides, then writes in ONE statement that checks nothing changed
    since the read (optimistic concurrency). Bound to a test's connection, the block is a
    savepoint of the test's transaction.
    """
    if db.bind is not None:
        async with db.bind.begin_nested():
            yield await _driver(db.bind)
        return
    async with _pooled_driver(db) as driver:
        yield driver


@asynccontextmanager
async def autocommit(db: Database) -> AsyncIterator[AsyncConnection]:
    """A connection on which each statement commits by itself: no BEGIN and COMMIT round trips.

    For a hot path whose every unit of work is ONE statement (a CTE can write several tables
    atomically): it costs one round trip instead of three. Bound to a test's connection, it is
    a savepoint of the test's transaction, as `transaction` is.
    """
    if db.bind is None:
        async with db.engine.connect() as conn:
            yield await conn.execution_options(isolation_level="AUTOCOMMIT")
    else:
        async with db.bind.begin_nested():
            yield db.bind


async def _unit_of_work(db: Database = Depends(get_database)) -> AsyncIterator[AsyncSession]:
    """One transaction per request: commit when the handler returns, roll back when it raises.

    It ends before the response is sent, so a failed commit is the client's error response and
    never a success that did not happen. (A hot route may use `transaction(db)` inline instead,
    with the same semantics and less dependency machinery per request.)
    """
    async with transaction(db) as session:
        yield session


def unit_of_work() -> Any:
    """`session: AsyncSession = unit_of_work()` in a route signature."""
    return Depends(_unit_of_work, scope="function")
