"""Project routes: create, list, read, dashboard, graph, hold / resume / cancel."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Body, Header, Query, Request, Response
from fastapi.responses import PlainTextResponse
from sqlalchemy.ext.asyncio import AsyncSession

from servicekit.auth import Principal
from servicekit.conditional import etag, required_version
from servicekit.db import unit_of_work
from servicekit.errors import BadRequest
from servicekit.pagination import DEFAULT_LIMIT, Cursor, Limit
from task_svc.projects import creation, insights, service
from task_svc.projects.models import PROJECT_STATUSES
from task_svc.projects.schemas import (
    Dashboard,
    ProjectCreate,
    ProjectGraph,
    ProjectPage,
    ProjectRead,
    ProjectStatusChange,
)
from task_svc.roles import CurrentUser, Planner

router = APIRouter(prefix="/api/v1/projects", tags=["projects"])


@router.post(
    "",
    status_code=201,
    response_model=ProjectRead,
    summary="Start a project from a pinned template version",
    responses={200: {"description": "a replay of an earlier request with the same key"}},
)
async def create_project(
    principal: Planner,
    request: Request,
    body: ProjectCreate,
    idempotency_key: Annotated[
        str | None,
        Header(alias="Idempotency-Key", description="the same key again replays the answer"),
    ] = None,
    session: AsyncSession = unit_of_work(),
) -> Any:
    answer = await creation.create_project(
        session,
        db=request.app.state.db,
        principal=principal,
        body=body,
        idempotency_key=idempotency_key,
        templates=request.app.state.templates_client,
        settings=request.app.state.settings,
    )
    return answer.response(
        {
            "Location": f"/api/v1/projects/{answer.body['id']}",
            "ETag": etag(answer.body["row_version"]),
        }
    )


@router.get("", response_model=ProjectPage, summary="List projects (newest first)")
async def list_projects(
    principal: CurrentUser,
    status: Annotated[list[str] | None, Query(description="one or more project statuses")] = None,
    template_id: uuid.UUID | None = None,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
    session: AsyncSession = unit_of_work(),
) -> ProjectPage:
    statuses = [s.strip() for v in status or [] for s in v.split(",") if s.strip()]
    unknown = [s for s in statuses if s not in PROJECT_STATUSES]
    if unknown:
        raise BadRequest(
            f"unknown status {unknown[0]!r}: use any of {', '.join(PROJECT_STATUSES)}",
            code="STATUS_INVALID",
            errors=[{"in": "query", "field": "status", "message": "unknown status"}],
        )
    return await service.list_projects(
        session,
        org_id=principal.org,
        statuses=statuses or None,
        template_id=template_id,
        cursor=cursor,
        limit=limit,
    )


@router.get("/{project_id}", response_model=ProjectRead, summary="One project")
async def get_project(
    principal: CurrentUser,
    project_id: uuid.UUID,
    response: Response,
    include_snapshot: bool = False,
    session: AsyncSession = unit_of_work(),
) -> ProjectRead:
    project = await service.get_project(
        session, org_id=principal.org, project_id=project_id, include_snapshot=include_snapshot
    )
    response.headers["ETag"] = etag(project.row_version)
    return project


@router.get("/{project_id}/dashboard", response_model=Dashboard, summary="Project dashboard")
async def get_dashboard(
    principal: CurrentUser,
    project_id: uuid.UUID,
    session: AsyncSession = unit_of_work(),
) -> Response:
    dashboard = await insights.get_dashboard(session, org_id=principal.org, project_id=project_id)
    # Built and validated once already: serialise it straight away rather than have the
    # framework validate thousands of critical-path steps a second time.
    return Response(dashboard.model_dump_json(), media_type="application/json")


@router.get(
    "/{project_id}/graph",
    response_model=ProjectGraph,
    summary="The task graph: nodes and edges, or Mermaid text with ?format=mermaid",
    responses={200: {"content": {"text/plain": {"example": "flowchart TD\n    n0 --> n1\n"}}}},
)
async def get_graph(
    principal: CurrentUser,
    project_id: uuid.UUID,
    format: Annotated[str, Query(pattern="^(json|mermaid)$")] = "json",
    session: AsyncSession = unit_of_work(),
) -> Any:
    if format == "mermaid":
        text = await insights.get_graph_mermaid(
            session, org_id=principal.org, project_id=project_id
        )
        return PlainTextResponse(text, media_type="text/plain; charset=utf-8")
    return await insights.get_graph(session, org_id=principal.org, project_id=project_id)


async def _change_status(
    action: str,
    project_id: uuid.UUID,
    response: Response,
    change: ProjectStatusChange | None,
    if_match: str | None,
    principal: Principal,
    session: AsyncSession,
) -> ProjectRead:
    project = await service.change_status(
        session,
        principal=principal,
        project_id=project_id,
        action=action,
        expected=required_version(change.expected_row_version if change else None, if_match),
        reason=change.reason if change else None,
    )
    response.headers["ETag"] = etag(project.row_version)
    return project


@router.post(
    "/{project_id}/hold",
    response_model=ProjectRead,
    summary="Put an active project on hold (expected_row_version or If-Match)",
)
async def hold_project(
    principal: Planner,
    project_id: uuid.UUID,
    response: Response,
    change: Annotated[ProjectStatusChange | None, Body()] = None,
    if_match: Annotated[str | None, Header(alias="If-Match")] = None,
    session: AsyncSession = unit_of_work(),
) -> ProjectRead:
    return await _change_status("hold", project_id, response, change, if_match, principal, session)


@router.post(
    "/{project_id}/resume",
    response_model=ProjectRead,
    summary="Resume a project that is on hold (expected_row_version or If-Match)",
)
async def resume_project(
    principal: Planner,
    project_id: uuid.UUID,
    response: Response,
    change: Annotated[ProjectStatusChange | None, Body()] = None,
    if_match: Annotated[str | None, Header(alias="If-Match")] = None,
    session: AsyncSession = unit_of_work(),
) -> ProjectRead:
    return await _change_status(
        "resume", project_id, response, change, if_match, principal, session
    )


@router.post(
    "/{project_id}/cancel",
    response_model=ProjectRead,
    summary="Cancel an active or held project (expected_row_version or If-Match)",
)
async def cancel_project(
    principal: Planner,
    project_id: uuid.UUID,
    response: Response,
    change: Annotated[ProjectStatusChange | None, Body()] = None,
    if_match: Annotated[str | None, Header(alias="If-Match")] = None,
    session: AsyncSession = unit_of_work(),
) -> ProjectRead:
    return await _change_status(
        "cancel", project_id, response, change, if_match, principal, session
    )
