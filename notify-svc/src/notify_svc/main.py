"""notify-svc app factory: `uvicorn notify_svc.main:create_app --factory`."""

from __future__ import annotations

from fastapi import FastAPI

from notify_svc.settings import Settings
from servicekit.app import build_app
from servicekit.db import Database


def create_app(settings: Settings | None = None, database: Database | None = None) -> FastAPI:
    settings = settings or Settings()
    return build_app(
        settings,
        title="Blueprint Notification service",
        description="Webhook subscriptions and signed deliveries, e-mail and reminders.",
        routers=[],
        database=database,
    )
