"""Spectral (pinned in the root package.json) lints the merged OpenAPI document: zero errors.

Spectral's OpenAPI rules check what generated clients and tools rely on (valid schemas,
examples that fit them, unique operationIds, resolvable refs); `.spectral.yaml` adds the
platform's own (human camelCase operationIds).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from blueprint_stack.config import REPO_ROOT
from blueprint_stack.openapi import merge, service_documents

SPECTRAL = REPO_ROOT / "node_modules" / ".bin" / "spectral"


def _lint(document: Path) -> list[dict[str, object]]:
    assert SPECTRAL.exists(), "Spectral is missing: `make setup` runs `npm ci` at the repo root"
    result = subprocess.run(
        [
            str(SPECTRAL),
            "lint",
            "--ruleset",
            str(REPO_ROOT / ".spectral.yaml"),
            "--format",
            "json",
            "--quiet",
            "--fail-severity",
            "error",
            str(document),
        ],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
        cwd=REPO_ROOT,
    )
    assert result.returncode in (0, 1), result.stderr
    findings: list[dict[str, object]] = json.loads(result.stdout or "[]")
    return findings


def test_the_merged_document_has_no_spectral_errors(tmp_path: Path) -> None:
    document = tmp_path / "openapi.json"
    document.write_text(json.dumps(merge(service_documents())))
    errors = [f for f in _lint(document) if f.get("severity") == 0]
    assert not errors, json.dumps(errors[:5], indent=1)


def test_spectral_reports_a_generated_operation_id_as_an_error(tmp_path: Path) -> None:
    """The linter is wired up: a FastAPI-style operationId fails it."""
    doc = merge(service_documents())
    doc["paths"]["/api/v1/templates"]["post"]["operationId"] = (
        "create_template_api_v1_templates_post"
    )
    document = tmp_path / "openapi.json"
    document.write_text(json.dumps(doc))
    codes = {f.get("code") for f in _lint(document) if f.get("severity") == 0}
    assert codes == {"blueprint-operation-id-camel-case"}
