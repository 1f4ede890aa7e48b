"""Request and response bodies of /api/v1/templates."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from servicekit.bounds import INT4_MAX
from servicekit.pagination import CursorPage, encode_cursor
from template_svc.graph import limits as L
from template_svc.graph.schemas import GRAPH_EXAMPLE, Graph

# Ids and times of the response examples: one planner of one org, one cabinet template.
EXAMPLE_ORG_ID = "0b6f4e52-3a1d-4c8e-9f2a-6d5e4c3b2a19"
EXAMPLE_PLANNER_ID = "7c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f"
EXAMPLE_TEMPLATE_ID = "5f0c6a7e-2b84-4d1a-9c3e-8a7b6c5d4e3f"

TEMPLATE_READ_EXAMPLE: dict[str, Any] = {
    "id": EXAMPLE_TEMPLATE_ID,
    "org_id": EXAMPLE_ORG_ID,
    "key": "cabinet-assembly",
    "name": "Cabinet assembly",
    "description": "From cut sheet metal to an inspected cabinet",
    "archived": False,
    "archived_at": None,
    "archived_by": None,
    "row_version": 1,
    "created_at": "2026-11-20T09:15:00Z",
    "created_by": EXAMPLE_PLANNER_ID,
    "updated_at": "2026-11-20T09:15:00Z",
    "updated_by": EXAMPLE_PLANNER_ID,
}


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
    expected_row_version: int | None = Field(default=None, ge=1, le=INT4_MAX)


class RowVersionGuard(BaseModel):
    """Optional body of archive/unarchive/publish/deprecate: the row version last read."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"expected_row_version": 1}]}
    )

    expected_row_version: int | None = Field(default=None, ge=1, le=INT4_MAX)


class TemplateRead(BaseModel):
    model_config = ConfigDict(
        from_attributes=True, json_schema_extra={"examples": [TEMPLATE_READ_EXAMPLE]}
    )

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
    model_config = ConfigDict(
        json_schema_extra={"examples": [{**TEMPLATE_READ_EXAMPLE, "draft_version": 1}]}
    )

    draft_version: int | None = Field(
        description="the number of the draft created with the template, if a graph was given"
    )


class TemplatePage(CursorPage[TemplateRead]):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "items": [TEMPLATE_READ_EXAMPLE],
                    "next_cursor": encode_cursor([TEMPLATE_READ_EXAMPLE["key"]]),
                }
            ]
        }
    )
