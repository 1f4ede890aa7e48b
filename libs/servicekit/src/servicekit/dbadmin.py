"""Provisioning (as a superuser): the database, one role per service owning its own schema.

Each service's role owns its schema and nothing else: no rights on the other schemas, no CREATE
on the database or on `public`. That is what keeps services from reading each other's tables.
"""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg


@dataclass(frozen=True)
class ServiceSchema:
    role: str
    schema: str
    password: str


def _ident(name: str) -> str:
    if not name.replace("_", "").isalnum():
        raise ValueError(f"refusing an unusual SQL identifier: {name!r}")
    return f'"{name}"'


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


async def ensure_database(admin_dsn: str, database: str) -> None:
    conn = await asyncpg.connect(admin_dsn, database="postgres")
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", database)
        if not exists:
            await conn.execute(f"CREATE DATABASE {_ident(database)}")
    finally:
        await conn.close()


async def drop_database(admin_dsn: str, database: str) -> None:
    conn = await asyncpg.connect(admin_dsn, database="postgres")
    try:
        await conn.execute(f"DROP DATABASE IF EXISTS {_ident(database)} WITH (FORCE)")
    finally:
        await conn.close()


async def provision(admin_dsn: str, database: str, services: list[ServiceSchema]) -> None:
    """Create (or bring up to date) the database, roles and schemas. Safe to run again."""
    await ensure_database(admin_dsn, database)
    conn = await asyncpg.connect(admin_dsn, database=database)
    try:
        db = _ident(database)
        await conn.execute(f"REVOKE ALL ON DATABASE {db} FROM PUBLIC")
        await conn.execute("REVOKE ALL ON SCHEMA public FROM PUBLIC")
        has_pgss = await conn.fetchval(
            "SELECT 1 FROM pg_available_extensions WHERE name = 'pg_stat_statements'"
        )
        if has_pgss:
            await conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        for svc in services:
            role, schema = _ident(svc.role), _ident(svc.schema)
            exists = await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", svc.role)
            verb = "ALTER" if exists else "CREATE"
            await conn.execute(
                f"{verb} ROLE {role} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE "
                f"PASSWORD {_literal(svc.password)}"
            )
            await conn.execute(f"GRANT CONNECT, TEMPORARY ON DATABASE {db} TO {role}")
            await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {schema} AUTHORIZATION {role}")
            await conn.execute(f"ALTER SCHEMA {schema} OWNER TO {role}")
            await conn.execute(f"REVOKE ALL ON SCHEMA {schema} FROM PUBLIC")
            await conn.execute(f"ALTER ROLE {role} IN DATABASE {db} SET search_path = {schema}")
    finally:
        await conn.close()
