"""qc-svc app factory: `uvicorn qc_svc.main:create_app --factory`."""

from __future__ import annotations

from fastapi import FastAPI

from servicekit.app import build_app
from servicekit.db import Database
from qc_svc.settings import Settings


def create_app(settings: Settings | None = None, database: Database | None = None) -> FastAPI:
    settings = settings or Settings()
    return build_app(
        settings,
        title="Blueprint QC service",
        description="Inspections, the reject-rework loop, and quality reports.",
        routers=[],
        database=database,
    )
