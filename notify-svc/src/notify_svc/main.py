"""notify-svc app factory: `uvicorn notify_svc.main:create_app --factory`."""

from __future__ import annotations

from fastapi import FastAPI

from notify_svc.events.handlers import handlers as event_handlers
from notify_svc.settings import Settings
from notify_svc.webhooks.deliveries_router import router as deliveries_router
from notify_svc.webhooks.router import router as webhooks_router
from servicekit.app import build_app
from servicekit.db import Database


def create_app(settings: Settings | None = None, database: Database | None = None) -> FastAPI:
    settings = settings or Settings()
    return build_app(
        settings,
        title="Blueprint Notification service",
        description="Webhook subscriptions and signed deliveries, e-mail and reminders.",
        routers=[webhooks_router, deliveries_router],
        database=database,
        event_handlers=event_handlers,
        openapi_tags=[
            {"name": "webhooks", "description": "endpoints, secrets, the event catalogue"},
            {"name": "webhook deliveries", "description": "deliveries, attempts, replay"},
        ],
    )
