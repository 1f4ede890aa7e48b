"""Fault injection against a running stack, one fault at a time, at random moments.

Kinds:
- `http-worker`: SIGKILL one HTTP worker process of a service (uvicorn runs with --workers; its
  parent starts a new one);
- `service`: SIGKILL a service's whole process group (the uvicorn parent and its workers);
- `events`: SIGKILL a `<service>-events` process (its outbox relay and event consumer);
- `gateway`: SIGKILL nginx (master and workers);
- `postgres`: a fast shutdown (SIGINT: open transactions are rolled back, clients cut off) and a
  start, through the stack;
- `redis`: a stop (SIGTERM) and a start, through the stack;
- `redis-kill`: SIGKILL of Redis (no shutdown save: what survives is what its append-only file
  already holds), then a start;
- `celery`: SIGKILL of notify-svc's Celery worker (attempts under way die with it) or of beat.

A crash is a signal from outside, not `Stack.stop_process`: a stack that restarts crashed
processes by itself does so here too. The injector then waits for the process to answer again
(the readiness check of its spec: port, /readyz or /health) and, when it is not back within
`grace` seconds, starts it through the stack (`Stack.start_process`). So it works whether or not
the stack restarts processes on its own. After each fault every process of the stack is checked;
one that died without being hit (a relay that gave up while PostgreSQL was down, say) is
recorded as collateral and started again.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from blueprint_stack import Stack, StackError

KINDS = (
    "http-worker", "service", "events", "gateway", "postgres", "redis", "redis-kill", "celery",
)  # fmt: skip
CELERY_PROCESSES = ("notify-celery", "notify-beat")
# The services the driver sends traffic to (notify-svc has no public traffic yet, but its
# events process has a relay).
TRAFFIC_SERVICES = ("template-svc", "task-svc", "qc-svc")
EVENTS_SERVICES = ("template-svc", "task-svc", "qc-svc", "notify-svc")


@dataclass
class Fault:
    kind: str
    target: str
    at: float  # seconds since the injector started
    recovery: float | None = None  # seconds until the target answered again
    how: str = ""  # "came back by itself", "started by the injector", "restarted"
    note: str = ""


@dataclass
class FaultLog:
    faults: list[Fault] = field(default_factory=list)
    collateral: list[str] = field(default_factory=list)

    def by_kind(self) -> dict[str, int]:
        out = dict.fromkeys(KINDS, 0)
        for f in self.faults:
            out[f.kind] = out.get(f.kind, 0) + 1
        return out


def children_of(pid: int) -> list[int]:
    """The direct children of `pid` (from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # "pid (comm) state ppid ...": comm may hold spaces and parentheses.
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == pid:
            found.append(int(entry.name))
    return found


def cmdline(pid: int) -> str:
    try:
        return (Path("/proc") / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def http_workers(master: int) -> list[int]:
    """uvicorn's worker processes under its parent (multiprocessing spawn children, not the
    resource tracker)."""
    return [c for c in children_of(master) if "spawn_main" in cmdline(c)]


class Injector:
    def __init__(
        self,
        stack: Stack,
        rng: random.Random,
        *,
        kinds: Sequence[str] = KINDS,
        pause: tuple[float, float] = (1.0, 4.0),
        grace: float = 5.0,
        recovery_deadline: float = 180.0,
        say: Callable[[str], None] | None = None,
    ) -> None:
        self.stack = stack
        self.rng = rng
        self.kinds = list(kinds)
        self.pause = pause
        self.grace = grace
        self.recovery_deadline = recovery_deadline
        self.say = say or (lambda _: None)
        self.log = FaultLog()
        self.rounds = 0  # complete rounds over every kind
        self._t0 = time.monotonic()

    # --- the schedule ---------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> FaultLog:
        """Inject faults until `stop` is set: rounds over every kind in a random order, a random
        pause before each; then make sure every process is up again."""
        self._t0 = time.monotonic()
        try:
            while not stop.is_set():
                kinds = list(self.kinds)
                self.rng.shuffle(kinds)
                for kind in kinds:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), self.rng.uniform(*self.pause))
                    if stop.is_set():
                        break
                    await self.inject(kind)
                    await self.heal()
                else:
                    self.rounds += 1
        finally:
            await self.heal()
        return self.log

    async def inject(self, kind: str) -> Fault:
        at = time.monotonic() - self._t0
        if kind == "http-worker":
            fault = await self._kill_http_worker(self.rng.choice(TRAFFIC_SERVICES), at)
        elif kind == "service":
            fault = await self._crash(kind, self.rng.choice(TRAFFIC_SERVICES), at)
        elif kind == "events":
            fault = await self._crash(kind, f"{self.rng.choice(EVENTS_SERVICES)}-events", at)
        elif kind == "gateway":
            fault = await self._crash(kind, "gateway", at)
        elif kind in ("postgres", "redis"):
            fault = await self._restart(kind, at)
        elif kind == "redis-kill":
            fault = await self._crash(kind, "redis", at)
        elif kind == "celery":
            fault = await self._crash(kind, self.rng.choice(CELERY_PROCESSES), at)
        else:
            raise ValueError(f"unknown fault kind {kind!r}; kinds: {', '.join(KINDS)}")
        self.log.faults.append(fault)
        self.say(
            f"fault {len(self.log.faults)}: {fault.kind} {fault.target} at {fault.at:.1f}s, "
            f"back after {fault.recovery if fault.recovery is None else round(fault.recovery, 1)}"
            f"s ({fault.how}){' - ' + fault.note if fault.note else ''}"
        )
        return fault

    # --- the faults -----------------------------------------------------------------------

    async def _kill_http_worker(self, service: str, at: float) -> Fault:
        fault = Fault("http-worker", service, at)
        master = self.stack.process(service).pid or 0
        workers = http_workers(master) if master else []
        if not workers:
            fault.note = "no worker process found; crashed the whole service instead"
            return await self._crash("service", service, at, fault)
        victim = self.rng.choice(workers)
        started = time.monotonic()
        with contextlib.suppress(ProcessLookupError):
            os.kill(victim, signal.SIGKILL)
        fault.target = f"{service} worker {victim}"
        # Back: as many workers as before, none of them the victim, and the service ready.
        expected = len(workers)
        ready = self.stack.process(service).spec.ready

        def back() -> bool:
            now = http_workers(master)
            return len(now) >= expected and victim not in now and (ready is None or ready())

        # uvicorn always replaces a worker; a short grace must not turn a slow start into a
        # service restart.
        if await self._wait(back, max(self.grace * 4, 20.0)):
            fault.recovery = time.monotonic() - started
            fault.how = "uvicorn started a new worker"
            return fault
        fault.note = "uvicorn did not replace the worker; restarted the service"
        await asyncio.to_thread(self.stack.stop_process, service)
        await self._start(service)
        fault.recovery = time.monotonic() - started
        fault.how = "restarted"
        return fault

    async def _crash(self, kind: str, name: str, at: float, fault: Fault | None = None) -> Fault:
        fault = fault or Fault(kind, name, at)
        proc = self.stack.process(name)
        pid = proc.pid
        started = time.monotonic()
        if pid is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)
            # Dead means reaped: a killed process's first thread shows as a zombie while its
            # other threads are still exiting, and its ports are open until the last one is gone.
            await self._wait(lambda: not proc.alive() or proc.pid != pid, 30.0)
        fault.how = await self._bring_back(name)
        fault.recovery = time.monotonic() - started
        return fault

    async def _restart(self, name: str, at: float) -> Fault:
        fault = Fault(name, name, at)
        started = time.monotonic()
        await asyncio.to_thread(self.stack.stop_process, name)
        await self._start(name)
        fault.recovery = time.monotonic() - started
        fault.how = "fast shutdown and start" if name == "postgres" else "stop and start"
        return fault

    # --- bringing things back ---------------------------------------------------------------

    async def _bring_back(self, name: str) -> str:
        """Wait `grace` seconds for the process to answer (a stack that restarts crashed
        processes); otherwise start it through the stack."""
        proc = self.stack.process(name)
        ready = proc.spec.ready

        def answers() -> bool:
            return proc.alive() and (ready is None or ready())

        if await self._wait(answers, self.grace):
            return "came back by itself"
        await self._start(name)
        return "started by the injector"

    async def _start(self, name: str) -> None:
        deadline = time.monotonic() + self.recovery_deadline
        while True:
            try:
                await asyncio.to_thread(self.stack.start_process, name)
                return
            except StackError as exc:
                # The stack may have restarted it in the meantime (its port is taken again): if
                # it answers now, it is back; otherwise try again until the deadline.
                proc = self.stack.process(name)
                ready = proc.spec.ready
                if proc.alive() and (ready is None or await asyncio.to_thread(ready)):
                    return
                if time.monotonic() > deadline:
                    raise StackError(f"{name} could not be started again: {exc}") from exc
                await asyncio.sleep(0.5)

    async def heal(self) -> list[str]:
        """Start again every process of the stack that is not running (collateral damage)."""
        restarted = []
        for name, proc in list(self.stack.processes.items()):
            if proc.alive():
                continue
            code = proc.exit_code()
            self.log.collateral.append(
                f"{name} was not running (exit code {code}) after fault {len(self.log.faults)}"
                f" ({self.log.faults[-1].kind if self.log.faults else 'none'}); started again"
            )
            self.say(self.log.collateral[-1])
            await self._start(name)
            restarted.append(name)
        return restarted

    async def supervise(self, stop: asyncio.Event, every: float = 1.0) -> None:
        """Until `stop` is set, start again whatever stops running, as a platform's supervisor
        (the runner, compose's restart policy) does: while the checker waits for the platform
        to settle, a process that exits by itself after the last fault (the Celery worker after
        losing Redis, say) comes back, and is recorded as collateral."""
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), every)
            if not stop.is_set():
                await self.heal()

    async def _wait(self, check: Callable[[], bool], timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while True:
            if await asyncio.to_thread(check):
                return True
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(0.1)
