"""/api/v1/templates: create, list, read, rename, archive; dry-run graph validation."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Body, Depends, Header, Query, Request, Response
from sqlalchemy.ext.asyncio import AsyncSession

from servicekit.auth import CurrentUser, Principal, require_roles
from servicekit.conditional import etag, expected_version
from servicekit.db import unit_of_work
from servicekit.idempotency import request_fingerprint, run_idempotent
from servicekit.pagination import DEFAULT_LIMIT, Cursor, Limit
from template_svc.graph.schemas import Graph
from template_svc.idempotency import IDEMPOTENCY
from template_svc.templates import service as template_service
from template_svc.templates.schemas import (
    RowVersionGuard,
    TemplateCreate,
    TemplateCreated,
    TemplatePage,
    TemplateRead,
    TemplateUpdate,
)
from template_svc.versions import service as version_service
from template_svc.versions.schemas import GraphValidation

router = APIRouter(prefix="/api/v1/templates", tags=["templates"])

Planner = Annotated[Principal, Depends(require_roles("planner"))]


@router.post(
    "",
    status_code=201,
    response_model=TemplateCreated,
    summary="Create a template (optionally with a first draft graph)",
    responses={409: {"description": "TEMPLATE_KEY_TAKEN"}},
)
async def create_template(
    *,
    body: TemplateCreate,
    request: Request,
    idempotency_key: str | None = Header(default=None, alias="Idempotency-Key"),
    principal: Planner,
    session: AsyncSession = unit_of_work(),
) -> Response:
    fingerprint = await request_fingerprint(request)

    async def create() -> tuple[dict[str, object], dict[str, str]]:
        template, draft = await template_service.create_template(
            session,
            org_id=principal.org,
            actor_id=principal.user_id,
            key=body.key,
            name=body.name,
            description=body.description,
            draft=body.draft.as_plain() if body.draft is not None else None,
            changelog=body.changelog,
        )
        out = TemplateCreated.model_validate(
            {
                **TemplateRead.model_validate(template).model_dump(),
                "draft_version": draft.version if draft is not None else None,
            }
        )
        headers = {"ETag": etag(template.row_version), "Location": f"{router.prefix}/{template.id}"}
        return out.model_dump(mode="json"), headers

    answer = await run_idempotent(
        session,
        IDEMPOTENCY,
        org_id=principal.org,
        key=idempotency_key,
        req_hash=fingerprint,
        create=create,
    )
    return answer.response()


@router.get("", response_model=TemplatePage, summary="List templates (cursor pagination)")
async def list_templates(
    *,
    q: str | None = Query(
        default=None, max_length=200, description="text in the key, name or description"
    ),
    archived: bool | None = Query(
        default=False, description="false: active only (default); true: archived only"
    ),
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
    principal: CurrentUser,
    session: AsyncSession = unit_of_work(),
) -> TemplatePage:
    rows, next_cursor = await template_service.list_templates(
        session, org_id=principal.org, q=q, archived=archived, cursor=cursor, limit=limit
    )
    return TemplatePage(
        items=[TemplateRead.model_validate(r) for r in rows], next_cursor=next_cursor
    )


@router.post(
    "/validate",
    response_model=GraphValidation,
    summary="Dry-run validation of a graph (nothing is saved)",
)
async def validate_graph(body: Graph, principal: CurrentUser) -> GraphValidation:
    problems = version_service.validate(body.as_plain())
    return GraphValidation.model_validate(
        {"valid": not problems, "problems": [p.as_dict() for p in problems]}
    )


@router.get("/{template_id}", response_model=TemplateRead, summary="Read a template")
async def get_template(
    template_id: uuid.UUID,
    response: Response,
    principal: CurrentUser,
    session: AsyncSession = unit_of_work(),
) -> TemplateRead:
    template = await template_service.get_template(
        session, org_id=principal.org, template_id=template_id
    )
    response.headers["ETag"] = etag(template.row_version)
    return TemplateRead.model_validate(template)


@router.patch("/{template_id}", response_model=TemplateRead, summary="Rename or re-describe")
async def update_template(
    *,
    template_id: uuid.UUID,
    body: TemplateUpdate,
    response: Response,
    if_match: str | None = Header(default=None, alias="If-Match"),
    principal: Planner,
    session: AsyncSession = unit_of_work(),
) -> TemplateRead:
    template = await template_service.update_template(
        session,
        org_id=principal.org,
        actor_id=principal.user_id,
        template_id=template_id,
        expected_row_version=expected_version(body.expected_row_version, if_match),
        name=body.name,
        description=body.description,
    )
    response.headers["ETag"] = etag(template.row_version)
    return TemplateRead.model_validate(template)


async def _set_archived(
    *,
    archived: bool,
    template_id: uuid.UUID,
    body: RowVersionGuard | None,
    if_match: str | None,
    principal: Principal,
    session: AsyncSession,
    response: Response,
) -> TemplateRead:
    template = await template_service.set_archived(
        session,
        org_id=principal.org,
        actor_id=principal.user_id,
        template_id=template_id,
        archived=archived,
        expected_row_version=expected_version(
            body.expected_row_version if body else None, if_match
        ),
    )
    response.headers["ETag"] = etag(template.row_version)
    return TemplateRead.model_validate(template)


@router.post(
    "/{template_id}/archive",
    response_model=TemplateRead,
    summary="Archive: hidden from the default list, no new versions; published ones stay readable",
)
async def archive_template(
    *,
    template_id: uuid.UUID,
    response: Response,
    body: RowVersionGuard | None = Body(default=None),
    if_match: str | None = Header(default=None, alias="If-Match"),
    principal: Planner,
    session: AsyncSession = unit_of_work(),
) -> TemplateRead:
    return await _set_archived(
        archived=True,
        template_id=template_id,
        body=body,
        if_match=if_match,
        principal=principal,
        session=session,
        response=response,
    )


@router.post("/{template_id}/unarchive", response_model=TemplateRead, summary="Unarchive")
async def unarchive_template(
    *,
    template_id: uuid.UUID,
    response: Response,
    body: RowVersionGuard | None = Body(default=None),
    if_match: str | None = Header(default=None, alias="If-Match"),
    principal: Planner,
    session: AsyncSession = unit_of_work(),
) -> TemplateRead:
    return await _set_archived(
        archived=False,
        template_id=template_id,
        body=body,
        if_match=if_match,
        principal=principal,
        session=session,
        response=response,
    )
