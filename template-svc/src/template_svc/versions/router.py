"""/api/v1/templates/{id}/versions: drafts, publish, deprecate, read, list, diff, import/export."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, Header, Path, Query, Request, Response
from sqlalchemy.ext.asyncio import AsyncSession

from servicekit.auth import CurrentUser, Principal, require_roles
from servicekit.bounds import INT4_MAX
from servicekit.conditional import etag, expected_version, not_modified, required_version
from servicekit.db import unit_of_work
from servicekit.idempotency import request_fingerprint, run_idempotent
from servicekit.jsonutil import FastJSONResponse
from servicekit.pagination import DEFAULT_LIMIT, Cursor, Limit
from template_svc.graph.schemas import Graph
from template_svc.graph.validation import validate_graph
from template_svc.idempotency import IDEMPOTENCY
from template_svc.templates.schemas import RowVersionGuard
from template_svc.versions import service as version_service
from template_svc.versions import transfer
from template_svc.versions.models import DRAFT, TemplateVersion
from template_svc.versions.schemas import (
    VersionCreate,
    VersionDiff,
    VersionDocument,
    VersionPage,
    VersionRead,
    VersionReplace,
    VersionSummary,
)

router = APIRouter(prefix="/api/v1/templates/{template_id}/versions", tags=["template versions"])
Planner = Annotated[Principal, Depends(require_roles("planner"))]
VersionNumber = Path(ge=1, le=INT4_MAX, description="the version number (1, 2, ...)")


def version_body(row: TemplateVersion) -> dict[str, Any]:
    """The whole version as JSON; a draft also lists what would stop it from being published."""
    summary = VersionSummary.model_validate(row).model_dump(mode="json")
    problems = [p.as_dict() for p in validate_graph(row.graph)] if row.status == DRAFT else []
    return {**summary, **row.graph, "problems": problems}


def version_response(row: TemplateVersion, status_code: int = 200, **headers: str) -> Response:
    return FastJSONResponse(
        version_body(row),
        status_code=status_code,
        headers={"ETag": etag(row.row_version), "Cache-Control": "private, no-cache", **headers},
    )


@router.post(
    "",
    status_code=201,
    response_model=VersionRead,
    summary="Create a draft: empty, cloned from a version, or with a graph",
)
async def create_version(
    *,
    template_id: uuid.UUID,
    request: Request,
    body: VersionCreate | None = Body(default=None),
    idempotency_key: str | None = Header(default=None, alias="Idempotency-Key"),
    principal: Planner,
    session: AsyncSession = unit_of_work(),
) -> Response:
    data = body or VersionCreate()
    fingerprint = await request_fingerprint(request)

    async def create() -> tuple[dict[str, Any], dict[str, str]]:
        row = await version_service.create_draft(
            session,
            org_id=principal.org,
            actor_id=principal.user_id,
            template_id=template_id,
            graph=data.graph.as_plain() if data.graph is not None else None,
            clone_from=data.clone_from,
            changelog=data.changelog,
        )
        location = f"/api/v1/templates/{template_id}/versions/{row.version}"
        return version_body(row), {"ETag": etag(row.row_version), "Location": location}

    answer = await run_idempotent(
        session,
        IDEMPOTENCY,
        org_id=principal.org,
        key=idempotency_key,
        req_hash=fingerprint,
        create=create,
    )
    return answer.response()


@router.post(
    "/import",
    status_code=201,
    response_model=VersionRead,
    summary="Import a version document (JSON or YAML) as a new draft",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/VersionDocument"}},
                "application/yaml": {"schema": {"$ref": "#/components/schemas/VersionDocument"}},
            },
        }
    },
)
async def import_version(
    *,
    template_id: uuid.UUID,
    request: Request,
    idempotency_key: str | None = Header(default=None, alias="Idempotency-Key"),
    principal: Planner,
    session: AsyncSession = unit_of_work(),
) -> Response:
    document = transfer.parse_document(await request.body(), request.headers.get("content-type"))
    fingerprint = await request_fingerprint(request)

    async def create() -> tuple[dict[str, Any], dict[str, str]]:
        row = await version_service.create_draft(
            session,
            org_id=principal.org,
            actor_id=principal.user_id,
            template_id=template_id,
            graph=Graph(nodes=document.nodes, edges=document.edges).as_plain(),
            changelog=document.changelog,
        )
        location = f"/api/v1/templates/{template_id}/versions/{row.version}"
        return version_body(row), {"ETag": etag(row.row_version), "Location": location}

    answer = await run_idempotent(
        session,
        IDEMPOTENCY,
        org_id=principal.org,
        key=idempotency_key,
        req_hash=fingerprint,
        create=create,
    )
    return answer.response()


@router.get("", response_model=VersionPage, summary="List versions, newest first")
async def list_versions(
    *,
    template_id: uuid.UUID,
    status: Literal["draft", "published", "deprecated"] | None = Query(default=None),
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
    principal: CurrentUser,
    session: AsyncSession = unit_of_work(),
) -> VersionPage:
    rows, next_cursor = await version_service.list_versions(
        session,
        org_id=principal.org,
        template_id=template_id,
        status=status,
        cursor=cursor,
        limit=limit,
    )
    return VersionPage(
        items=[VersionSummary.model_validate(r) for r in rows], next_cursor=next_cursor
    )


@router.get(
    "/{version}",
    response_model=VersionRead,
    summary="Read a version with its whole graph (ETag: row version; If-None-Match gives 304)",
)
async def get_version(
    *,
    template_id: uuid.UUID,
    version: int = VersionNumber,
    if_none_match: str | None = Header(default=None, alias="If-None-Match"),
    principal: CurrentUser,
    session: AsyncSession = unit_of_work(),
) -> Response:
    row = await version_service.get_version(
        session, org_id=principal.org, template_id=template_id, version=version
    )
    if not_modified(if_none_match, row.row_version):
        return Response(status_code=304, headers={"ETag": etag(row.row_version)})
    return version_response(row)


@router.put(
    "/{version}",
    response_model=VersionRead,
    summary="Replace a draft's graph (needs expected_row_version or If-Match)",
)
async def replace_version(
    *,
    template_id: uuid.UUID,
    body: VersionReplace,
    version: int = VersionNumber,
    if_match: str | None = Header(default=None, alias="If-Match"),
    principal: Planner,
    session: AsyncSession = unit_of_work(),
) -> Response:
    row = await version_service.replace_draft(
        session,
        org_id=principal.org,
        actor_id=principal.user_id,
        template_id=template_id,
        version=version,
        expected_row_version=required_version(
            body.expected_row_version, if_match, required_code="PRECONDITION_REQUIRED"
        ),
        graph=Graph(nodes=body.nodes, edges=body.edges).as_plain(),
        changelog=body.changelog,
    )
    return version_response(row)


@router.post(
    "/{version}/publish",
    response_model=VersionRead,
    summary="Validate and freeze a draft (422 GRAPH_INVALID lists every problem)",
)
async def publish_version(
    *,
    template_id: uuid.UUID,
    version: int = VersionNumber,
    body: RowVersionGuard | None = Body(default=None),
    if_match: str | None = Header(default=None, alias="If-Match"),
    principal: Planner,
    session: AsyncSession = unit_of_work(),
) -> Response:
    row = await version_service.publish(
        session,
        org_id=principal.org,
        actor_id=principal.user_id,
        template_id=template_id,
        version=version,
        expected_row_version=expected_version(
            body.expected_row_version if body else None, if_match
        ),
    )
    return version_response(row)


@router.post(
    "/{version}/deprecate",
    response_model=VersionRead,
    summary="Deprecate a published version (its graph stays readable and unchanged)",
)
async def deprecate_version(
    *,
    template_id: uuid.UUID,
    version: int = VersionNumber,
    body: RowVersionGuard | None = Body(default=None),
    if_match: str | None = Header(default=None, alias="If-Match"),
    principal: Planner,
    session: AsyncSession = unit_of_work(),
) -> Response:
    row = await version_service.deprecate(
        session,
        org_id=principal.org,
        actor_id=principal.user_id,
        template_id=template_id,
        version=version,
        expected_row_version=expected_version(
            body.expected_row_version if body else None, if_match
        ),
    )
    return version_response(row)


@router.get(
    "/{version}/diff/{other}",
    response_model=VersionDiff,
    summary="What changes from {version} to {other}: nodes and edges added, removed, changed",
)
async def diff_versions(
    *,
    template_id: uuid.UUID,
    version: int = VersionNumber,
    other: int = Path(ge=1, le=INT4_MAX, description="the version to compare with"),
    principal: CurrentUser,
    session: AsyncSession = unit_of_work(),
) -> dict[str, Any]:
    return await version_service.diff_versions(
        session,
        org_id=principal.org,
        template_id=template_id,
        from_version=version,
        to_version=other,
    )


@router.get(
    "/{version}/export",
    response_model=VersionDocument,
    summary="Export a version as a JSON or YAML document (import reads it back)",
    responses={
        200: {
            "description": "The version document: JSON, or YAML with `format=yaml`",
            "content": {
                "application/yaml": {"schema": {"$ref": "#/components/schemas/VersionDocument"}}
            },
        }
    },
)
async def export_version(
    *,
    template_id: uuid.UUID,
    version: int = VersionNumber,
    format: Literal["json", "yaml"] = Query(default="json"),
    principal: CurrentUser,
    session: AsyncSession = unit_of_work(),
) -> Response:
    template, document = await version_service.export_document(
        session, org_id=principal.org, template_id=template_id, version=version
    )
    content, media_type = transfer.render_document(document, format)
    filename = f"{template.key}-v{version}.{format}"
    return Response(
        content,
        media_type=media_type,
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
