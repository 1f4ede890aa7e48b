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
        {"key": "frame", "title": "Frame", "kind": "group", "work_kind": "milestone"},
        {
            "key": "cut",
            "title": "Cut the sheet metal",
            "estimate_hours": 2,
            "parent_key": "frame",
            "role_hint": "cutter",
        },
        {
            "key": "weld",
            "title": "Weld the frame",
            "estimate_hours": 4,
            "due_offset_hours": 24,
            "parent_key": "frame",
            "role_hint": "welder",
        },
        {
            "key": "inspect",
            "title": "Inspect the welds",
            "work_kind": "qc",
            "qc_required": True,
            "qc_checklist": [
                {"code": "WELD-01", "text": "Seams are continuous, no porosity"},
                {"code": "WELD-02", "text": "Frame is square within 2 mm"},
            ],
            "parent_key": "frame",
            "role_hint": "inspector",
        },
        {"key": "doors", "title": "Mount the doors and hinges", "estimate_hours": 1.5},
    ],
    "edges": [
        {"blocker": "cut", "dependent": "weld"},
        {"blocker": "weld", "dependent": "inspect"},
        {"blocker": "inspect", "dependent": "doors"},
    ],
}


class Graph(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [GRAPH_EXAMPLE]})

    nodes: list[Node] = Field(default_factory=list, max_length=L.MAX_NODES)
    edges: list[Edge] = Field(default_factory=list, max_length=L.MAX_EDGES)

    def as_plain(self) -> dict[str, Any]:
        """The graph as stored: plain JSON values, every field present."""
        return self.model_dump(mode="json")


# The example graph as the API returns it: every field present, defaults filled in.
GRAPH_EXAMPLE_STORED: dict[str, Any] = Graph.model_validate(GRAPH_EXAMPLE).as_plain()

PROBLEM_EXAMPLES: list[dict[str, Any]] = [
    {
        "code": "DEPENDENCY_CYCLE",
        "message": "dependency cycle: weld -> inspect -> weld",
        "where": "edges",
        "keys": ["weld", "inspect"],
        "path": ["weld", "inspect", "weld"],
    },
    {
        "code": "UNKNOWN_EDGE_KEY",
        "message": "edge inspect -> paint: dependent 'paint' is not a node of this graph",
        "where": "edges[3].dependent",
        "keys": ["paint"],
    },
]


class GraphProblem(BaseModel):
    """One reason a graph cannot be published, and where it is."""

    model_config = ConfigDict(json_schema_extra={"examples": [PROBLEM_EXAMPLES[0]]})

    code: str
    message: str
    where: str = Field(description="JSON path into the graph, e.g. edges[3] or nodes[2].parent_key")
    keys: list[str] = Field(default_factory=list, description="node keys involved")
    path: list[str] | None = Field(
        default=None, description="for cycles: the cycle as keys, first key repeated at the end"
    )
