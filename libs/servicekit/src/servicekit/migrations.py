"""Alembic glue: each service's env.py calls `run_env`; tools call `upgrade`.

The version table lives inside the service's own schema, and autogenerate looks at that schema
only, so one service's migrations can never touch another's tables.

    python -m servicekit.migrations upgrade --service-dir task-svc --database-url postgresql+asyncpg://...
"""

from __future__ import annotations

import argparse
import asyncio
import os
import threading
from pathlib import Path
from typing import Any

from sqlalchemy import MetaData
from sqlalchemy.pool import NullPool

DATABASE_URL_ENV = "ALEMBIC_DATABASE_URL"


def _include_only(schema: str) -> Any:
    def include_name(name: str | None, type_: str, parent_names: Any) -> bool:
        if type_ == "schema":
            return name == schema
        return True

    return include_name


def compare_options(target_metadata: MetaData, schema: str) -> dict[str, Any]:
    return {
        "target_metadata": target_metadata,
        "version_table_schema": schema,
        "include_schemas": True,
        "include_name": _include_only(schema),
        "compare_type": True,
    }


def _name_schemas_explicitly(connection: Any) -> None:
    """The role's search_path makes its schema the default, and reflection would report its
    tables without a schema while the metadata names it: autogenerate would then propose to
    create everything again. Reflect as if `public` were the default, so both sides agree."""
    connection.dialect.default_schema_name = "public"


def diff_models_and_database(
    sync_connection: Any, target_metadata: MetaData, schema: str
) -> list[Any]:
    """What autogenerate would change: empty when the migrations create what the models say."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    dialect = sync_connection.dialect
    default = dialect.default_schema_name
    _name_schemas_explicitly(sync_connection)
    try:
        opts = compare_options(target_metadata, schema)
        opts.pop("target_metadata")
        context = MigrationContext.configure(sync_connection, opts=opts)
        return _without_expression_index_noise(list(compare_metadata(context, target_metadata)))
    finally:
        dialect.default_schema_name = default


def _without_expression_index_noise(diff: list[Any]) -> list[Any]:
    """Autogenerate cannot compare expression indexes (it reads the database's rendering of the
    expression, never equal to the model's text): it reports each as removed and added again.
    Drop such pairs; any other difference, including a missing expression index, stays."""
    removed = {
        d[1].name
        for d in diff
        if isinstance(d, tuple) and d[0] == "remove_index" and _is_expr(d[1])
    }
    added = {
        d[1].name for d in diff if isinstance(d, tuple) and d[0] == "add_index" and _is_expr(d[1])
    }
    noise = removed & added
    return [
        d
        for d in diff
        if not (
            isinstance(d, tuple) and d[0] in {"remove_index", "add_index"} and d[1].name in noise
        )
    ]


def _is_expr(index: Any) -> bool:
    from sqlalchemy import Column

    return any(not isinstance(e, Column) for e in getattr(index, "expressions", []))


def run_env(target_metadata: MetaData, *, schema: str) -> None:
    """The body of a service's migrations/env.py."""
    from alembic import context
    from sqlalchemy.ext.asyncio import create_async_engine

    config = context.config
    url = os.environ.get(DATABASE_URL_ENV) or config.get_main_option("sqlalchemy.url")
    if not url:
        raise SystemExit(f"set {DATABASE_URL_ENV} or sqlalchemy.url to the service's database URL")

    opts = compare_options(target_metadata, schema)

    if context.is_offline_mode():
        context.configure(url=url, literal_binds=True, **opts)
        with context.begin_transaction():
            context.run_migrations()
        return

    def do_run(connection: Any) -> None:
        connection.exec_driver_sql(f'SET search_path TO "{schema}"')
        _name_schemas_explicitly(connection)
        context.configure(connection=connection, **opts)
        with context.begin_transaction():
            context.run_migrations()

    async def run_async() -> None:
        engine = create_async_engine(url, poolclass=NullPool)
        try:
            async with engine.connect() as conn:
                await conn.run_sync(do_run)
                await conn.commit()
        finally:
            await engine.dispose()

    asyncio.run(run_async())


def upgrade(service_dir: Path, database_url: str, revision: str = "head") -> None:
    """Migrate one service's schema, in a thread of its own (Alembic's env uses asyncio.run)."""
    from alembic import command
    from alembic.config import Config

    service_dir = Path(service_dir).resolve()
    errors: list[BaseException] = []

    def work() -> None:
        try:
            cfg = Config(str(service_dir / "alembic.ini"))
            cfg.set_main_option("script_location", str(service_dir / "migrations"))
            cfg.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
            cfg.attributes["configure_logger"] = False
            command.upgrade(cfg, revision)
        except BaseException as exc:  # re-raised in the caller's thread
            errors.append(exc)

    thread = threading.Thread(target=work, name=f"migrate-{service_dir.name}")
    thread.start()
    thread.join()
    if errors:
        raise errors[0]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m servicekit.migrations")
    sub = parser.add_subparsers(dest="cmd", required=True)
    up = sub.add_parser("upgrade", help="migrate a service's schema to a revision (default head)")
    up.add_argument("--service-dir", required=True, type=Path)
    up.add_argument("--database-url", default=os.environ.get(DATABASE_URL_ENV))
    up.add_argument("--revision", default="head")
    args = parser.parse_args(argv)
    if not args.database_url:
        parser.error(f"--database-url or {DATABASE_URL_ENV} is required")
    upgrade(args.service_dir, args.database_url, args.revision)


if __name__ == "__main__":
    main()
