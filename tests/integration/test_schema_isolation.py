"""Each service's database role owns its schema and has no rights anywhere else."""

from __future__ import annotations

import itertools

import asyncpg
import pytest

import notify_svc
import qc_svc
import task_svc
import template_svc
from servicekit.testing.plugin import ServiceDatabase, ServiceSpec, TestDatabase

SERVICES = [template_svc, task_svc, qc_svc, notify_svc]


@pytest.fixture(scope="module")
def all_services(test_database: TestDatabase) -> dict[str, ServiceDatabase]:
    return {
        m.SCHEMA: test_database.service(ServiceSpec(m.ROLE, m.SCHEMA, m.SERVICE_DIR))
        for m in SERVICES
    }


async def _connect(db: ServiceDatabase) -> asyncpg.Connection:
    return await asyncpg.connect(db.url.replace("postgresql+asyncpg://", "postgresql://"))


@pytest.mark.parametrize(
    ("own", "other"), list(itertools.permutations([m.SCHEMA for m in SERVICES], 2))
)
async def test_a_role_cannot_touch_another_schema(
    all_services: dict[str, ServiceDatabase], own: str, other: str
) -> None:
    conn = await _connect(all_services[own])
    try:
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.fetch(f'SELECT * FROM "{other}".outbox')
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute(f'CREATE TABLE "{other}".intruder (id int)')
    finally:
        await conn.close()


@pytest.mark.parametrize("schema", [m.SCHEMA for m in SERVICES])
async def test_a_role_works_in_its_own_schema_only(
    all_services: dict[str, ServiceDatabase], schema: str
) -> None:
    conn = await _connect(all_services[schema])
    try:
        assert (await conn.fetchval("SHOW search_path")).strip('"') == schema
        # Reading and writing its own tables works (either would raise if the role lacked rights).
        await conn.execute(f'CREATE TEMP TABLE probe AS SELECT * FROM "{schema}".outbox LIMIT 0')
        version = await conn.fetchval(f'SELECT version_num FROM "{schema}".alembic_version')
        assert version, "the Alembic version table lives inside the service's schema"
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute("CREATE TABLE public.intruder (id int)")
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute("CREATE SCHEMA intruder")
    finally:
        await conn.close()
