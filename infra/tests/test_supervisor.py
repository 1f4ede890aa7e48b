"""The supervisor with small real processes: crashed processes come back with backoff, a crash
loop is given up with one clear line, and nothing outlives a runner killed with SIGKILL."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from blueprint_stack.config import REPO_ROOT
from blueprint_stack.supervisor import (
    Console,
    ManagedProcess,
    ProcessDied,
    ProcessSpec,
    RestartPolicy,
    process_start_time,
    stop_leftovers,
)
from blueprint_stack.testing import wait_for

SLEEPER = [sys.executable, "-c", "import time; time.sleep(600)"]
# Ignores SIGTERM, as a hung process would, and starts a grandchild in its group that does too.
STUBBORN = [
    sys.executable,
    "-c",
    "import signal, subprocess, sys, time\n"
    "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
    "code = 'import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)'\n"
    "grandchild = subprocess.Popen([sys.executable, '-c', code])\n"
    "print('grandchild', grandchild.pid, flush=True)\n"
    "time.sleep(600)\n",
]
# A runner in a few lines: starts one child through the supervisor and waits to be killed.
RUNNER = """
import json, sys, time
from pathlib import Path
from blueprint_stack.supervisor import Console, ManagedProcess, ProcessSpec
base = Path(sys.argv[2])
spec = ProcessSpec("child", json.loads(sys.argv[1]), stop_timeout=1.0)
proc = ManagedProcess(spec, base / "log", Console(echo=False), run_dir=base / "run")
proc.start()
print(proc.pid, flush=True)
time.sleep(600)
"""
QUICK = RestartPolicy(first_delay=0.01, max_delay=0.05, stable_after=600, max_crashes=3)


def alive(pid: int, start_time: int | None) -> bool:
    return start_time is not None and process_start_time(pid) == start_time


@pytest.fixture
def console() -> Console:
    return Console(echo=True, stream=io.StringIO())


def said(console: Console) -> str:
    assert isinstance(console.stream, io.StringIO)
    return console.stream.getvalue()


@pytest.fixture
def processes(tmp_path: Path, console: Console) -> Iterator[list[ManagedProcess]]:
    started: list[ManagedProcess] = []
    yield started
    for proc in started:
        proc.stop()


def managed(
    processes: list[ManagedProcess], tmp_path: Path, console: Console, spec: ProcessSpec
) -> ManagedProcess:
    proc = ManagedProcess(spec, tmp_path / "log", console, run_dir=tmp_path / "run")
    processes.append(proc)
    proc.start()
    return proc


def test_backoff_doubles_up_to_its_cap() -> None:
    policy = RestartPolicy(first_delay=0.5, max_delay=30)
    assert [policy.delay(n) for n in range(1, 9)] == [0.5, 1, 2, 4, 8, 16, 30, 30]


def test_a_crashed_process_is_restarted_and_one_stopped_on_purpose_is_not(
    tmp_path: Path, console: Console, processes: list[ManagedProcess]
) -> None:
    proc = managed(processes, tmp_path, console, ProcessSpec("sleeper", SLEEPER))
    first = proc.pid
    assert first is not None
    os.kill(first, signal.SIGKILL)

    def back() -> bool:
        proc.tend(QUICK, ready_timeout=10)
        return proc.alive() and proc.pid != first

    wait_for(back, "the sleeper to be restarted")
    out = said(console)
    assert "sleeper exited unexpectedly (killed by SIGKILL)" in out
    assert f"its log: {tmp_path / 'log' / 'sleeper.log'}" in out
    assert f"sleeper restarted (pid {proc.pid}, restart 1)" in out
    pid_file = json.loads((tmp_path / "run" / "sleeper.pid").read_text())
    assert pid_file["pid"] == proc.pid

    proc.stop()
    proc.tend(RestartPolicy(first_delay=0), ready_timeout=10)
    proc.tend(RestartPolicy(first_delay=0), ready_timeout=10)
    assert not proc.alive() and proc.popen is None
    assert not (tmp_path / "run" / "sleeper.pid").exists()


def test_a_process_started_from_a_short_lived_thread_outlives_that_thread(
    tmp_path: Path, console: Console, processes: list[ManagedProcess]
) -> None:
    # The kernel's death signal follows the thread that forked the child: a process started from
    # a worker thread (asyncio.to_thread) must not be stopped when that thread ends.
    started: list[ManagedProcess] = []
    worker = threading.Thread(
        target=lambda: started.append(
            managed(processes, tmp_path, console, ProcessSpec("sleeper", SLEEPER))
        )
    )
    worker.start()
    worker.join()
    (proc,) = started
    assert proc.popen is not None
    with pytest.raises(subprocess.TimeoutExpired):
        proc.popen.wait(timeout=2)
    assert proc.alive()


def test_a_crash_loop_is_given_up_in_one_line_naming_the_process_and_its_log(
    tmp_path: Path, console: Console, processes: list[ManagedProcess]
) -> None:
    argv = [sys.executable, "-c", "print('cannot reach the database'); raise SystemExit(3)"]
    proc = managed(processes, tmp_path, console, ProcessSpec("looper", argv))
    with pytest.raises(ProcessDied) as info:
        wait_for(lambda: proc.tend(QUICK, ready_timeout=10), "the crash loop to be given up")
    log = tmp_path / "log" / "looper.log"
    assert str(info.value) == (
        f"looper crashed 3 times within 300s (the last: exit code 3); gave up restarting it "
        f"and stopping the stack; its log: {log}"
    )
    assert "cannot reach the database" in log.read_text()
    assert said(console).count("looper exited unexpectedly (exit code 3)") == 2
    assert not proc.wanted


def test_a_process_that_stays_up_long_enough_is_forgiven_its_crashes(
    tmp_path: Path, console: Console, processes: list[ManagedProcess]
) -> None:
    # Every run counts as "stable" here, so crashes never add up to a crash loop.
    forgiving = RestartPolicy(first_delay=0.01, stable_after=0, max_crashes=2)
    argv = [sys.executable, "-c", "raise SystemExit(1)"]
    proc = managed(processes, tmp_path, console, ProcessSpec("flaky", argv))

    def restarted_often() -> bool:
        proc.tend(forgiving, ready_timeout=10)
        return proc.restarts >= 4

    wait_for(restarted_often, "four restarts")
    assert "(crash 1 of 2 allowed" in said(console)
    assert "(crash 2 of 2" not in said(console)


@pytest.mark.parametrize("how", ["no policy", "not restartable"])
def test_without_restarts_a_crash_stops_the_stack_with_one_line(
    tmp_path: Path, console: Console, processes: list[ManagedProcess], how: str
) -> None:
    spec = ProcessSpec("oneshot", SLEEPER, restart=how != "not restartable")
    policy = None if how == "no policy" else QUICK
    proc = managed(processes, tmp_path, console, spec)
    assert proc.pid is not None
    os.kill(proc.pid, signal.SIGKILL)
    with pytest.raises(ProcessDied) as info:
        wait_for(lambda: proc.tend(policy, ready_timeout=10), "the crash to be reported")
    assert str(info.value) == (
        f"oneshot exited unexpectedly (killed by SIGKILL); stopping the stack; its log: "
        f"{tmp_path / 'log' / 'oneshot.log'}"
    )


def start_runner(tmp_path: Path, argv: list[str]) -> tuple[subprocess.Popen[str], int]:
    runner = subprocess.Popen(
        [sys.executable, "-c", RUNNER, json.dumps(argv), str(tmp_path)],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert runner.stdout is not None
    child = int(runner.stdout.readline())
    return runner, child


def test_the_children_of_a_runner_killed_with_sigkill_get_their_stop_signal(
    tmp_path: Path,
) -> None:
    runner, child = start_runner(tmp_path, SLEEPER)
    started = process_start_time(child)
    assert alive(child, started)
    runner.kill()
    runner.wait(10)
    wait_for(lambda: not alive(child, started), "the child of the killed runner to stop")


def test_the_next_start_stops_what_a_killed_runner_left_and_nothing_else(
    tmp_path: Path, console: Console
) -> None:
    runner, child = start_runner(tmp_path, STUBBORN)
    log = tmp_path / "log" / "child.log"
    line = wait_for(
        lambda: (
            next((x for x in log.read_text().splitlines() if "grandchild" in x), None)
            if log.exists()
            else None
        ),
        "the stubborn child to start its grandchild",
    )
    grandchild = int(line.split()[-1])
    left = {pid: process_start_time(pid) for pid in (child, grandchild)}
    # An unrelated process, named by a stale pid file (its pid was recycled): left alone.
    bystander = subprocess.Popen(SLEEPER, start_new_session=True)
    (tmp_path / "run" / "recycled.pid").write_text(
        json.dumps({"name": "recycled", "pid": bystander.pid, "start_time": 1})
    )
    try:
        runner.kill()
        runner.wait(10)
        # The child ignores the stop signal the kernel sent it: both are still there.
        assert all(alive(pid, started) for pid, started in left.items())

        assert stop_leftovers(tmp_path / "run", console) == ["child"]

        assert not any(alive(pid, started) for pid, started in left.items())
        assert bystander.poll() is None
        assert list((tmp_path / "run").glob("*.pid")) == []
        assert f"child (pid {child}) was left running by an earlier run" in said(console)
    finally:
        bystander.kill()
        bystander.wait(10)
        for pid, started in left.items():
            if alive(pid, started):
                os.kill(pid, signal.SIGKILL)
