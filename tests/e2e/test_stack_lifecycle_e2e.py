"""The runner's lifecycle: `run` stops everything on Ctrl-C / SIGTERM, and a second start reuses
the data of the first."""

from __future__ import annotations

import asyncio
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest
import redis

from blueprint_stack import Stack, StackConfig
from blueprint_stack.config import REPO_ROOT, SERVICES
from blueprint_stack.testing import (
    default_ports,
    listening_on,
    processes_mentioning,
    temp_var_dir,
    wait_for,
)

pytestmark = pytest.mark.e2e


@pytest.fixture
def var_dir() -> Iterator[Path]:
    path = temp_var_dir("blueprint-lifecycle-")
    yield path
    if not processes_mentioning(str(path)):
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def default_ports_taken() -> Iterator[None]:
    """As when a `make run` stack is running on this machine: every default port is taken, and
    the test stack, on ports of its own, must start beside it."""
    with listening_on(default_ports()):
        yield


def cli_args(config: StackConfig) -> list[str]:
    return ["--no-install", *config.run_args()]


def gateway_ready(config: StackConfig) -> bool:
    try:
        resp = httpx.get(f"http://127.0.0.1:{config.gateway_port}/health/task", timeout=2)
    except httpx.HTTPError:
        return False
    return resp.status_code == 200


async def _sql(dsn: str, statement: str) -> object:
    conn = await asyncpg.connect(dsn, database="blueprint")
    try:
        return await conn.fetchval(statement)
    finally:
        await conn.close()


def sql(stack: Stack, statement: str) -> object:
    return asyncio.run(_sql(stack.postgres.admin_dsn, statement))


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_run_stops_everything_on_a_signal_and_a_restart_reuses_the_data(
    var_dir: Path, sig: signal.Signals, default_ports_taken: None
) -> None:
    config = StackConfig.for_tests(var_dir)
    console = var_dir / "console.out"
    with open(console, "wb") as out:
        runner = subprocess.Popen(
            [sys.executable, "-m", "blueprint_stack", "run", *cli_args(config)],
            cwd=REPO_ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        # The runner prints its summary once everything, the gateway last, is ready.
        wait_for(
            lambda: "Blueprint is running." in console.read_text() or runner.poll() is not None,
            "the stack",
            timeout=120,
        )
        assert runner.poll() is None, console.read_text()[-3000:]
        assert gateway_ready(config)
        assert "task-svc     | " in console.read_text()
        # Something to find again after the restart, in each store.
        first = Stack(config)
        sql(first, "CREATE TABLE IF NOT EXISTS public.lifecycle_marker (note text)")
        sql(first, "INSERT INTO public.lifecycle_marker VALUES ('kept')")
        redis.Redis(port=config.redis_port).set("lifecycle-marker", "kept")
        passwords = config.passwords_file.read_text()

        runner.send_signal(sig)
        assert runner.wait(120) == 0, console.read_text()[-3000:]
    finally:
        if runner.poll() is None:
            # A failed assertion above: let the runner stop its children before giving up on it
            # (SIGKILL alone would leave them running).
            runner.send_signal(signal.SIGTERM)
            try:
                runner.wait(120)
            except subprocess.TimeoutExpired:
                runner.kill()
                runner.wait(30)
    assert processes_mentioning(str(var_dir)) == []
    for name in ("postgres", "redis", "gateway", *(s.name for s in SERVICES)):
        assert (config.log_dir / f"{name}.log").stat().st_size > 0, name

    again = Stack(config)
    again.start()
    try:
        assert gateway_ready(config)
        assert config.passwords_file.read_text() == passwords
        assert sql(again, "SELECT note FROM public.lifecycle_marker") == "kept"
        assert redis.Redis(port=config.redis_port).get("lifecycle-marker") == b"kept"
    finally:
        again.stop()
    assert processes_mentioning(str(var_dir)) == []
