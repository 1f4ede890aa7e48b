"""Graphs and header helpers shared by template-svc's API tests."""

from __future__ import annotations

import copy
import uuid
from typing import Any

ORG_A = uuid.UUID("00000000-0000-4000-8000-0000000000a1")
ORG_B = uuid.UUID("00000000-0000-4000-8000-0000000000b2")
PLANNER = uuid.UUID("00000000-0000-4000-8000-000000000101")
VIEWER = uuid.UUID("00000000-0000-4000-8000-000000000102")

CHECKLIST = [
    {"code": "DIM-01", "text": "Outer dimensions within 1 mm", "required": True},
    {"code": "FIN-02", "text": "No paint runs", "required": False},
]

# 12 nodes: two groups (parents), a diamond cut -> {weld-left, weld-right} -> assemble, a QC node.
CABINET: dict[str, Any] = {
    "nodes": [
        {"key": "spec", "title": "Check the order spec", "estimate_hours": 1},
        {"key": "fabrication", "title": "Fabrication", "kind": "group"},
        {"key": "cut", "title": "Cut sheets", "parent_key": "fabrication", "estimate_hours": 2},
        {"key": "bend", "title": "Bend sheets", "parent_key": "fabrication"},
        {"key": "weld-left", "title": "Weld left side", "parent_key": "fabrication"},
        {"key": "weld-right", "title": "Weld right side", "parent_key": "fabrication"},
        {"key": "assemble", "title": "Assemble", "priority": 70, "due_offset_hours": 48},
        {"key": "finishing", "title": "Finishing", "kind": "group"},
        {"key": "paint", "title": "Paint", "parent_key": "finishing", "role_hint": "painter"},
        {
            "key": "inspect",
            "title": "Final inspection",
            "parent_key": "finishing",
            "work_kind": "qc",
            "qc_required": True,
            "qc_checklist": CHECKLIST,
        },
        {"key": "pack", "title": "Pack"},
        {"key": "ship", "title": "Ready to ship", "work_kind": "milestone"},
    ],
    "edges": [
        {"blocker": "spec", "dependent": "cut"},
        {"blocker": "cut", "dependent": "bend"},
        {"blocker": "bend", "dependent": "weld-left"},
        {"blocker": "bend", "dependent": "weld-right"},
        {"blocker": "weld-left", "dependent": "assemble"},
        {"blocker": "weld-right", "dependent": "assemble"},
        {"blocker": "assemble", "dependent": "paint"},
        {"blocker": "paint", "dependent": "inspect"},
        {"blocker": "inspect", "dependent": "pack"},
        {"blocker": "pack", "dependent": "ship"},
    ],
}


def cabinet() -> dict[str, Any]:
    return copy.deepcopy(CABINET)


def small_graph() -> dict[str, Any]:
    return {
        "nodes": [{"key": "a", "title": "A"}, {"key": "b", "title": "B"}],
        "edges": [{"blocker": "a", "dependent": "b"}],
    }
