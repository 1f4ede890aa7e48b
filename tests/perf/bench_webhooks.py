"""Webhook delivery benchmark: deliveries/s, event-committed to delivered latency, a hanging
endpoint's effect on the others, and the Celery worker's memory.

    uv run python tests/perf/bench_webhooks.py [--backlog 3000] [--rate 300] [--seconds 10]
        [--rounds 3] [--batch-size N] [--in-flight N] [--warmup 2] [--py-spy PREFIX]

Starts its own PostgreSQL and Redis (benchkit), notify-svc's Celery worker (default settings:
32 threads) and its events process (the dispatcher), and local receivers answering 200, each
in a process of its own. Events are written as the consumer writes them (`fan_out` in a
committed transaction). Prints, per
phase, the events sent, the deliveries received and the load average:
- throughput: deliveries/s draining a backlog of `--backlog` events;
- latency: from each event's commit to its arrival at the receiver, p50/p99, at `--rate`
  events/s; then the same with a second endpoint that hangs until the attempt timeout (2 s
  here) subscribed to every event; the two phases alternate for `--rounds` rounds, and the
  ratio of the healthy endpoint's median p99 with it to without it is printed;
- the worker's resident memory after the run.
Every phase starts settled and warm: a warm-up (a few deliveries, or `--warmup` seconds at the
phase's rate, hanging endpoint included) is delivered first and not counted, then the run waits
until the measured endpoints have no due, failed or delivering row and no Celery message naming
them is queued or running (a task's follow-on loop ends before its message is acknowledged), so
no phase measures the previous one's drain.
The raw baseline, measured in the same run against the same receiver: signed-size POSTs from a
plain async HTTP client in a process of its own, as many at once as the pipeline may have in
flight to one endpoint; throughput is printed as a ratio to it.
Goals: >= 500 deliveries/s; p50 < 100 ms and p99 < 250 ms at 300 events/s; the hanging
endpoint costs the healthy one < 10 % at p99. Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis
from benchkit import Platform, percentile, platform
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

import notify_svc
from contracts.envelope import CloudEvent
from contracts.webhooks import WebhookTestV1
from notify_svc.celery_app import QUEUE
from notify_svc.events.handlers import fan_out
from notify_svc.receiver import Received
from notify_svc.settings import Settings
from notify_svc.webhooks import service
from servicekit.db import make_engine

ORG = uuid.UUID("00000000-0000-4000-8000-0000000000b1")


def event() -> CloudEvent[Any]:
    now_dt = datetime.now(UTC)
    data = WebhookTestV1(endpoint_id=uuid.uuid4(), org_id=ORG, sent_at=now_dt)
    return CloudEvent[WebhookTestV1](
        id=str(uuid.uuid4()), source="bench", type="webhook.test", time=now_dt,
        subject=str(uuid.uuid4()), data=data,
    )  # fmt: skip


def start(p: Platform, args: list[str], name: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
    log = open(p.workdir / f"{name}.log", "ab")  # noqa: SIM115 - the child keeps it open
    proc = subprocess.Popen([sys.executable, *args], env=env, stdout=log, stderr=subprocess.STDOUT)
    log.close()
    return proc


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


# A receiver in a process of its own: the bench process publishes hundreds of events per second,
# and a receiver sharing its interpreter would stamp arrivals late whenever the publisher holds
# the GIL (more so the more endpoints an event is written for). It prints one line per request:
# "<webhook-id> <arrival time>"; `hang` seconds before answering (then 200).
RECEIVER = """
import sys, threading, time
from notify_svc.receiver import Receiver
hang = float(sys.argv[1])
lock = threading.Lock()
def answer(request):
    with lock:  # one whole line per request, whichever threads answer at once
        sys.stdout.write(f"{request.webhook_id} {request.at!r}\\n")
        sys.stdout.flush()
    if hang:
        time.sleep(hang)
    return 200, {}, b"ok"
receiver = Receiver(answer).start()
print(receiver.port, flush=True)
sys.stdin.read()
"""


class RemoteReceiver:
    """A webhook receiver in a child process; `requests()` as the in-process `Receiver`'s."""

    def __init__(self, hang: float = 0.0) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", RECEIVER, str(hang)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert self.proc.stdout is not None
        self.port = int(self.proc.stdout.readline())
        self.received: list[Received] = []
        self._lock = threading.Lock()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            webhook_id, at = line.split()
            request = Received("/hook", {"webhook-id": webhook_id}, b"", float(at))
            with self._lock:
                self.received.append(request)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def requests(self) -> list[Received]:
        with self._lock:
            return list(self.received)

    def __enter__(self) -> RemoteReceiver:
        return self

    def __exit__(self, *_: object) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.terminate()
        self.proc.wait(10)


OPEN_ROWS_SQL = text(
    "SELECT count(*) FROM webhook_delivery "
    "WHERE status IN ('pending', 'failed', 'delivering') AND endpoint_id = ANY(:endpoints)"
)


class Bench:
    def __init__(self, p: Platform, settings: Settings) -> None:
        self.engine = make_engine(p.url, schema="notify", application_name="bench", pool_size=8)
        self.redis = aioredis.from_url(p.redis_url)
        self.settings = settings
        self.committed: dict[str, float] = {}
        self.endpoints: dict[str, str] = {}  # url -> endpoint id
        self.pids: dict[str, int] = {}  # processes to profile, by name
        self.workdir = p.workdir

    async def subscribe(self, url: str) -> None:
        async with AsyncSession(self.engine) as s, s.begin():
            endpoint, _secret = await service.create_endpoint(
                s, settings=self.settings, org_id=ORG, url=url, description="bench",
                event_types=["webhook.test"], rate_limit_per_second=None, ordering="none",
            )  # fmt: skip
            self.endpoints[url] = str(endpoint.id)

    async def set_active(self, url: str, active: bool) -> None:
        """(De)activate the endpoint of `url`: an inactive one gets no new deliveries and its
        open ones are not dispatched."""
        async with self.engine.begin() as conn:
            await conn.execute(
                text("UPDATE webhook_endpoint SET active = :active WHERE id = :id"),
                {"active": active, "id": uuid.UUID(self.endpoints[url])},
            )

    async def publish(self, count: int) -> None:
        async with AsyncSession(self.engine) as s, s.begin():
            events = [event() for _ in range(count)]
            for e in events:
                await fan_out(s, e)
        now = time.time()
        for e in events:
            self.committed[e.id] = now

    async def at_rate(self, rate: int, seconds: float) -> set[str]:
        """Publish `rate` events/s for `seconds`; their ids."""
        before = set(self.committed)
        tick, started = 0.05, time.monotonic()
        per_tick = max(1, round(rate * tick))
        while time.monotonic() - started < seconds:
            t0 = time.monotonic()
            await self.publish(per_tick)
            await asyncio.sleep(max(0.0, tick - (time.monotonic() - t0)))
        return set(self.committed) - before

    async def busy(self, urls: list[str]) -> tuple[int, int]:
        """Open delivery rows of these endpoints, and Celery messages naming them that are
        queued or unacknowledged (running, or prefetched by the worker)."""
        endpoints = [self.endpoints[u] for u in urls]
        async with AsyncSession(self.engine) as s:
            rows = int(await s.scalar(OPEN_ROWS_SQL, {"endpoints": endpoints}) or 0)
        queued = await self.redis.lrange(QUEUE, 0, -1)
        unacked = [json.loads(v)[0] for v in await self.redis.hvals("unacked")]
        messages = sum(_names(m, endpoints) for m in [*map(json.loads, queued), *unacked])
        return rows, messages

    async def settle(self, urls: list[str], timeout: float = 300.0) -> float:
        """Wait until the endpoints at `urls` have nothing open, queued or running (twice in a
        row, 0.2 s apart); seconds waited."""
        started = time.monotonic()
        quiet = 0
        while quiet < 2:
            if time.monotonic() - started > timeout:
                raise RuntimeError(f"not settled within {timeout:.0f}s: {await self.busy(urls)}")
            quiet = quiet + 1 if await self.busy(urls) == (0, 0) else 0
            await asyncio.sleep(0.2)
        return time.monotonic() - started


def _names(message: dict[str, Any], endpoints: list[str]) -> bool:
    """Whether a kombu message (as Redis holds it) is a task for one of `endpoints`."""
    body = message.get("body", "")
    if message.get("properties", {}).get("body_encoding") == "base64":
        body = base64.b64decode(body).decode()
    args = json.loads(body)[0] if body else []
    return bool(args) and args[0] in endpoints


def profile(pid: int, out: str | None, name: str) -> subprocess.Popen[bytes] | None:
    """py-spy sampling process `pid` into `out`-`name`.txt (collapsed stacks) until SIGINT."""
    if out is None:
        return None
    return subprocess.Popen(
        ["py-spy", "record", "--pid", str(pid), "--rate", "250", "--format", "raw", "--nonblocking",
         "--output", f"{out}-{name}.txt"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip


def cpu_seconds(pids: dict[str, int], workdir: Path) -> dict[str, float]:
    """CPU time (user + system) so far of each named process, and of PostgreSQL's server
    processes together (the postmaster's children: backends, WAL writer, checkpointer)."""
    tick = os.sysconf("SC_CLK_TCK")

    def of(pid: int) -> tuple[int, float]:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return int(fields[1]), (int(fields[11]) + int(fields[12])) / tick

    out = {name: of(pid)[1] for name, pid in pids.items()}
    postmaster = int((workdir / "pg" / "data" / "postmaster.pid").read_text().split()[0])
    out["postgres"] = of(postmaster)[1]
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent, used = of(int(entry.name))
            except (OSError, ValueError, IndexError):
                continue
            if parent == postmaster:
                out["postgres"] += used
    return out


def load() -> str:
    return "load average " + " ".join(f"{x:.2f}" for x in os.getloadavg())


def latencies(bench: Bench, got: list[Received], ids: set[str]) -> list[float]:
    first: dict[str, float] = {}
    for r in got:
        if r.webhook_id in ids and r.webhook_id not in first:
            first[r.webhook_id] = r.at
    return [(first[i] - bench.committed[i]) * 1000 for i in first]


async def wait_all(receiver: RemoteReceiver, ids: set[str], timeout: float) -> float:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ids <= {r.webhook_id for r in receiver.requests()}:
            return time.time()
        await asyncio.sleep(0.05)
    raise RuntimeError(f"not every delivery arrived within {timeout:.0f}s")


RAW = """
import asyncio, sys, time, httpx
async def main(url, count, in_flight):
    body = b"x" * 600
    async with httpx.AsyncClient() as client:
        gate = asyncio.Semaphore(in_flight)
        async def one(i):
            async with gate:
                await client.post(url, content=body, headers={"webhook-id": f"raw-{i}"})
        started = time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(count)))
        print(count / (time.perf_counter() - started))
asyncio.run(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3])))
"""


def raw_rate(url: str, count: int, in_flight: int) -> float:
    """POSTs/s a plain client reaches against `url` (the baseline of the throughput figure)."""
    out = subprocess.run(
        [sys.executable, "-c", RAW, url, str(count), str(in_flight)],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    return float(out.stdout.strip())


async def throughput(bench: Bench, args: argparse.Namespace, good: RemoteReceiver) -> None:
    """Drain a backlog of `--backlog` events; deliveries/s, and the raw baseline."""
    await bench.publish(100)  # warm-up: connections opened, code paths run
    await bench.settle([good.url])
    before = set(bench.committed)
    profilers = [profile(pid, args.py_spy, name) for name, pid in bench.pids.items()]
    cpu_before = cpu_seconds(bench.pids, bench.workdir)
    for _ in range(args.backlog // 100):
        await bench.publish(100)
    ids = set(bench.committed) - before
    await wait_all(good, ids, 600)
    await bench.settle([good.url])
    cpu = cpu_seconds(bench.pids, bench.workdir)
    for proc in profilers:
        if proc is not None:
            proc.send_signal(signal.SIGINT)
            proc.wait(60)
    times = sorted(r.at for r in good.requests() if r.webhook_id in ids)
    rate = len(times) / max(1e-6, times[-1] - times[0])
    during = load()
    raw = await asyncio.to_thread(
        raw_rate, good.url, args.backlog, bench.settings.webhook_max_in_flight_per_endpoint
    )
    print(
        f"throughput (batch size {bench.settings.webhook_batch_size}, in flight "
        f"{bench.settings.webhook_max_in_flight_per_endpoint}): {len(ids)} events sent, "
        f"{len(times)} deliveries received, drained at "
        f"{rate:.0f} deliveries/s ({during}); raw POSTs to the same receiver {raw:.0f}/s "
        f"({load()}); ratio {rate / raw:.2f}",
        flush=True,
    )
    per = {k: (cpu[k] - cpu_before[k]) * 1000 / len(ids) for k in cpu}
    print(
        "  CPU per delivery (ms): "
        + ", ".join(f"{k} {v:.2f}" for k, v in per.items())
        + f"; together {sum(per.values()):.2f} (2 cores: at most "
        f"{2000 / max(1e-6, sum(per.values())):.0f}/s without the receiver and the load)",
        flush=True,
    )


async def latency(
    bench: Bench, args: argparse.Namespace, good: RemoteReceiver, label: str, watched: list[str]
) -> float:
    """Warm up at `--rate`, settle the watched endpoints, then measure at `--rate`; the p99."""
    await bench.at_rate(args.rate, args.warmup)
    waited = await bench.settle(watched)
    ids = await bench.at_rate(args.rate, args.seconds)
    await wait_all(good, ids, 600)
    lat = latencies(bench, good.requests(), ids)
    print(
        f"latency at {args.rate} events/s, {label} (settled in {waited:.1f}s): "
        f"{len(ids)} events sent, {len(lat)} deliveries received, "
        f"p50 {percentile(lat, 0.5):.0f} ms, p99 {percentile(lat, 0.99):.0f} ms ({load()})",
        flush=True,
    )
    return percentile(lat, 0.99)


async def run(
    p: Platform,
    args: argparse.Namespace,
    good: RemoteReceiver,
    hang: RemoteReceiver,
    pids: dict[str, int],
) -> None:
    settings = Settings(
        webhook_allowed_networks=["127.0.0.0/8"],
        **({"webhook_max_in_flight_per_endpoint": args.in_flight} if args.in_flight else {}),
        **({"webhook_batch_size": args.batch_size} if args.batch_size else {}),
    )
    bench = Bench(p, settings)
    bench.pids = pids
    await bench.subscribe(good.url)
    await throughput(bench, args, good)
    # One phase's p99 (about 30 samples above it) moves by tens of percent between phases, so
    # the two sides alternate for `--rounds` rounds, the hanging endpoint deactivated in between
    # (its rows are not dispatched then), and the ratio is of the medians.
    alone: list[float] = []
    hanging: list[float] = []
    for round_ in range(args.rounds):
        alone.append(await latency(bench, args, good, "one healthy endpoint", [good.url]))
        if round_ == 0:
            await bench.subscribe(hang.url)
        else:
            await bench.set_active(hang.url, True)
        # The hanging endpoint's own rows never settle (they wait out its timeouts and
        # retries): the healthy endpoint's do.
        hanging.append(await latency(bench, args, good, "plus one hanging endpoint", [good.url]))
        await bench.set_active(hang.url, False)
    print(
        f"hanging endpoint: the healthy endpoint's p99 with it / without it "
        f"{statistics.median(hanging) / max(1e-6, statistics.median(alone)):.2f} "
        f"(medians of {args.rounds} alternating rounds; goal <= 1.10)"
    )
    await bench.redis.aclose()  # type: ignore[attr-defined]
    await bench.engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--backlog", type=int, default=3000)
    parser.add_argument("--rate", type=int, default=300)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument(
        "--rounds", type=int, default=3, help="alternating rounds of the two latency phases"
    )
    parser.add_argument(
        "--warmup", type=float, default=2.0, help="seconds at --rate before each latency phase"
    )
    parser.add_argument(
        "--batch-size", type=int, default=None, help="NOTIFY_SVC_WEBHOOK_BATCH_SIZE of the worker"
    )
    parser.add_argument(
        "--in-flight",
        type=int,
        default=None,
        help="NOTIFY_SVC_WEBHOOK_MAX_IN_FLIGHT_PER_ENDPOINT (and the raw baseline's concurrency)",
    )
    parser.add_argument(
        "--py-spy",
        metavar="PREFIX",
        help="record the worker and the events process with py-spy during the throughput "
        "phase into PREFIX-celery.txt and PREFIX-events.txt (collapsed stacks)",
    )
    args = parser.parse_args()

    with (
        platform(notify_svc, name="webhooks", redis_appendonly=True) as p,
        RemoteReceiver() as good,
        RemoteReceiver(hang=3.0) as hang,
    ):
        env = p.service_env(
            WEBHOOK_ALLOWED_NETWORKS='["127.0.0.0/8"]', WEBHOOK_TIMEOUT_SECONDS="2",
            LOG_LEVEL="WARNING",
            **({"WEBHOOK_BATCH_SIZE": str(args.batch_size)} if args.batch_size else {}),
            **({"WEBHOOK_MAX_IN_FLIGHT_PER_ENDPOINT": str(args.in_flight)}
               if args.in_flight else {}),
        )  # fmt: skip
        worker = start(
            p, ["-m", "celery", "-A", "notify_svc.celery_app", "worker", "--loglevel",
                "WARNING", "--without-gossip", "--without-mingle"], "celery", env,
        )  # fmt: skip
        events = start(p, ["-m", "notify_svc.worker"], "events", env)
        try:
            time.sleep(3.0)
            pids = {"celery": worker.pid, "events": events.pid}
            asyncio.run(run(p, args, good, hang, pids))
            print(f"celery worker resident memory after the run: {rss_mib(worker.pid):.0f} MiB")
        finally:
            for proc in (events, worker):
                proc.terminate()
                try:
                    proc.wait(20)
                except subprocess.TimeoutExpired:
                    proc.kill()


if __name__ == "__main__":
    main()
