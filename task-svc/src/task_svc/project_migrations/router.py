"""Routes of project migrations: plans, applying one, the list of a project's migrations, and
batch jobs over a template's projects (served by task-svc under the template's path; the
gateway routes that path here, see ADR 0005)."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, BackgroundTasks, Header, Path, Request, Response
from sqlalchemy.ext.asyncio import AsyncSession

from servicekit.bounds import INT4_MAX
from servicekit.db import unit_of_work
from servicekit.pagination import DEFAULT_LIMIT, Cursor, Limit
from task_svc.project_migrations import apply, batches, service
from task_svc.project_migrations.schemas import (
    MigrationApply,
    MigrationJobCreate,
    MigrationJobRead,
    MigrationPage,
    MigrationPlanCreate,
    MigrationPlanRead,
    MigrationRead,
)
from task_svc.roles import CurrentUser, Planner

router = APIRouter(tags=["project migrations"])
VersionNumber = Annotated[int, Path(ge=1, le=INT4_MAX, description="the target version")]


@router.post(
    "/api/v1/projects/{project_id}/migration-plans",
    status_code=201,
    response_model=MigrationPlanRead,
    summary="Plan moving a project to another template version (dry run, stored)",
)
async def create_migration_plan(
    principal: Planner,
    project_id: uuid.UUID,
    body: MigrationPlanCreate,
    request: Request,
    session: AsyncSession = unit_of_work(),
) -> Response:
    plan = await service.create_plan(
        session,
        principal=principal,
        project_id=project_id,
        body=body,
        templates=request.app.state.templates_client,
        settings=request.app.state.settings,
    )
    # Built and validated once already: serialised straight away (a plan of a large project
    # is large), not validated a second time by the framework.
    return Response(
        plan.model_dump_json(),
        status_code=201,
        media_type="application/json",
        headers={"Location": f"/api/v1/projects/{project_id}/migration-plans/{plan.id}"},
    )


@router.get(
    "/api/v1/projects/{project_id}/migration-plans/{plan_id}",
    response_model=MigrationPlanRead,
    summary="One migration plan",
)
async def get_migration_plan(
    principal: CurrentUser,
    project_id: uuid.UUID,
    plan_id: uuid.UUID,
    session: AsyncSession = unit_of_work(),
) -> Response:
    plan = await service.get_plan(
        session, org_id=principal.org, project_id=project_id, plan_id=plan_id
    )
    return Response(plan.model_dump_json(), media_type="application/json")


@router.post(
    "/api/v1/projects/{project_id}/migrations",
    status_code=201,
    response_model=MigrationRead,
    summary="Apply a migration plan in one transaction (expected_row_version or If-Match)",
    responses={200: {"description": "a replay of an earlier request with the same key"}},
)
async def apply_migration(
    principal: Planner,
    project_id: uuid.UUID,
    body: MigrationApply,
    request: Request,
    if_match: Annotated[str | None, Header(alias="If-Match")] = None,
    idempotency_key: Annotated[
        str | None,
        Header(alias="Idempotency-Key", description="the same key again replays the answer"),
    ] = None,
    session: AsyncSession = unit_of_work(),
) -> Any:
    answer = await apply.apply_plan(
        session,
        db=request.app.state.db,
        principal=principal,
        project_id=project_id,
        body=body,
        if_match=if_match,
        idempotency_key=idempotency_key,
    )
    return answer.response()


@router.get(
    "/api/v1/projects/{project_id}/migrations",
    response_model=MigrationPage,
    summary="A project's applied migrations, newest first (with the snapshots they replaced)",
)
async def list_migrations(
    principal: CurrentUser,
    project_id: uuid.UUID,
    include_snapshot: bool = False,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
    session: AsyncSession = unit_of_work(),
) -> MigrationPage:
    return await service.list_migrations(
        session,
        org_id=principal.org,
        project_id=project_id,
        cursor=cursor,
        limit=limit,
        include_snapshot=include_snapshot,
    )


@router.post(
    "/api/v1/templates/{template_id}/versions/{version}/migrations",
    status_code=202,
    response_model=MigrationJobRead,
    summary="Move every active project on some versions to this one (a resumable batch job)",
)
async def create_migration_job(
    principal: Planner,
    template_id: uuid.UUID,
    version: VersionNumber,
    body: MigrationJobCreate,
    request: Request,
    response: Response,
    background: BackgroundTasks,
    session: AsyncSession = unit_of_work(),
) -> MigrationJobRead:
    job = await batches.create_job(
        session,
        principal=principal,
        template_id=template_id,
        version=version,
        body=body,
        templates=request.app.state.templates_client,
    )
    response.headers["Location"] = (
        f"/api/v1/templates/{template_id}/versions/{version}/migrations/{job.id}"
    )
    runner = getattr(request.app.state, "migration_jobs", None)
    if runner is not None:
        # After the response, so after the unit of work has committed the job.
        background.add_task(runner.wake)
    return job


@router.get(
    "/api/v1/templates/{template_id}/versions/{version}/migrations/{job_id}",
    response_model=MigrationJobRead,
    summary="A batch migration job: progress and a report per project",
)
async def get_migration_job(
    principal: CurrentUser,
    template_id: uuid.UUID,
    version: VersionNumber,
    job_id: uuid.UUID,
    session: AsyncSession = unit_of_work(),
) -> MigrationJobRead:
    return await batches.get_job(
        session, org_id=principal.org, template_id=template_id, version=version, job_id=job_id
    )
