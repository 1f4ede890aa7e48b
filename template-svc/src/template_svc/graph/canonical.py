"""The canonical form of a graph and its checksum. Pure Python.

Canonical JSON: nodes sorted by key, edges sorted by (blocker, dependent), object keys sorted,
no whitespace (orjson). Two graphs with the same content have the same checksum whatever the
order they were written in.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

import orjson


def canonical_json(graph: Mapping[str, Any]) -> bytes:
    nodes = sorted(graph.get("nodes") or [], key=lambda n: n["key"])
    edges = sorted(graph.get("edges") or [], key=lambda e: (e["blocker"], e["dependent"]))
    return orjson.dumps({"nodes": nodes, "edges": edges}, option=orjson.OPT_SORT_KEYS)


def checksum(graph: Mapping[str, Any]) -> str:
    """sha256 (hex) of the canonical graph JSON."""
    return hashlib.sha256(canonical_json(graph)).hexdigest()
