"""Pydantic models of a graph: nodes (with checklists) and edges, the same shape everywhere."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from template_svc.graph import limits as L


class WorkKind(StrEnum):
    work = "work"
    qc = "qc"
    milestone = "milestone"


class ChecklistItem(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: str = Field(
        min_length=1, max_length=L.MAX_KEY_LENGTH, pattern=L.NODE_KEY_PATTERN, examples=["WELD-01"]
    )
    text: str = Field(
        min_length=1, max_length=L.MAX_CHECKLIST_TEXT_LENGTH, examples=["Weld seams are continuous"]
    )
    required: bool = True


class Node(BaseModel):
    """One task template of the graph."""

    model_config = ConfigDict(extra="forbid")

    key: str = Field(
        min_length=1,
        max_length=L.MAX_KEY_LENGTH,
        pattern=L.NODE_KEY_PATTERN,
        description="unique in the version; edges and parent_key refer to it",
        examples=["weld-frame"],
    )
    title: str = Field(min_length=1, max_length=L.MAX_TITLE_LENGTH, examples=["Weld the frame"])
    description: str = Field(default="", max_length=L.MAX_DESCRIPTION_LENGTH)
    kind: str = Field(default="task", min_length=1, max_length=L.MAX_KIND_LENGTH)
    work_kind: WorkKind = WorkKind.work
    priority: int = Field(default=L.DEFAULT_PRIORITY, ge=L.MIN_PRIORITY, le=L.MAX_PRIORITY)
    qc_required: bool = False
    qc_checklist: list[ChecklistItem] = Field(
        default_factory=list, max_length=L.MAX_CHECKLIST_ITEMS
    )
    estimate_hours: float | None = Field(default=None, ge=0, le=L.MAX_HOURS)
    due_offset_hours: float | None = Field(
        default=None, ge=0, le=L.MAX_HOURS, description="relative to the project's start"
    )
    parent_key: str | None = Field(default=None, max_length=L.MAX_KEY_LENGTH)
    role_hint: str | None = Field(default=None, max_length=L.MAX_ROLE_HINT_LENGTH)


class Edge(BaseModel):
    """`blocker` must be resolved before `dependent` can start."""

    model_config = ConfigDict(extra="forbid")

    blocker: str = Field(min_length=1, max_length=L.MAX_KEY_LENGTH, examples=["weld-frame"])
    dependent: str = Field(min_length=1, max_length=L.MAX_KEY_LENGTH, examples=["inspect-frame"])


GRAPH_EXAMPLE: dict[str, Any] = {
    "nodes": [
        {"key": "cut", "title": "Cut the parts", "estimate_hours": 2},
        {"key": "weld", "title": "Weld the frame", "estimate_hours": 4, "due_offset_hours": 24},
        {
            "key": "inspect",
            "title": "Inspect the welds",
            "work_kind": "qc",
            "qc_required": True,
            "qc_checklist": [{"code": "WELD-01", "text": "Seams are continuous"}],
        },
    ],
    "edges": [{"blocker": "cut", "dependent": "weld"}, {"blocker": "weld", "dependent": "inspect"}],
}


class Graph(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [GRAPH_EXAMPLE]})

    nodes: list[Node] = Field(default_factory=list, max_length=L.MAX_NODES)
    edges: list[Edge] = Field(default_factory=list, max_length=L.MAX_EDGES)

    def as_plain(self) -> dict[str, Any]:
        """The graph as stored: plain JSON values, every field present."""
        return self.model_dump(mode="json")


class GraphProblem(BaseModel):
    """One reason a graph cannot be published, and where it is."""

    code: str
    message: str
    where: str = Field(description="JSON path into the graph, e.g. edges[3] or nodes[2].parent_key")
    keys: list[str] = Field(default_factory=list, description="node keys involved")
    path: list[str] | None = Field(
        default=None, description="for cycles: the cycle as keys, first key repeated at the end"
    )
