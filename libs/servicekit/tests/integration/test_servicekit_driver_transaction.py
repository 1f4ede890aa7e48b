"""`driver_transaction`: a unit of work on the pool's asyncpg connection commits or rolls back
whole, and a connection it leaves broken is never handed out again."""

from __future__ import annotations

import uuid

import asyncpg
import pytest

from servicekit.db import Database, driver_transaction, make_engine
from servicekit.testing.plugin import TestDatabase


async def test_commits_rolls_back_and_never_reuses_a_broken_connection(
    test_database: TestDatabase,
) -> None:
    url = test_database.admin_url().replace("postgresql://", "postgresql+asyncpg://", 1)
    # One connection in the pool: whatever a unit of work leaves behind, the next one gets.
    engine = make_engine(
        url, schema="public", application_name="driver-tx", pool_size=1, max_overflow=0
    )
    db = Database(engine)
    table = f"driver_tx_{uuid.uuid4().hex[:8]}"
    try:
        async with driver_transaction(db) as conn:
            await conn.execute(f"CREATE TABLE {table} (n int)")
            await conn.execute(f"INSERT INTO {table} VALUES (1)")
        with pytest.raises(RuntimeError):
            async with driver_transaction(db) as conn:
                await conn.execute(f"INSERT INTO {table} VALUES (2)")
                raise RuntimeError("refused half way")
        # (asyncpg then reports that its transaction cannot end on a closed connection)
        with pytest.raises((RuntimeError, asyncpg.InterfaceError)):
            async with driver_transaction(db) as conn:
                await conn.execute(f"INSERT INTO {table} VALUES (3)")
                conn.terminate()  # the connection breaks under the unit of work
                raise RuntimeError("connection lost")
        async with driver_transaction(db) as conn:
            rows = await conn.fetch(f"SELECT n FROM {table} ORDER BY n")
            await conn.execute(f"DROP TABLE {table}")
        assert [r["n"] for r in rows] == [1], "only the committed unit of work is kept"
    finally:
        await engine.dispose()
