"""template-svc app factory: `uvicorn template_svc.main:create_app --factory`."""

from __future__ import annotations

from fastapi import FastAPI

from servicekit.app import build_app
from servicekit.db import Database
from template_svc.api_docs import API_DOCS, TAGS
from template_svc.internal.router import router as internal_router
from template_svc.settings import Settings
from template_svc.templates.router import router as templates_router
from template_svc.versions.router import router as versions_router


def create_app(settings: Settings | None = None, database: Database | None = None) -> FastAPI:
    settings = settings or Settings()
    return build_app(
        settings,
        title="Blueprint Template service",
        description=(
            "Versioned process templates: task graphs with dependencies and QC checkpoints."
        ),
        routers=[templates_router, versions_router, internal_router],
        database=database,
        openapi_tags=TAGS,
        api_docs=API_DOCS,
    )
