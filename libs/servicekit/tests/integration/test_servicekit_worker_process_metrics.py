"""A service run with several uvicorn workers (multiprocess metrics) still exports `process_*`,
for each worker, whichever worker answers the scrape."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from servicekit.devstack import free_port

_APP = textwrap.dedent(
    """
    from servicekit.app import build_app
    from servicekit.settings import BaseServiceSettings

    def create_app():
        settings = BaseServiceSettings(
            service_name="multi-svc",
            database_url="postgresql+asyncpg://nobody@127.0.0.1:1/none",
            redis_url="redis://127.0.0.1:1/0",
        )
        return build_app(settings, title="multi")
    """
)


def _process_pids(body: str) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(body):
        if family.name.startswith("process_"):
            for sample in family.samples:
                found.setdefault(sample.name, set()).add(sample.labels.get("pid", ""))
    return found


def test_every_worker_exports_its_process_metrics(tmp_path: Path) -> None:
    (tmp_path / "multi_app.py").write_text(_APP)
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "multi_app:create_app", "--factory",
         "--app-dir", str(tmp_path), "--port", str(port), "--workers", "2"],
        env={**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        pids: dict[str, set[str]] = {}
        while time.monotonic() < deadline:
            try:
                body = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
            except httpx.TransportError:
                time.sleep(0.2)
                continue
            pids = _process_pids(body)
            if len(pids.get("process_resident_memory_bytes", set())) == 2:
                break
            time.sleep(0.2)
        workers = pids.get("process_resident_memory_bytes", set())
        assert len(workers) == 2, f"process metrics of both workers, got {pids}"
        for name in ("process_cpu_seconds_total", "process_open_fds", "process_start_time_seconds"):
            assert pids.get(name) == workers, (name, pids)
        children = {
            p.name for p in Path("/proc").iterdir()
            if p.name.isdigit() and _ppid(p) == server.pid
        }  # fmt: skip
        assert workers <= children, "the pids are the server's worker processes"
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)


def _ppid(proc: Path) -> int:
    try:
        raw = (proc / "stat").read_text()
    except OSError:
        return -1
    return int(raw[raw.rfind(")") + 2 :].split()[1])
