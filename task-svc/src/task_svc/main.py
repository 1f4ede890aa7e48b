"""task-svc app factory: `uvicorn task_svc.main:create_app --factory`."""

from __future__ import annotations

import httpx
from fastapi import FastAPI

from servicekit.app import build_app
from servicekit.db import Database
from task_svc.api_docs import API_DOCS, TAGS
from task_svc.deliverables.router import router as deliverables_router
from task_svc.deliverables.signoff_router import router as signoff_router
from task_svc.events.handlers import handlers as event_handlers
from task_svc.project_migrations.batches import JobRunner
from task_svc.project_migrations.router import router as migrations_router
from task_svc.projects.router import router as projects_router
from task_svc.settings import Settings
from task_svc.stream.router import router as stream_router
from task_svc.tasks.gauges import sample_tasks
from task_svc.tasks.internal_router import router as internal_tasks_router
from task_svc.tasks.router import router as tasks_router
from task_svc.tasks.transitions_router import router as transitions_router
from task_svc.templates_client import TemplatesClient


def create_app(
    settings: Settings | None = None,
    database: Database | None = None,
    *,
    template_transport: httpx.AsyncBaseTransport | None = None,
) -> FastAPI:
    """`template_transport` lets tests point the template-svc client at an in-process app."""
    settings = settings or Settings()

    async def close_templates_client(app: FastAPI) -> None:
        await app.state.templates_client.aclose()

    async def start_migration_jobs(app: FastAPI) -> None:
        # Only where the app owns its database (a test app bound to one connection never runs
        # jobs in the background; its tests run them step by step).
        app.state.migration_jobs = None
        if settings.migration_jobs_in_process and database is None:
            app.state.migration_jobs = JobRunner(app.state.db, settings)
            app.state.migration_jobs.start()

    async def stop_migration_jobs(app: FastAPI) -> None:
        if getattr(app.state, "migration_jobs", None) is not None:
            await app.state.migration_jobs.stop()

    async def close_stream_hub(app: FastAPI) -> None:
        hub = getattr(app.state, "stream_hub", None)
        if hub is not None:
            await hub.close()

    app = build_app(
        settings,
        title="Blueprint Task service",
        description=(
            "Projects pinned to a template version, deliverables with serial numbers, and the "
            "task state machine."
        ),
        # The transition routes come first: `/api/v1/tasks/fsm` must not read as a task id, and
        # the hottest route of the platform is matched before any other.
        routers=[
            transitions_router,
            projects_router,
            migrations_router,
            deliverables_router,
            signoff_router,
            tasks_router,
            stream_router,
            internal_tasks_router,
        ],
        database=database,
        event_handlers=event_handlers,
        metric_samplers=[sample_tasks],
        on_startup=[start_migration_jobs],
        on_shutdown=[stop_migration_jobs, close_templates_client, close_stream_hub],
        openapi_tags=TAGS,
        api_docs=API_DOCS,
    )
    app.state.template_transport = template_transport
    app.state.templates_client = TemplatesClient(
        settings.template_svc_url,
        token=app.state.service_tokens.token,
        transport=template_transport,
        timeout_seconds=settings.template_client_timeout_seconds,
        attempts=settings.template_client_attempts,
        backoff_seconds=settings.template_client_backoff_seconds,
    )
    return app
