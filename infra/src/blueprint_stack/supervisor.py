"""A small process supervisor: start children in their own process groups, copy their output to
one log file each and (optionally) to the console with a `name | ` prefix, wait for readiness,
and stop them for good (a polite signal, a wait, then SIGKILL to the whole group).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import httpx

from servicekit.devstack.ports import port_is_free

# A readiness check is called repeatedly until it answers True (or the deadline passes).
Readiness = Callable[[], bool]


class StackError(RuntimeError):
    """Something the person running the stack must fix; printed as a message, not a traceback."""


@dataclass(frozen=True)
class ProcessSpec:
    """One supervised process: what to run, with which extra environment, and when it is ready."""

    name: str
    argv: Sequence[str]
    env: Mapping[str, str] = field(default_factory=dict)
    cwd: Path | None = None
    ready: Readiness | None = None
    stop_signal: int = signal.SIGTERM
    stop_timeout: float = 15.0


def http_ready(url: str, status: int = 200) -> Readiness:
    """Ready when GET `url` answers `status`."""

    def check() -> bool:
        try:
            # trust_env=False: a proxy configured in the environment must not see local checks.
            return httpx.get(url, timeout=2.0, trust_env=False).status_code == status
        except httpx.HTTPError:
            return False

    return check


def port_ready(port: int, host: str = "127.0.0.1") -> Readiness:
    """Ready when something accepts connections on `port`."""

    def check() -> bool:
        return not port_is_free(port, host)

    return check


class Console:
    """Prefixed lines from every process on one stream, never interleaved mid-line."""

    def __init__(self, *, echo: bool = True, stream: IO[str] | None = None) -> None:
        self.echo = echo
        self.stream = stream or sys.stdout
        self.width = 12
        self._lock = threading.Lock()

    def line(self, name: str, text: str) -> None:
        if not self.echo:
            return
        with self._lock:
            self.stream.write(f"{name:<{self.width}} | {text.rstrip()}\n")
            self.stream.flush()

    def say(self, text: str) -> None:
        """A message from the runner itself (always shown when echoing)."""
        self.line("stack", text)


class ManagedProcess:
    def __init__(self, spec: ProcessSpec, log_dir: Path, console: Console) -> None:
        self.spec = spec
        self.log_file = log_dir / f"{spec.name}.log"
        self.console = console
        self.popen: subprocess.Popen[bytes] | None = None
        self._pump: threading.Thread | None = None

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def pid(self) -> int | None:
        return self.popen.pid if self.popen else None

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def exit_code(self) -> int | None:
        return None if self.popen is None else self.popen.poll()

    def start(self) -> None:
        if self.alive():
            return
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "PYTHONUNBUFFERED": "1", **self.spec.env}
        try:
            self.popen = subprocess.Popen(
                list(self.spec.argv),
                cwd=self.spec.cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                # Its own process group: Ctrl-C in the terminal reaches only the runner, which
                # then stops the children in order; and the whole group can be killed at once.
                start_new_session=True,
            )
        except OSError as exc:
            raise StackError(
                f"{self.name} could not be started ({self.spec.argv[0]}): {exc}"
            ) from exc
        self._pump = threading.Thread(
            target=self._copy_output, name=f"log-{self.name}", daemon=True
        )
        self._pump.start()

    def _copy_output(self) -> None:
        assert self.popen is not None and self.popen.stdout is not None
        with open(self.log_file, "ab") as log:
            for raw in iter(self.popen.stdout.readline, b""):
                log.write(raw)
                log.flush()
                self.console.line(self.name, raw.decode("utf-8", errors="replace"))
        self.popen.stdout.close()

    def wait_ready(self, timeout: float) -> None:
        check = self.spec.ready
        deadline = time.monotonic() + timeout
        while True:
            if not self.alive():
                raise StackError(
                    f"{self.name} exited with code {self.exit_code()} while starting; "
                    f"its log ({self.log_file}) ends with:\n{self.log_tail()}"
                )
            if check is None or check():
                return
            if time.monotonic() > deadline:
                raise StackError(
                    f"{self.name} was not ready within {timeout:.0f}s; its log "
                    f"({self.log_file}) ends with:\n{self.log_tail()}"
                )
            time.sleep(0.1)

    def wait_exit(self, timeout: float | None = None) -> int:
        """For one-shot processes: wait until it exits and its output is copied."""
        assert self.popen is not None
        code = self.popen.wait(timeout)
        if self._pump is not None:
            self._pump.join(5)
        return code

    def stop(self) -> None:
        proc = self.popen
        if proc is None:
            return
        if proc.poll() is None:
            try:
                proc.send_signal(self.spec.stop_signal)
                proc.wait(self.spec.stop_timeout)
            except subprocess.TimeoutExpired:
                self.console.say(
                    f"{self.name} did not stop in {self.spec.stop_timeout:.0f}s; killing it"
                )
                _kill_group(proc.pid)
                proc.wait(10)
        # Whatever the leader left behind in its group goes too.
        _kill_group(proc.pid)
        if self._pump is not None:
            self._pump.join(5)
        self.popen = None
        self._pump = None

    def kill(self) -> None:
        """Kill the process and its group at once with SIGKILL (a crash: no cleanup runs)."""
        proc = self.popen
        if proc is None:
            return
        _kill_group(proc.pid)
        proc.wait(10)
        if self._pump is not None:
            self._pump.join(5)
        self.popen = None
        self._pump = None

    def log_tail(self, chars: int = 3000) -> str:
        if self._pump is not None and self.popen is not None and self.popen.poll() is not None:
            self._pump.join(2)
        try:
            return self.log_file.read_text(errors="replace")[-chars:]
        except OSError:
            return "(no log)"


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)
