"""Helpers for tests that run the real stack (tests/e2e and infra/tests)."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from blueprint_stack.config import StackConfig
from blueprint_stack.supervisor import process_start_time

T = TypeVar("T")


def temp_var_dir(prefix: str = "blueprint-") -> Path:
    """A var dir under /tmp that PostgreSQL can reach when we are root (pytest's own temporary
    directories are 0700, which the `postgres` user cannot traverse)."""
    path = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    path.chmod(0o755)
    return path


@contextlib.contextmanager
def listening_on(ports: Iterable[int]) -> Iterator[list[int]]:
    """Hold a listener on each of `ports` that is free (a taken one is taken already), as a
    running `make run` stack would; yields the ports it holds."""
    held: list[int] = []
    with contextlib.ExitStack() as stack:
        for port in ports:
            sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            sock.listen()
            held.append(port)
        yield held


def default_ports() -> list[int]:
    """Every port a `make run` stack with the default settings listens on."""
    return [setting.port for setting in StackConfig().ports()]


def descendants(pid: int) -> dict[int, int]:
    """Every process below `pid` (children, grandchildren...), by pid, with its start time."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            raw = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(raw[raw.rfind(")") + 2 :].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    found: dict[int, int] = {}
    todo = list(children.get(pid, []))
    while todo:
        child = todo.pop()
        started = process_start_time(child)
        if started is not None:
            found[child] = started
        todo += children.get(child, [])
    return found


def still_running(processes: dict[int, int]) -> list[str]:
    """Those of `processes` (pid -> start time, from `descendants`) that still run, described."""
    alive = []
    for pid, started in processes.items():
        if process_start_time(pid) == started:
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
            except OSError:
                continue
            alive.append(f"{pid}: {cmdline.decode(errors='replace').strip()}")
    return alive


def processes_mentioning(text: str) -> list[str]:
    """Command lines of running processes that contain `text` (what `pgrep -f` would find)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            raw = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        cmdline = raw.replace(b"\0", b" ").decode(errors="replace").strip()
        if text in cmdline:
            found.append(f"{entry.name}: {cmdline}")
    return found


def wait_for(check: Callable[[], T | None], what: str, timeout: float = 15.0) -> T:
    """Poll `check` until it returns something truthy; AssertionError after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(0.05)


def json_log_lines(path: Path) -> list[dict[str, Any]]:
    """The JSON lines of a process log (other lines are skipped)."""
    if not path.exists():
        return []
    out = []
    for raw in path.read_text(errors="replace").splitlines():
        try:
            entry = json.loads(raw)
        except ValueError:
            continue
        if isinstance(entry, dict):
            out.append(entry)
    return out
