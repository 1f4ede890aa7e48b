"""Fixtures of task-svc's tests: its migrated schema, app and client (servicekit plugin), and the
REAL template-svc app in-process (its own migrated schema) for project creation."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

import template_svc
from servicekit.db import Database
from servicekit.testing.plugin import (
    JwtKeys,
    ServiceDatabase,
    ServiceSpec,
    TestDatabase,
    install_service_fixtures,
)
from task_svc import ROLE, SCHEMA, SERVICE_DIR
from task_svc.main import create_app
from task_svc.settings import Settings
from task_svc.templates_client import TemplatesClient
from template_svc.main import create_app as create_template_app
from template_svc.settings import Settings as TemplateSettings

SPEC = ServiceSpec(role=ROLE, schema=SCHEMA, service_dir=SERVICE_DIR)
TEMPLATE_SPEC = ServiceSpec(
    role=template_svc.ROLE, schema=template_svc.SCHEMA, service_dir=template_svc.SERVICE_DIR
)

install_service_fixtures(globals(), spec=SPEC, settings_cls=Settings, create_app=create_app)


@pytest.fixture(scope="session")
def template_service_db(test_database: TestDatabase) -> ServiceDatabase:
    """template-svc's own migrated schema (sync: provisioning runs its own event loop)."""
    return test_database.service(TEMPLATE_SPEC)


@pytest.fixture(scope="session")
async def template_app(
    template_service_db: ServiceDatabase, redis_url: str, jwt_keys: JwtKeys
) -> AsyncIterator[Any]:
    """template-svc itself, committing into its own schema for the whole session."""
    db = template_service_db
    settings = TemplateSettings(
        database_url=db.url,
        redis_url=redis_url,
        jwt_public_key_file=jwt_keys.public_key_file,
        jwt_issuer=jwt_keys.issuer,
        jwt_audience=jwt_keys.audience,
        service_token_private_key_file=jwt_keys.private_key_file,
    )
    app = create_template_app(settings)
    async with app.router.lifespan_context(app):
        yield app


@pytest.fixture(scope="session")
async def templates_api(template_app: Any) -> AsyncIterator[httpx.AsyncClient]:
    """A client of template-svc's public API (to create and publish templates)."""
    transport = httpx.ASGITransport(app=template_app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://template-svc") as c:
        yield c


def point_at_template_svc(app: Any, template_app: Any) -> None:
    settings = app.state.settings
    app.state.templates_client = TemplatesClient(
        "http://template-svc",
        token=app.state.service_tokens.token,
        transport=httpx.ASGITransport(app=template_app),
        attempts=settings.template_client_attempts,
        backoff_seconds=0.0,
    )


@pytest.fixture
async def api(client: httpx.AsyncClient, app: Any, template_app: Any) -> httpx.AsyncClient:
    """task-svc's client (rolled back after the test) whose template reads reach template-svc."""
    point_at_template_svc(app, template_app)
    return client


@pytest.fixture
async def fsm_client(settings: Any, engine: Any, db_conn: Any) -> AsyncIterator[httpx.AsyncClient]:
    """task-svc's app on the test's connection (rolled back after it), with the sign-off route."""
    from .support.taskgraph import asgi_client

    application = create_app(settings, database=Database(engine, bind=db_conn))
    async with application.router.lifespan_context(application), asgi_client(application) as c:
        yield c


@pytest.fixture
async def committing_api(
    committing_client: httpx.AsyncClient, committing_app: Any, template_app: Any
) -> httpx.AsyncClient:
    point_at_template_svc(committing_app, template_app)
    return committing_client
