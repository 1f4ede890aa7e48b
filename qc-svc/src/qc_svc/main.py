"""qc-svc app factory: `uvicorn qc_svc.main:create_app --factory`."""

from __future__ import annotations

from fastapi import FastAPI

from qc_svc.api_docs import API_DOCS, TAGS
from qc_svc.events.handlers import handlers as event_handlers
from qc_svc.inspections.gauges import sample_inspections
from qc_svc.inspections.router import router as inspections_router
from qc_svc.reports.router import router as reports_router
from qc_svc.settings import Settings
from servicekit.app import build_app
from servicekit.db import Database


def create_app(settings: Settings | None = None, database: Database | None = None) -> FastAPI:
    settings = settings or Settings()
    return build_app(
        settings,
        title="Blueprint QC service",
        description="Inspections, the reject-rework loop, and quality reports.",
        routers=[inspections_router, reports_router],
        database=database,
        event_handlers=event_handlers,
        metric_samplers=[sample_inspections],
        openapi_tags=TAGS,
        api_docs=API_DOCS,
    )
