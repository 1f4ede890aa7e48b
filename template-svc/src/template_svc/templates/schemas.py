"""Request and response bodies of /api/v1/templates."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from servicekit.pagination import CursorPage
from template_svc.graph import limits as L
from template_svc.graph.schemas import GRAPH_EXAMPLE, Graph


class TemplateCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "key": "cabinet-assembly",
                    "name": "Cabinet assembly",
                    "description": "From cut sheet metal to an inspected cabinet",
                    "draft": GRAPH_EXAMPLE,
                }
            ]
        },
    )

    key: str = Field(
        min_length=1,
        max_length=L.MAX_KEY_LENGTH,
        pattern=L.TEMPLATE_KEY_PATTERN,
        description="slug, unique in the org: lowercase letters, digits and single dashes",
    )
    name: str = Field(min_length=1, max_length=L.MAX_NAME_LENGTH)
    description: str = Field(default="", max_length=L.MAX_DESCRIPTION_LENGTH)
    draft: Graph | None = Field(
        default=None, description="if given, version 1 is created as a draft with this graph"
    )
    changelog: str = Field(default="", max_length=L.MAX_CHANGELOG_LENGTH)


class TemplateUpdate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"name": "Cabinet assembly (v2 line)", "expected_row_version": 1}]
        },
    )

    name: str | None = Field(default=None, min_length=1, max_length=L.MAX_NAME_LENGTH)
    description: str | None = Field(default=None, max_length=L.MAX_DESCRIPTION_LENGTH)
    expected_row_version: int | None = Field(default=None, ge=1)


class RowVersionGuard(BaseModel):
    """Optional body of archive/unarchive/publish/deprecate: the row version last read."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"expected_row_version": 1}]}
    )

    expected_row_version: int | None = Field(default=None, ge=1)


class TemplateRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    org_id: uuid.UUID
    key: str
    name: str
    description: str
    archived: bool
    archived_at: datetime | None
    archived_by: uuid.UUID | None
    row_version: int
    created_at: datetime
    created_by: uuid.UUID
    updated_at: datetime
    updated_by: uuid.UUID


class TemplateCreated(TemplateRead):
    draft_version: int | None = Field(
        description="the number of the draft created with the template, if a graph was given"
    )


class TemplatePage(CursorPage[TemplateRead]):
    pass
