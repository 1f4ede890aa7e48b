"""The Postman collection, run by Newman against the real platform: the whole story and its
refusals pass, every request's assertions included. Newman's JSON report goes to
var/test-artifacts/newman.json."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import subprocess
from pathlib import Path

import pytest

from blueprint_stack import Stack, perf_report
from blueprint_stack.config import REPO_ROOT

pytestmark = pytest.mark.e2e

_spec = importlib.util.spec_from_file_location(
    "run_newman", REPO_ROOT / "tests" / "postman" / "run_newman.py"
)
assert _spec is not None and _spec.loader is not None
run_newman = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(run_newman)

REPORT = REPO_ROOT / "var" / "test-artifacts" / "newman.json"


@pytest.mark.timeout(290)
def test_the_collection_passes_against_the_platform(stack: Stack) -> None:
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    REPORT.unlink(missing_ok=True)
    values = run_newman.environment(
        stack.config.keys_dir, f"http://127.0.0.1:{stack.config.gateway_port}"
    )
    cmd = run_newman.command(values, iterations=1, delay_ms=60, report=REPORT)
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=280, check=False)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    run = json.loads(Path(REPORT).read_text())["run"]
    assert run["failures"] == []
    stats = run["stats"]
    assert stats["assertions"]["failed"] == 0
    assert stats["assertions"]["total"] >= 140
    executed = {e["item"]["name"] for e in run["executions"]}
    assert "applyTaskTransition: the same client_event_id replays the answer" in executed
    assert "decideInspection: accept" in executed

    # What the run cost, as `make perf-report` prints it: task-svc's statements are there.
    lines = asyncio.run(
        perf_report.report(stack.postgres.admin_dsn, stack.config.database, top=5, reset=False)
    )
    text = "\n".join(lines)
    assert "== task_svc" in text and "== qc_svc" in text and "== template_svc" in text
    assert "top 5 by total time" in text and "top 5 by calls" in text
