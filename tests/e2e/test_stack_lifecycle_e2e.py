"""The runner's lifecycle: `run` stops everything on Ctrl-C / SIGTERM (the way to stop it as a
script's background job, where SIGINT is ignored), a crashed process is restarted while the stack
stays up, a runner killed with SIGKILL leaves nothing behind, and the next start reuses the data
of the first. Every test stack runs beside a `make run` stack's default ports.

Three starts in all: Ctrl-C ends the first; the second is killed, and the third, a background
job on the same var dir, finds its data and stops on SIGTERM."""

from __future__ import annotations

import asyncio
import json
import os
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

from blueprint_stack import Stack, StackConfig, StackError
from blueprint_stack.config import REPO_ROOT, SERVICES
from blueprint_stack.supervisor import process_start_time
from blueprint_stack.testing import (
    default_ports,
    descendants,
    listening_on,
    processes_mentioning,
    still_running,
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


def lifecycle_config(var_dir: Path) -> StackConfig:
    """A test stack with one HTTP worker per service: the runner's lifecycle is the same with
    any number, and every process fewer is a faster start on a small machine."""
    return StackConfig.for_tests(var_dir, service_workers=1)


def cli_args(config: StackConfig) -> list[str]:
    return ["--no-install", "--service-workers", str(config.service_workers), *config.run_args()]


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


def ignore_sigint() -> None:
    # What a POSIX shell does to a job it starts in the background (`make run &` in a script).
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def start_runner(
    config: StackConfig, console: Path, *, background: bool = False
) -> subprocess.Popen[bytes]:
    """`python -m blueprint_stack run` on the config's ports; returns once it is running."""
    with open(console, "ab") as out:
        runner = subprocess.Popen(
            [sys.executable, "-m", "blueprint_stack", "run", *cli_args(config)],
            cwd=REPO_ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            preexec_fn=ignore_sigint if background else None,
        )
    # The runner prints its summary once everything, the gateway last, is ready.
    wait_for(
        lambda: "Blueprint is running." in console.read_text() or runner.poll() is not None,
        "the stack",
        timeout=180,
    )
    assert runner.poll() is None, console.read_text()[-3000:]
    return runner


def stop_runner(runner: subprocess.Popen[bytes]) -> None:
    """After a failed assertion: let the runner stop its children before giving up on it."""
    if runner.poll() is None:
        runner.send_signal(signal.SIGTERM)
        try:
            runner.wait(120)
        except subprocess.TimeoutExpired:
            runner.kill()
            runner.wait(30)


def stop_with(
    runner: subprocess.Popen[bytes], sig: signal.Signals, config: StackConfig, console: Path
) -> None:
    """Signal the runner alone, as `kill` (or Ctrl-C in its terminal) does: it exits 0 and
    leaves no process, pid file or empty log behind."""
    children = descendants(runner.pid)
    assert len(children) > len(SERVICES) * 2 + 3  # workers and backends too
    runner.send_signal(sig)
    assert runner.wait(120) == 0, console.read_text()[-3000:]
    assert still_running(children) == []
    assert processes_mentioning(str(config.var_dir)) == []
    assert list(config.run_dir.glob("*.pid")) == []
    for name in ("postgres", "redis", "gateway", *(s.name for s in SERVICES)):
        assert (config.log_dir / f"{name}.log").stat().st_size > 0, name


@pytest.mark.timeout(300)
def test_ctrl_c_stops_everything(var_dir: Path, default_ports_taken: None) -> None:
    config = lifecycle_config(var_dir)
    console = var_dir / "console.out"
    runner = start_runner(config, console)
    try:
        assert gateway_ready(config)
        assert "task-svc     | " in console.read_text()
        stop_with(runner, signal.SIGINT, config, console)
    finally:
        stop_runner(runner)


@pytest.mark.timeout(600)  # three full starts
def test_a_crash_comes_back_a_killed_runner_leaves_nothing_and_a_background_run_keeps_the_data(
    var_dir: Path, default_ports_taken: None
) -> None:
    config = lifecycle_config(var_dir)
    console = var_dir / "console.out"
    runner = start_runner(config, console)
    try:
        # One runner per var dir: a second one refuses, and stops nothing of the first.
        with pytest.raises(StackError, match=f"another runner \\(pid {runner.pid}\\)"):
            Stack(config).start()
        assert gateway_ready(config)
        # Something to find again after the next start, in each store.
        first = Stack(config)
        sql(first, "CREATE TABLE IF NOT EXISTS public.lifecycle_marker (note text)")
        sql(first, "INSERT INTO public.lifecycle_marker VALUES ('kept')")
        redis.Redis(port=config.redis_port).set("lifecycle-marker", "kept")
        passwords = config.passwords_file.read_text()

        # An events process crashes: it comes back, on its port, while the stack stays up.
        events = "task-svc-events"
        pid_file = config.run_dir / f"{events}.pid"
        crashed = json.loads(pid_file.read_text())["pid"]
        os.kill(crashed, signal.SIGKILL)
        metrics = f"http://127.0.0.1:{config.events_metrics_ports['task-svc']}/metrics"

        def back() -> int | None:
            try:
                pid = int(json.loads(pid_file.read_text())["pid"])
                answers = httpx.get(metrics, timeout=2, trust_env=False).status_code == 200
            except (OSError, ValueError, httpx.HTTPError):
                return None
            return pid if pid != crashed and answers and process_start_time(pid) else None

        restarted = wait_for(back, f"{events} to be restarted", timeout=120)
        # The runner says so once its readiness check passes, which can be a moment after the
        # metrics port first answers here.
        said = f"{events} restarted (pid {restarted}, restart 1)"
        wait_for(lambda: said in console.read_text(), f"the runner to say {said!r}", timeout=30)
        assert runner.poll() is None, console.read_text()[-3000:]
        assert gateway_ready(config)
        assert f"{events} exited unexpectedly (killed by SIGKILL)" in console.read_text()

        # The runner is killed: every process under it goes too.
        children = descendants(runner.pid)
        assert restarted in children
        runner.kill()
        runner.wait(30)
        wait_for(lambda: not still_running(children), "the killed runner's children to stop", 120)
    finally:
        stop_runner(runner)

    # The next start, as a script's background job (SIGINT ignored), on the same ports and var
    # dir, succeeds and finds the data; SIGTERM, the way to stop such a job, stops everything.
    console = var_dir / "console-again.out"
    runner = start_runner(config, console, background=True)
    try:
        assert gateway_ready(config)
        assert config.passwords_file.read_text() == passwords
        assert sql(Stack(config), "SELECT note FROM public.lifecycle_marker") == "kept"
        assert redis.Redis(port=config.redis_port).get("lifecycle-marker") == b"kept"
        stop_with(runner, signal.SIGTERM, config, console)
    finally:
        stop_runner(runner)
