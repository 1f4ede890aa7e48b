"""Mermaid flowchart rendering of a task graph, for drawing it in docs and issue trackers."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

# Fill colours per status, readable on light and dark backgrounds.
STATUS_STYLES: dict[str, str] = {
    "blocked": "fill:#e5e7eb,stroke:#6b7280,color:#111827",
    "ready": "fill:#dbeafe,stroke:#2563eb,color:#1e3a8a",
    "in_progress": "fill:#fef3c7,stroke:#d97706,color:#78350f",
    "on_hold": "fill:#fde68a,stroke:#92400e,color:#78350f",
    "in_qc": "fill:#ede9fe,stroke:#7c3aed,color:#4c1d95",
    "rework": "fill:#fee2e2,stroke:#dc2626,color:#7f1d1d",
    "done": "fill:#dcfce7,stroke:#16a34a,color:#14532d",
    "cancelled": "fill:#f3f4f6,stroke:#9ca3af,color:#6b7280,stroke-dasharray:4 2",
}


@dataclass(frozen=True)
class MermaidNode:
    id: str
    title: str
    status: str
    group: str | None = None  # e.g. the deliverable serial: nodes of a group share a subgraph


def _label(text: str) -> str:
    """Mermaid labels are quoted; quotes and markup characters become entity codes."""
    out = text.replace("#", "#35;").replace('"', "#quot;")
    return out.replace("<", "#lt;").replace(">", "#gt;").replace("\n", " ")


def render(nodes: Sequence[MermaidNode], edges: Sequence[tuple[str, str]]) -> str:
    """`edges` are (blocker id, dependent id). Node ids are replaced by short stable names."""
    names = {n.id: f"n{i}" for i, n in enumerate(nodes)}
    lines = ["flowchart TD"]
    groups: dict[str | None, list[MermaidNode]] = {}
    for n in nodes:
        groups.setdefault(n.group, []).append(n)
    for g, members in groups.items():
        indent = "    "
        if g is not None:
            lines.append(f'    subgraph g{len(lines)}["{_label(g)}"]')
            indent = "        "
        for n in members:
            lines.append(f'{indent}{names[n.id]}["{_label(n.title)}<br/>{n.status}"]:::{n.status}')
        if g is not None:
            lines.append("    end")
    for blocker, dependent in edges:
        if blocker in names and dependent in names:
            lines.append(f"    {names[blocker]} --> {names[dependent]}")
    used = sorted({n.status for n in nodes})
    for status in used:
        style = STATUS_STYLES.get(status, "fill:#ffffff,stroke:#000000")
        lines.append(f"    classDef {status} {style}")
    return "\n".join(lines) + "\n"
