"""Request and response bodies of /api/v1/templates/{id}/versions."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from servicekit.bounds import INT4_MAX
from servicekit.pagination import CursorPage, encode_cursor
from template_svc.graph import limits as L
from template_svc.graph.canonical import checksum
from template_svc.graph.schemas import (
    GRAPH_EXAMPLE,
    GRAPH_EXAMPLE_STORED,
    PROBLEM_EXAMPLES,
    Edge,
    Graph,
    GraphProblem,
    Node,
)
from template_svc.templates.schemas import (
    EXAMPLE_ORG_ID,
    EXAMPLE_PLANNER_ID,
    EXAMPLE_TEMPLATE_ID,
)

VersionStatus = Literal["draft", "published", "deprecated"]
EXPORT_FORMAT = "blueprint.template-version/v1"


VERSION_SUMMARY_EXAMPLE: dict[str, Any] = {
    "id": "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d",
    "template_id": EXAMPLE_TEMPLATE_ID,
    "org_id": EXAMPLE_ORG_ID,
    "version": 2,
    "status": "published",
    "changelog": "Inspect the welds before the doors go on",
    "checksum": checksum(GRAPH_EXAMPLE_STORED),
    "node_count": len(GRAPH_EXAMPLE["nodes"]),
    "edge_count": len(GRAPH_EXAMPLE["edges"]),
    "cloned_from": 1,
    "row_version": 3,
    "created_at": "2026-11-21T08:00:00Z",
    "created_by": EXAMPLE_PLANNER_ID,
    "updated_at": "2026-11-21T10:30:00Z",
    "updated_by": EXAMPLE_PLANNER_ID,
    "published_at": "2026-11-21T10:30:00Z",
    "published_by": EXAMPLE_PLANNER_ID,
    "deprecated_at": None,
    "deprecated_by": None,
}
VERSION_READ_EXAMPLE: dict[str, Any] = {
    **VERSION_SUMMARY_EXAMPLE,
    **GRAPH_EXAMPLE_STORED,
    "problems": [],
}


class VersionCreate(BaseModel):
    """A new draft: empty, cloned from an existing version, or with a graph."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"clone_from": 1, "changelog": "Add a final inspection"}]},
    )

    clone_from: int | None = Field(
        default=None, ge=1, le=INT4_MAX, description="copy this version's graph"
    )
    graph: Graph | None = None
    changelog: str = Field(default="", max_length=L.MAX_CHANGELOG_LENGTH)

    @model_validator(mode="after")
    def _one_source(self) -> VersionCreate:
        if self.clone_from is not None and self.graph is not None:
            raise ValueError("give clone_from or graph, not both")
        return self


class VersionReplace(Graph):
    """The draft's whole new graph (it replaces nodes and edges entirely)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{**GRAPH_EXAMPLE, "expected_row_version": 1}]},
    )

    expected_row_version: int | None = Field(
        default=None, ge=1, le=INT4_MAX, description='or send If-Match: "<row_version>"'
    )
    changelog: str | None = Field(default=None, max_length=L.MAX_CHANGELOG_LENGTH)


class VersionSummary(BaseModel):
    model_config = ConfigDict(
        from_attributes=True, json_schema_extra={"examples": [VERSION_SUMMARY_EXAMPLE]}
    )

    id: uuid.UUID
    template_id: uuid.UUID
    org_id: uuid.UUID
    version: int
    status: VersionStatus
    changelog: str
    checksum: str | None = Field(description="sha256 of the canonical graph; set when published")
    node_count: int
    edge_count: int
    cloned_from: int | None
    row_version: int
    created_at: datetime
    created_by: uuid.UUID
    updated_at: datetime
    updated_by: uuid.UUID
    published_at: datetime | None
    published_by: uuid.UUID | None
    deprecated_at: datetime | None
    deprecated_by: uuid.UUID | None


class VersionRead(VersionSummary):
    model_config = ConfigDict(json_schema_extra={"examples": [VERSION_READ_EXAMPLE]})

    nodes: list[Node]
    edges: list[Edge]
    problems: list[GraphProblem] = Field(
        description="for a draft: what would stop it from being published (empty when valid)"
    )


class VersionPage(CursorPage[VersionSummary]):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"items": [VERSION_SUMMARY_EXAMPLE], "next_cursor": encode_cursor([2])}]
        }
    )


class GraphValidation(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"valid": True, "problems": []},
                {"valid": False, "problems": [*PROBLEM_EXAMPLES]},
            ]
        }
    )

    valid: bool
    problems: list[GraphProblem]


class NodeFieldChange(BaseModel):
    field: str
    from_: Any = Field(alias="from")
    to: Any

    model_config = ConfigDict(populate_by_name=True)


class NodeChange(BaseModel):
    key: str
    changes: list[NodeFieldChange]


class NodesDiff(BaseModel):
    added: list[Node]
    removed: list[Node]
    changed: list[NodeChange]


class EdgesDiff(BaseModel):
    added: list[Edge]
    removed: list[Edge]


class VersionDiff(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "template_id": EXAMPLE_TEMPLATE_ID,
                    "from_version": 1,
                    "to_version": 2,
                    "nodes": {
                        "added": [GRAPH_EXAMPLE_STORED["nodes"][3]],
                        "removed": [],
                        "changed": [
                            {
                                "key": "weld",
                                "changes": [
                                    {"field": "estimate_hours", "from": 3.0, "to": 4.0},
                                    {"field": "due_offset_hours", "from": None, "to": 24.0},
                                ],
                            }
                        ],
                    },
                    "edges": {
                        "added": [
                            {"blocker": "weld", "dependent": "inspect"},
                            {"blocker": "inspect", "dependent": "doors"},
                        ],
                        "removed": [{"blocker": "weld", "dependent": "doors"}],
                    },
                }
            ]
        }
    )

    template_id: uuid.UUID
    from_version: int
    to_version: int
    nodes: NodesDiff
    edges: EdgesDiff


class TemplateInfo(BaseModel):
    model_config = ConfigDict(extra="forbid")

    key: str | None = Field(default=None, max_length=L.MAX_KEY_LENGTH)
    name: str | None = Field(default=None, max_length=L.MAX_NAME_LENGTH)
    description: str | None = Field(default=None, max_length=L.MAX_DESCRIPTION_LENGTH)


class VersionDocument(Graph):
    """A version as a file (JSON or YAML): what export writes and import reads.

    `template`, `version`, `status` and `checksum` describe where an export came from; import
    ignores them and creates a new draft from `changelog`, `nodes` and `edges`.
    """

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"format": EXPORT_FORMAT, **GRAPH_EXAMPLE}]},
    )

    format: Literal["blueprint.template-version/v1"]
    template: TemplateInfo | None = None
    version: int | None = Field(default=None, ge=1, le=INT4_MAX)
    status: VersionStatus | None = None
    checksum: str | None = None
    changelog: str = Field(default="", max_length=L.MAX_CHANGELOG_LENGTH)
