"""task-svc app factory: `uvicorn task_svc.main:create_app --factory`."""

from __future__ import annotations

from fastapi import FastAPI

from servicekit.app import build_app
from servicekit.db import Database
from task_svc.settings import Settings


def create_app(settings: Settings | None = None, database: Database | None = None) -> FastAPI:
    settings = settings or Settings()
    return build_app(
        settings,
        title="Blueprint Task service",
        description="Projects pinned to a template version, deliverables with serial numbers, and the task state machine.",
        routers=[],
        database=database,
    )
