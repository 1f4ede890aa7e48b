"""A small process supervisor: start children in their own process groups, copy their output to
one log file each and (optionally) to the console with a `name | ` prefix, wait for readiness,
restart a child that crashes (with backoff, giving up on a crash loop), and stop them for good
(a polite signal, a wait, then SIGKILL to the whole group).

Nothing outlives the runner: each child gets its stop signal from the kernel when the runner dies,
even by SIGKILL (Linux's parent-death signal), and each writes a pid file, so the next start can
stop whatever an earlier runner still left behind (`stop_leftovers`).
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import httpx

from servicekit.devstack.ports import port_is_free

# A readiness check is called repeatedly until it answers True (or the deadline passes).
Readiness = Callable[[], bool]


# Every child gets this variable (the runner's var/run directory), so a leftover child of an
# earlier run can be told apart from an unrelated process that got a recycled pid.
RUN_DIR_ENV = "BLUEPRINT_STACK_RUN_DIR"


class StackError(RuntimeError):
    """Something the person running the stack must fix; printed as a message, not a traceback."""


class ProcessDied(StackError):
    """A process exited on its own and will not be restarted (no restart policy, or a crash
    loop): the stack stops."""


@dataclass(frozen=True)
class RestartPolicy:
    """How a process that exits on its own is started again, like compose's
    `restart: unless-stopped`: after a delay that doubles with each crash, and not at all once it
    crashes `max_crashes` times within `window` seconds (a crash loop stops the stack)."""

    first_delay: float = 0.5
    max_delay: float = 30.0
    # Up this long since its last start: its crashes are forgiven, the next delay is first_delay.
    stable_after: float = 60.0
    max_crashes: int = 5
    window: float = 300.0

    def delay(self, crashes: int) -> float:
        """Seconds to wait before the restart that follows the `crashes`-th recent crash."""
        return float(min(self.max_delay, self.first_delay * 2 ** max(0, crashes - 1)))

    def describe(self) -> str:
        return (
            f"a crashed process is restarted after {self.first_delay:g}s, doubling to "
            f"{self.max_delay:g}s; {self.max_crashes} crashes within {self.window:g}s stop the "
            f"stack"
        )


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
    # Started again when it crashes (under the stack's RestartPolicy); False: a crash stops the
    # stack.
    restart: bool = True
    # Called before every start (the first and each restart), e.g. to empty a scratch directory.
    prepare: Callable[[], None] | None = None


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
    def __init__(
        self, spec: ProcessSpec, log_dir: Path, console: Console, *, run_dir: Path | None = None
    ) -> None:
        self.spec = spec
        self.log_file = log_dir / f"{spec.name}.log"
        self.console = console
        # Where its pid file goes (`<name>.pid`), for `stop_leftovers` after a killed runner.
        self.run_dir = run_dir
        self.popen: subprocess.Popen[bytes] | None = None
        self._pump: threading.Thread | None = None
        # True from start() until stop()/kill(): it should be running, so an exit is a crash.
        self.wanted = False
        self.restarts = 0
        self._started_at = 0.0
        self._crashes: list[float] = []  # monotonic times of recent crashes
        self._restart_at: float | None = None
        self._stop_sent_at: float | None = None  # monotonic time the stop signal was sent

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
        """Start the process (from a thread that lives as long as it should: its death signal
        fires when the thread that started it ends; the runner uses its main thread)."""
        if self.alive():
            return
        if self.spec.prepare is not None:
            self.spec.prepare()
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "PYTHONUNBUFFERED": "1", **self.spec.env}
        if self.run_dir is not None:
            env[RUN_DIR_ENV] = str(self.run_dir)
        try:
            self.popen = _spawn(
                list(self.spec.argv),
                cwd=self.spec.cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                # Its own process group: Ctrl-C in the terminal reaches only the runner, which
                # then stops the children in order; and the whole group can be killed at once.
                start_new_session=True,
                # If the runner dies without stopping it (SIGKILL), the kernel sends it its stop
                # signal.
                preexec_fn=_death_signal_hook(self.spec.stop_signal),
            )
        except OSError as exc:
            raise StackError(
                f"{self.name} could not be started ({self.spec.argv[0]}): {exc}"
            ) from exc
        self.wanted = True
        self._stop_sent_at = None
        self._started_at = time.monotonic()
        self._write_pid_file(self.popen.pid)
        self._pump = threading.Thread(
            target=self._copy_output, name=f"log-{self.name}", daemon=True
        )
        self._pump.start()

    @property
    def pid_file(self) -> Path | None:
        return None if self.run_dir is None else self.run_dir / f"{self.name}.pid"

    def _write_pid_file(self, pid: int) -> None:
        path = self.pid_file
        if path is None:
            return
        record = {
            "name": self.name,
            "pid": pid,
            "start_time": process_start_time(pid),
            "stop_signal": int(self.spec.stop_signal),
            "stop_timeout": self.spec.stop_timeout,
            "argv": list(self.spec.argv),
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(record) + "\n")
        tmp.replace(path)

    def _remove_pid_file(self) -> None:
        if self.pid_file is not None:
            self.pid_file.unlink(missing_ok=True)

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

    def request_stop(self) -> None:
        """Send the stop signal and return at once (stop() then waits for the exit), so that
        several processes can shut down side by side. It is not restarted any more."""
        self.wanted = False
        self._restart_at = None
        proc = self.popen
        if proc is None or proc.poll() is not None or self._stop_sent_at is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(self.spec.stop_signal)
        self._stop_sent_at = time.monotonic()

    def stop(self) -> None:
        """Stop it for good (it is not restarted until start() is called again)."""
        self.request_stop()
        proc = self.popen
        if proc is None:
            return
        if proc.poll() is None:
            sent_at = self._stop_sent_at or time.monotonic()
            left = max(0.0, self.spec.stop_timeout - (time.monotonic() - sent_at))
            try:
                proc.wait(left)
            except subprocess.TimeoutExpired:
                self.console.say(
                    f"{self.name} did not stop in {self.spec.stop_timeout:.0f}s; killing it"
                )
                _kill_group(proc.pid)
                proc.wait(10)
        self._stop_sent_at = None
        self._clean_up_exited()

    def kill(self) -> None:
        """Kill the process and its group at once with SIGKILL, as a crash would (no cleanup
        runs), and leave it stopped: it is not restarted until start() is called again."""
        self.wanted = False
        self._restart_at = None
        proc = self.popen
        if proc is None:
            return
        _kill_group(proc.pid)
        proc.wait(10)
        self._clean_up_exited()

    def _clean_up_exited(self) -> None:
        """After the leader exited: whatever it left in its group goes too, its output is
        copied to the end, and its pid file is removed."""
        proc = self.popen
        if proc is None:
            return
        _kill_group(proc.pid)
        if self._pump is not None:
            self._pump.join(5)
        self._remove_pid_file()
        self.popen = None
        self._pump = None

    # --- crashes ---------------------------------------------------------------------------
    def tend(self, policy: RestartPolicy | None, ready_timeout: float) -> None:
        """Called over and over by the runner: notice a crash, restart the process when its
        backoff is over, and raise ProcessDied when it must not (or no longer) be restarted."""
        if not self.wanted:
            return
        now = time.monotonic()
        if self._restart_at is not None:
            if now >= self._restart_at:
                self._restart_at = None
                self._restart(ready_timeout)
            return
        proc = self.popen
        if proc is None:
            return
        up_for = now - self._started_at
        stable = policy is not None and up_for >= policy.stable_after
        if proc.poll() is None:
            if stable:
                self._crashes.clear()  # it stayed up: its next crash starts the backoff over
            return
        how = describe_exit(proc.returncode)
        self._clean_up_exited()
        if stable:
            self._crashes.clear()
        if policy is None or not self.spec.restart:
            self.wanted = False
            raise ProcessDied(
                f"{self.name} exited unexpectedly ({how}); stopping the stack; its log: "
                f"{self.log_file}"
            )
        self._crashes = [t for t in self._crashes if now - t < policy.window] + [now]
        crashes = len(self._crashes)
        if crashes >= policy.max_crashes:
            self.wanted = False
            raise ProcessDied(
                f"{self.name} crashed {crashes} times within {policy.window:g}s (the last: "
                f"{how}); gave up restarting it and stopping the stack; its log: {self.log_file}"
            )
        delay = policy.delay(crashes)
        self.console.say(
            f"{self.name} exited unexpectedly ({how}) after {up_for:.1f}s; restarting it in "
            f"{delay:g}s (crash {crashes} of {policy.max_crashes} allowed within "
            f"{policy.window:g}s); its log: {self.log_file}"
        )
        self._restart_at = now + delay

    def _restart(self, ready_timeout: float) -> None:
        self.restarts += 1
        self.start()
        try:
            self.wait_ready(ready_timeout)
        except StackError:
            # Dead, or not ready in time: a crash like any other, counted by the next tend().
            proc = self.popen
            if proc is not None and proc.poll() is None:
                _kill_group(proc.pid)
                proc.wait(10)
            return
        self.console.say(f"{self.name} restarted (pid {self.pid}, restart {self.restarts})")

    def log_tail(self, chars: int = 3000) -> str:
        if self._pump is not None and self.popen is not None and self.popen.poll() is not None:
            self._pump.join(2)
        try:
            return self.log_file.read_text(errors="replace")[-chars:]
        except OSError:
            return "(no log)"


def describe_exit(code: int | None) -> str:
    if code is None:
        return "still running"
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


# --- dying with the runner -----------------------------------------------------------------
_PR_SET_PDEATHSIG = 1


def _load_prctl() -> Callable[..., int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl: Callable[..., int] = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    return prctl


_PRCTL = _load_prctl()


def _death_signal_hook(sig: int) -> Callable[[], None] | None:
    """A hook run in the child between fork and exec: the kernel sends the child `sig` when the
    thread that forked it dies, even by SIGKILL (PR_SET_PDEATHSIG; it survives exec)."""
    prctl = _PRCTL
    if prctl is None:
        return None
    parent = os.getpid()
    args = (ctypes.c_ulong(sig), ctypes.c_ulong(0), ctypes.c_ulong(0), ctypes.c_ulong(0))

    def hook() -> None:
        prctl(_PR_SET_PDEATHSIG, *args)
        if os.getppid() != parent:  # the runner died before the line above took effect
            os.kill(os.getpid(), sig)

    return hook


_spawner: ThreadPoolExecutor | None = None
_spawner_lock = threading.Lock()


def _spawn(argv: list[str], **kwargs: Any) -> subprocess.Popen[bytes]:
    """Popen from a thread that lives as long as the runner.

    The death signal is tied to the thread that forks, not to the process: a child started from
    a short-lived thread (`asyncio.to_thread`, a worker pool shut down with its event loop) would
    be signalled as soon as that thread ends, with the runner alive. The main thread lives as long
    as the runner; any other caller forks from one long-lived spawner thread instead.
    """
    global _spawner
    if threading.current_thread() is threading.main_thread():
        return subprocess.Popen(argv, **kwargs)
    with _spawner_lock:
        if _spawner is None:
            _spawner = ThreadPoolExecutor(max_workers=1, thread_name_prefix="spawner")
    return _spawner.submit(lambda: subprocess.Popen(argv, **kwargs)).result()


# --- what an earlier runner left behind ------------------------------------------------------
def _stat_fields(pid: int) -> list[str] | None:
    """/proc/<pid>/stat from the state on (field 3), or None for a process that is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = raw[raw.rfind(")") + 2 :].split()
    if not fields or fields[0] in ("Z", "X"):  # a zombie holds no port and runs no code
        return None
    return fields


def process_start_time(pid: int) -> int | None:
    """When `pid` started (clock ticks since boot): with the pid, it names one process for good."""
    fields = _stat_fields(pid)
    return int(fields[19]) if fields else None


def _session_of(pid: int) -> int | None:
    fields = _stat_fields(pid)
    return int(fields[3]) if fields else None


def _has_run_dir_marker(pid: int, run_dir: Path) -> bool:
    marker = f"{RUN_DIR_ENV}={run_dir}".encode()
    try:
        return marker in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return False


def _strays(leader: int, run_dir: Path) -> list[int]:
    """Other processes of the session `leader` started that carry this run's marker."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == leader:
            continue
        pid = int(entry.name)
        if _session_of(pid) == leader and _has_run_dir_marker(pid, run_dir):
            found.append(pid)
    return found


def _wait_gone(alive: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while alive():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def stop_leftovers(run_dir: Path, console: Console) -> list[str]:
    """Stop what a runner that died without stopping its children (SIGKILL, a power cut of the
    terminal...) left running from `run_dir`'s pid files; remove the pid files. Returns the names
    of the processes it stopped.

    A process is stopped only when it is the one its pid file names (same pid *and* start time),
    or when it carries this run directory's marker in its environment: never by name, and never an
    unrelated process that got a recycled pid.
    """
    stopped = []
    for pid_file in sorted(run_dir.glob("*.pid")):
        try:
            record = json.loads(pid_file.read_text())
            leftover = _Leftover(
                name=str(record["name"]),
                pid=int(record["pid"]),
                start_time=record["start_time"],
                stop_signal=int(record.get("stop_signal", signal.SIGTERM)),
                stop_timeout=float(record.get("stop_timeout", 15.0)),
                run_dir=run_dir,
            )
        except (OSError, ValueError, KeyError, TypeError):
            pid_file.unlink(missing_ok=True)
            continue
        if leftover.leader_alive() or leftover.strays():
            console.say(
                f"{leftover.name} (pid {leftover.pid}) was left running by an earlier run that "
                f"did not stop it; stopping it"
            )
            leftover.stop()
            stopped.append(leftover.name)
        pid_file.unlink(missing_ok=True)
    return stopped


@dataclass(frozen=True)
class _Leftover:
    name: str
    pid: int
    start_time: int | None
    stop_signal: int
    stop_timeout: float
    run_dir: Path

    def leader_alive(self) -> bool:
        return self.start_time is not None and process_start_time(self.pid) == self.start_time

    def strays(self) -> list[int]:
        return _strays(self.pid, self.run_dir)

    def stop(self) -> None:
        """Its polite stop signal, a wait, then SIGKILL to its group and to marked strays."""
        if self.leader_alive():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(self.pid, self.stop_signal)
            if not _wait_gone(self.leader_alive, self.stop_timeout) and self.leader_alive():
                _kill_group(self.pid)
                _wait_gone(self.leader_alive, 10)
        for stray in self.strays():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(stray, signal.SIGKILL)
        _wait_gone(lambda: bool(self.strays()), 10)
