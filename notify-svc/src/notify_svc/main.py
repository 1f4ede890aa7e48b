"""notify-svc app factory: `uvicorn notify_svc.main:create_app --factory`."""

from __future__ import annotations

import asyncio

from fastapi import FastAPI

from notify_svc.api_docs import API_DOCS, TAGS
from notify_svc.delivery.dispatcher import Dispatcher
from notify_svc.events.handlers import handlers as event_handlers
from notify_svc.notifications.jobs_router import router as jobs_router
from notify_svc.notifications.router import router as notifications_router
from notify_svc.settings import Settings
from notify_svc.webhooks.deliveries_router import router as deliveries_router
from notify_svc.webhooks.router import router as webhooks_router
from servicekit.app import build_app
from servicekit.db import Database


def create_app(settings: Settings | None = None, database: Database | None = None) -> FastAPI:
    settings = settings or Settings()
    # The dispatcher goes where the consumer goes: in this process when events run here
    # (`python -m notify_svc.worker` runs it otherwise).
    in_process = settings.events_in_process and database is None
    return build_app(
        settings,
        title="Blueprint Notification service",
        description="Webhook subscriptions and signed deliveries, e-mail and reminders.",
        routers=[webhooks_router, deliveries_router, notifications_router, jobs_router],
        database=database,
        event_handlers=event_handlers,
        on_startup=[_start_dispatcher] if in_process else [],
        on_shutdown=[_stop_dispatcher] if in_process else [],
        openapi_tags=TAGS,
        api_docs=API_DOCS,
    )


async def _start_dispatcher(app: FastAPI) -> None:
    dispatcher = Dispatcher(app.state.settings)
    app.state.dispatcher = dispatcher
    app.state.dispatcher_task = asyncio.create_task(dispatcher.run(), name="dispatcher")


async def _stop_dispatcher(app: FastAPI) -> None:
    app.state.dispatcher.stop()
    await app.state.dispatcher_task
