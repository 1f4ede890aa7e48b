"""Statements on a unit of work's connection, whichever it is.

Every repository function of the task write path takes a `Conn`: SQLAlchemy's connection (a
session's, a worker's), or the pool's asyncpg connection itself, which the transition route
uses (`servicekit.db.driver_transaction` / `driver_autocommit`): the statements and the rows
they return are the same either way.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, TypeAlias

import asyncpg
from sqlalchemy.ext.asyncio import AsyncConnection

# A unit of work's connection: SQLAlchemy's, or asyncpg's own on the transition route.
Conn: TypeAlias = AsyncConnection | asyncpg.Connection


async def fetch(conn: Conn, sql: str, params: Sequence[Any]) -> list[Mapping[str, Any]]:
    """The rows of one statement, as mappings by column name."""
    rows: list[Any]
    if isinstance(conn, AsyncConnection):
        rows = list((await conn.exec_driver_sql(sql, tuple(params))).mappings())
    else:
        rows = await conn.fetch(sql, *params)
    return rows


async def fetchrow(conn: Conn, sql: str, params: Sequence[Any]) -> Mapping[str, Any] | None:
    """The first row of one statement, or None."""
    row: Any
    if isinstance(conn, AsyncConnection):
        row = (await conn.exec_driver_sql(sql, tuple(params))).mappings().first()
    else:
        row = await conn.fetchrow(sql, *params)
    return row


async def execute(conn: Conn, sql: str, params: Sequence[Any]) -> None:
    """Run one statement that returns no rows."""
    if isinstance(conn, AsyncConnection):
        await conn.exec_driver_sql(sql, tuple(params))
    else:
        await conn.execute(sql, *params)
