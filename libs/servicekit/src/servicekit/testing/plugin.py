"""pytest plugin: a private PostgreSQL cluster and Redis for the test session, a fresh database,
each service's migrations, per-test isolation, and JWTs signed with a session key.

Reuse running servers instead of starting private ones by setting
`BLUEPRINT_TEST_PG_ADMIN_DSN` (a superuser DSN) and/or `BLUEPRINT_TEST_REDIS_URL`.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest

from servicekit.dbadmin import ServiceSchema, drop_database, ensure_database, provision
from servicekit.devstack import PostgresCluster, RedisServer, free_port
from servicekit.devstack.tokens import mint_token
from servicekit.migrations import upgrade
from servicekit.testing.keys import ensure_key_pair

PG_ENV = "BLUEPRINT_TEST_PG_ADMIN_DSN"
REDIS_ENV = "BLUEPRINT_TEST_REDIS_URL"
ISSUER = "blueprint-test"
AUDIENCE = "blueprint"
DEFAULT_ORG = uuid.UUID("00000000-0000-4000-8000-00000000000a")
DEFAULT_USER = uuid.UUID("00000000-0000-4000-8000-00000000000b")


def run_blocking(coro: Any) -> Any:
    """Run a coroutine to completion from sync code, even when an event loop is running here."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    import concurrent.futures

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


def _world_readable_tmpdir(prefix: str) -> Path:
    path = Path(tempfile.mkdtemp(prefix=prefix))
    path.chmod(0o755)
    return path


@dataclass
class PgServer:
    admin_dsn: str
    host: str
    port: int

    def url_for(self, role: str, password: str, database: str) -> str:
        return f"postgresql+asyncpg://{role}:{password}@{self.host}:{self.port}/{database}"


@dataclass(frozen=True)
class ServiceSpec:
    """What the harness needs to know of a service: its role, schema and migrations folder."""

    role: str
    schema: str
    service_dir: Path


@dataclass
class ServiceDatabase:
    spec: ServiceSpec
    url: str
    password: str
    database: str


@dataclass
class TestDatabase:
    """One fresh database for the whole test session; services are provisioned on demand."""

    __test__ = False  # a fixture's type, not a test class

    server: PgServer
    name: str
    _migrated: dict[str, ServiceDatabase] = field(default_factory=dict)

    def service(self, spec: ServiceSpec) -> ServiceDatabase:
        if spec.role not in self._migrated:
            password = secrets.token_hex(12)
            run_blocking(
                provision(
                    self.server.admin_dsn,
                    self.name,
                    [ServiceSchema(spec.role, spec.schema, password)],
                )
            )
            url = self.server.url_for(spec.role, password, self.name)
            upgrade(spec.service_dir, url)
            self._migrated[spec.role] = ServiceDatabase(spec, url, password, self.name)
        return self._migrated[spec.role]

    def admin_url(self) -> str:
        """asyncpg DSN of the superuser on the test database."""
        parsed = urlparse(self.server.admin_dsn)
        return parsed._replace(path=f"/{self.name}").geturl()


@dataclass
class JwtKeys:
    private_key_file: Path
    public_key_file: Path
    issuer: str = ISSUER
    audience: str = AUDIENCE

    @property
    def private_pem(self) -> bytes:
        return self.private_key_file.read_bytes()

    def token(
        self,
        roles: list[str] | tuple[str, ...] | str = ("viewer",),
        *,
        org_id: uuid.UUID | str | None = DEFAULT_ORG,
        user_id: uuid.UUID | str = DEFAULT_USER,
        ttl: int = 600,
        **overrides: Any,
    ) -> str:
        if isinstance(roles, str):
            roles = [r for r in roles.split(",") if r]
        return mint_token(
            self.private_pem,
            sub=str(user_id),
            roles=list(roles),
            org_id=org_id,
            issuer=overrides.pop("issuer", self.issuer),
            audience=overrides.pop("audience", self.audience),
            ttl_seconds=ttl,
            extra=overrides or None,
        )

    def service_token(self, name: str = "test-caller") -> str:
        return mint_token(
            self.private_pem,
            sub=f"service:{name}",
            roles=["service"],
            issuer=self.issuer,
            audience=self.audience,
        )

    def headers(self, roles: Any = ("viewer",), **kw: Any) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(roles, **kw)}"}


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    dsn = os.environ.get(PG_ENV)
    if dsn:
        parsed = urlparse(dsn)
        yield PgServer(dsn, parsed.hostname or "127.0.0.1", parsed.port or 5432)
        return
    base = _world_readable_tmpdir("bp-test-pg-")
    cluster = PostgresCluster(base, free_port(), name="test")
    cluster.start()
    try:
        yield PgServer(cluster.admin_dsn, "127.0.0.1", cluster.port)
    finally:
        cluster.stop()
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    url = os.environ.get(REDIS_ENV)
    if url:
        yield url
        return
    base = _world_readable_tmpdir("bp-test-redis-")
    server = RedisServer(base, free_port(), appendonly=False)
    server.start()
    try:
        yield server.url
    finally:
        server.stop()
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
def test_database(pg_server: PgServer) -> Iterator[TestDatabase]:
    name = f"bp_test_{secrets.token_hex(4)}"
    asyncio.run(ensure_database(pg_server.admin_dsn, name))
    try:
        yield TestDatabase(pg_server, name)
    finally:
        asyncio.run(drop_database(pg_server.admin_dsn, name))


@pytest.fixture(scope="session")
def jwt_keys(tmp_path_factory: pytest.TempPathFactory) -> JwtKeys:
    private_file, public_file = ensure_key_pair(tmp_path_factory.mktemp("jwt"))
    return JwtKeys(private_file, public_file)


def install_service_fixtures(
    namespace: dict[str, Any],
    *,
    spec: ServiceSpec,
    settings_cls: Callable[..., Any],
    create_app: Callable[..., Any],
) -> None:
    """Define a service's fixtures in its conftest: `install_service_fixtures(globals(), ...)`.

    - `service_db`: the migrated schema (once per session) and the role's URL;
    - `settings`: the service's Settings pointing at it, Redis and the session's JWT key;
    - `engine`: an engine of the service's role;
    - `db_conn` / `session`: one connection inside an outer transaction rolled back after the
      test; the app's units of work commit into savepoints of it;
    - `app` / `client`: the app bound to that connection, and an httpx client on it;
    - `committing_app` / `committing_client`: the app on its own pool with real commits (for
      concurrency), its tables emptied after the test.
    """
    namespace.update(_database_fixtures(spec, settings_cls))
    namespace.update(_app_fixtures(spec, create_app))


def _database_fixtures(spec: ServiceSpec, settings_cls: Callable[..., Any]) -> dict[str, Any]:
    from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

    from servicekit.db import make_engine

    @pytest.fixture(scope="session")
    def service_db(test_database: TestDatabase) -> ServiceDatabase:
        return test_database.service(spec)

    @pytest.fixture(scope="session")
    def settings(service_db: ServiceDatabase, redis_url: str, jwt_keys: JwtKeys) -> Any:
        return settings_cls(
            database_url=service_db.url,
            redis_url=redis_url,
            jwt_public_key_file=jwt_keys.public_key_file,
            jwt_issuer=jwt_keys.issuer,
            jwt_audience=jwt_keys.audience,
            service_token_private_key_file=jwt_keys.private_key_file,
            log_json=True,
            # Tests that exercise relays and consumers start them explicitly.
            events_in_process=False,
            gc_tuning=False,
        )

    @pytest.fixture(scope="session")
    async def engine(settings: Any) -> AsyncIterator[AsyncEngine]:
        eng = make_engine(
            settings.database_url,
            schema=settings.db_schema,
            application_name=f"{settings.service_name}-tests",
            pool_size=5,
        )
        yield eng
        await eng.dispose()

    @pytest.fixture
    async def db_conn(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
        async with engine.connect() as conn:
            trans = await conn.begin()
            try:
                yield conn
            finally:
                await trans.rollback()

    @pytest.fixture
    async def session(db_conn: AsyncConnection) -> AsyncIterator[AsyncSession]:
        async with AsyncSession(
            bind=db_conn, expire_on_commit=False, join_transaction_mode="create_savepoint"
        ) as s:
            yield s

    return {
        "service_db": service_db,
        "settings": settings,
        "engine": engine,
        "db_conn": db_conn,
        "session": session,
    }


def _app_fixtures(spec: ServiceSpec, create_app: Callable[..., Any]) -> dict[str, Any]:
    import httpx
    from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

    from servicekit.db import Database

    @pytest.fixture
    async def app(
        settings: Any, engine: AsyncEngine, db_conn: AsyncConnection
    ) -> AsyncIterator[Any]:
        application = create_app(settings, database=Database(engine, bind=db_conn))
        async with application.router.lifespan_context(application):
            yield application

    @pytest.fixture
    async def client(app: Any) -> AsyncIterator[httpx.AsyncClient]:
        async with _asgi_client(app) as c:
            yield c

    @pytest.fixture
    async def committing_app(settings: Any, engine: AsyncEngine) -> AsyncIterator[Any]:
        application = create_app(settings)
        try:
            async with application.router.lifespan_context(application):
                yield application
        finally:
            await _empty_schema(engine, spec.schema)

    @pytest.fixture
    async def committing_client(committing_app: Any) -> AsyncIterator[httpx.AsyncClient]:
        async with _asgi_client(committing_app) as c:
            yield c

    return {
        "app": app,
        "client": client,
        "committing_app": committing_app,
        "committing_client": committing_client,
    }


def _asgi_client(app: Any) -> Any:
    import httpx

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


async def _empty_schema(engine: Any, schema: str) -> None:
    """Truncate every table of the schema but Alembic's (after a test that really committed)."""
    from sqlalchemy import text

    async with engine.begin() as conn:
        rows = await conn.execute(
            text(
                "SELECT tablename FROM pg_tables WHERE schemaname = :s "
                "AND tablename <> 'alembic_version'"
            ),
            {"s": schema},
        )
        tables = [f'"{schema}"."{r[0]}"' for r in rows]
        if tables:
            await conn.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
