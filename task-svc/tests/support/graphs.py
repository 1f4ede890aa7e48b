"""Template graphs used by task-svc's tests (the shape template-svc's internal read returns)."""

from __future__ import annotations

import uuid
from typing import Any

# The 12-node cabinet process: 1 ready start, a fork, a join, QC and a closing milestone.
#
#   design(4) -> cut(3) -> drill(2) ---------> assemble(5) -> sand(2) -> paint(3) -> qc(1)
#            \-> order-hw(8) -> check-hw(1) -/                                        |
#                                                                      label(1) <-----+
#   qc -> pack(1) -> ship (milestone)   label -> pack
CABINET_NODES: list[dict[str, Any]] = [
    {"key": "design", "title": "Design the cabinet", "estimate_hours": 4, "due_offset_hours": 8},
    {"key": "cut", "title": "Cut the panels", "estimate_hours": 3, "due_offset_hours": 16},
    {"key": "drill", "title": "Drill the panels", "estimate_hours": 2},
    {"key": "order-hw", "title": "Order the hardware", "estimate_hours": 8},
    {"key": "check-hw", "title": "Check the hardware", "estimate_hours": 1, "work_kind": "qc"},
    {"key": "assemble", "title": "Assemble the carcass", "estimate_hours": 5},
    {"key": "sand", "title": "Sand", "estimate_hours": 2, "parent_key": "assemble"},
    {
        "key": "paint",
        "title": "Paint",
        "estimate_hours": 3,
        "qc_required": True,
        "qc_checklist": [{"code": "PAINT-1", "text": "No runs", "required": True}],
    },
    {"key": "qc", "title": "Final inspection", "estimate_hours": 1, "work_kind": "qc"},
    {"key": "label", "title": "Print the label", "estimate_hours": 1},
    {"key": "pack", "title": "Pack", "estimate_hours": 1},
    {"key": "ship", "title": "Ready to ship", "work_kind": "milestone"},
]
CABINET_EDGES: list[dict[str, str]] = [
    {"blocker": "design", "dependent": "cut"},
    {"blocker": "design", "dependent": "order-hw"},
    {"blocker": "cut", "dependent": "drill"},
    {"blocker": "drill", "dependent": "assemble"},
    {"blocker": "order-hw", "dependent": "check-hw"},
    {"blocker": "check-hw", "dependent": "assemble"},
    {"blocker": "assemble", "dependent": "sand"},
    {"blocker": "sand", "dependent": "paint"},
    {"blocker": "paint", "dependent": "qc"},
    {"blocker": "qc", "dependent": "label"},
    {"blocker": "qc", "dependent": "pack"},
    {"blocker": "label", "dependent": "pack"},
    {"blocker": "pack", "dependent": "ship"},
]
# Only design has no blockers.
CABINET_READY = {"design"}
# Hand-checked critical path with nothing done: design 4, order-hw 8, check-hw 1, assemble 5,
# sand 2, paint 3, qc 1, label 1, pack 1, ship 0 = 26 hours.
CABINET_CRITICAL_PATH = [
    "design",
    "order-hw",
    "check-hw",
    "assemble",
    "sand",
    "paint",
    "qc",
    "label",
    "pack",
    "ship",
]
CABINET_CRITICAL_HOURS = 26.0


def full_node(n: dict[str, Any]) -> dict[str, Any]:
    """A node with every field template-svc returns."""
    return {
        "key": n["key"],
        "title": n["title"],
        "description": n.get("description", ""),
        "kind": n.get("kind", "task"),
        "work_kind": n.get("work_kind", "work"),
        "priority": n.get("priority", 50),
        "qc_required": n.get("qc_required", False),
        "qc_checklist": n.get("qc_checklist", []),
        "estimate_hours": n.get("estimate_hours"),
        "due_offset_hours": n.get("due_offset_hours"),
        "parent_key": n.get("parent_key"),
        "role_hint": n.get("role_hint"),
    }


def version_json(
    *,
    org_id: uuid.UUID,
    nodes: list[dict[str, Any]] | None = None,
    edges: list[dict[str, str]] | None = None,
    status: str = "published",
    version: int = 1,
    template_id: uuid.UUID | None = None,
) -> dict[str, Any]:
    return {
        "template_id": str(template_id or uuid.uuid4()),
        "org_id": str(org_id),
        "key": "cabinet",
        "name": "Cabinet",
        "version": version,
        "status": status,
        "checksum": "0" * 64,
        "published_at": "2026-11-01T00:00:00+00:00",
        "nodes": [full_node(n) for n in (CABINET_NODES if nodes is None else nodes)],
        "edges": CABINET_EDGES if edges is None else edges,
    }


def chain_graph(
    size: int, *, prefix: str = "s"
) -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
    """A wide-ish DAG of `size` nodes: node i waits for i-1 and i-7 (when they exist)."""
    nodes = [
        {"key": f"{prefix}{i}", "title": f"Step {i}", "estimate_hours": 1 + i % 5}
        for i in range(size)
    ]
    edges = []
    for i in range(size):
        for back in (1, 7):
            if i - back >= 0:
                edges.append({"blocker": f"{prefix}{i - back}", "dependent": f"{prefix}{i}"})
    return nodes, edges
