"""template-svc app factory: `uvicorn template_svc.main:create_app --factory`."""

from __future__ import annotations

from fastapi import FastAPI

from servicekit.app import build_app
from servicekit.db import Database
from template_svc.settings import Settings


def create_app(settings: Settings | None = None, database: Database | None = None) -> FastAPI:
    settings = settings or Settings()
    return build_app(
        settings,
        title="Blueprint Template service",
        description="Versioned process templates: task graphs with dependencies and QC checkpoints.",
        routers=[],
        database=database,
    )
