"""Each service's migrations create exactly what its models declare (autogenerate finds nothing)."""

from __future__ import annotations

import importlib
from types import ModuleType

import pytest
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

import notify_svc
import qc_svc
import task_svc
import template_svc
from servicekit.migrations import diff_models_and_database
from servicekit.testing.plugin import ServiceSpec, TestDatabase


@pytest.mark.parametrize(
    "service", [template_svc, task_svc, qc_svc, notify_svc], ids=lambda m: m.SCHEMA
)
async def test_autogenerate_finds_nothing_to_do(
    test_database: TestDatabase, service: ModuleType
) -> None:
    db = test_database.service(ServiceSpec(service.ROLE, service.SCHEMA, service.SERVICE_DIR))
    metadata = importlib.import_module(f"{service.__name__}.models_registry").metadata
    engine = create_async_engine(db.url, poolclass=NullPool)
    try:
        async with engine.connect() as conn:
            diff = await conn.run_sync(diff_models_and_database, metadata, service.SCHEMA)
    finally:
        await engine.dispose()
    assert diff == [], f"{service.SCHEMA}: migrations and models disagree: {diff}"
