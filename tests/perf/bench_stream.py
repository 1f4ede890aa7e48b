"""The live stream's fan-out: N SSE clients on one project while events arrive at R per second.

    uv run python tests/perf/bench_stream.py [--clients 500] [--rate 100] [--seconds 20]
                                             [--client-procs 2] [--no-baseline]

task-svc runs under uvicorn (one process) against a private PostgreSQL and Redis. The clients are
raw HTTP/1.1 connections spread over `--client-procs` processes of their own, each an asyncio
protocol that scans the bytes it receives for the events' send times (no per-line parsing), so
that the figure is the service's and not the benchmark's: the CPU each side used is printed
with the latencies. The producer (this process) writes envelopes of the relay's shape straight
to `events:task-svc`, each carrying the time it was written, so the figure is what the stream
adds (Redis read, fan-out, SSE write, the client's read), not the transition's own cost.

The raw baseline, measured in the same run with the same clients: a bare fan-out process (one
XREAD loop, each event's SSE frame written to every socket, nothing else) on the same Redis.
The service's latencies are printed as ratios to it, since absolute figures on a shared machine
move with its load (printed too).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import re
import time
import uuid
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, cast

import asyncpg
import redis.asyncio as aioredis
import uvloop
from benchkit import Platform, percentile, platform

import task_svc

SENT = re.compile(rb'"bench_sent_at":\s*([0-9.]+)')
STREAM = "events:task-svc"
TICK = os.sysconf("SC_CLK_TCK")


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / TICK


async def make_project(url: str, org: uuid.UUID) -> uuid.UUID:
    project = uuid.uuid4()
    conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        await conn.execute(
            "INSERT INTO task.projects (id, org_id, name, template_id, template_key, "
            "template_version, template_checksum, snapshot, status, start_at, created_by) "
            "VALUES ($1, $2, 'bench', $3, 'tpl', 1, 'x', '{}'::jsonb, 'active', now(), 'bench')",
            project,
            org,
            uuid.uuid4(),
        )
    finally:
        await conn.close()
    return project


# --- the clients (in processes of their own) ------------------------------------------------


class SseClient(asyncio.Protocol):
    """One stream: sends the request, then notes each event's latency from the bytes received.

    Only whole frames are scanned (the bytes after the last blank line wait for the next read),
    so a send time cut in two by a read boundary is never misread."""

    def __init__(self, request: bytes, latencies: list[float], counts: dict[str, int]) -> None:
        self.request, self.latencies, self.counts = request, latencies, counts
        self.head = b""
        self.tail = b""
        self.started = self.ready = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        cast(asyncio.Transport, transport).write(self.request)

    def data_received(self, data: bytes) -> None:
        now = time.time()
        if not self.started:
            self.head += data
            if b"\r\n\r\n" not in self.head:
                return
            if not self.head.startswith(b"HTTP/1.1 200 "):
                print(f"a client was refused: {self.head[:300]!r}")
                self.counts["refused"] += 1
                self.started = True
                self.ready = True
                return
            self.started = True
            data, self.head = self.head.partition(b"\r\n\r\n")[2], b""
        if not self.ready and b"event: ready" in data:
            self.ready = True
            self.counts["connected"] += 1
        buf = self.tail + data if self.tail else data
        end = buf.rfind(b"\n\n")
        if end < 0:
            self.tail = buf
            return
        self.tail = buf[end + 2 :]
        for sent in SENT.findall(buf, 0, end):
            self.latencies.append(now - float(sent))


async def _clients(port: int, request: bytes, n: int, conn: Connection) -> None:
    loop = asyncio.get_running_loop()
    latencies: list[float] = []
    counts = {"connected": 0, "refused": 0}

    async def connect() -> asyncio.BaseTransport:
        transport, _ = await loop.create_connection(
            lambda: SseClient(request, latencies, counts), "127.0.0.1", port
        )
        return transport

    began = time.monotonic()
    transports = await asyncio.gather(*(connect() for _ in range(n)))
    deadline = time.monotonic() + 60
    while counts["connected"] + counts["refused"] < n and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    conn.send((counts["connected"], time.monotonic() - began))
    await asyncio.to_thread(conn.recv)  # "start": forget what came before the measurement
    latencies.clear()
    await asyncio.to_thread(conn.recv)  # "stop"
    for transport in transports:
        transport.close()
    conn.send(latencies)


def client_process(port: int, request: bytes, n: int, conn: Connection) -> None:
    uvloop.run(_clients(port, request, n, conn))


# --- the raw baseline: a bare fan-out process ------------------------------------------------


async def _raw_server(redis_url: str, conn: Connection) -> None:
    loop = asyncio.get_running_loop()
    clients: set[asyncio.Transport] = set()
    response = (
        b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
    )
    ready = b"event: ready\ndata: {}\n\n"

    class Client(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            self.transport = cast(asyncio.Transport, transport)

        def data_received(self, data: bytes) -> None:
            if self.transport not in clients:
                self.transport.write(response + b"%x\r\n%s\r\n" % (len(ready), ready))
                clients.add(self.transport)

        def connection_lost(self, exc: Exception | None) -> None:
            clients.discard(self.transport)

    server = await loop.create_server(Client, "127.0.0.1", 0)
    conn.send(server.sockets[0].getsockname()[1])
    redis = aioredis.from_url(redis_url)
    last = "$"
    while True:
        reply = await redis.xread({STREAM: last}, count=1000, block=1000)
        for _, entries in reply or []:
            frames = []
            for entry_id, fields in entries:
                last = entry_id.decode()
                raw = fields[b"event"]
                kind = json.loads(raw)["type"].encode()
                frames.append(b"event: %s\nid: %s\ndata: %s\n\n" % (kind, entry_id, raw))
            blob = b"".join(frames)
            chunk = b"%x\r\n%s\r\n" % (len(blob), blob)
            for transport in clients:
                transport.write(chunk)


def raw_server_process(redis_url: str, conn: Connection) -> None:
    uvloop.run(_raw_server(redis_url, conn))


# --- the run ---------------------------------------------------------------------------------


async def produce(
    redis_url: str, project: uuid.UUID, org: uuid.UUID, rate: int, seconds: float
) -> int:
    redis = aioredis.from_url(redis_url)
    sent, start = 0, time.monotonic()
    try:
        while (elapsed := time.monotonic() - start) < seconds:
            due = int(elapsed * rate) + 1
            for _ in range(due - sent):
                data = {
                    "project_id": str(project),
                    "org_id": str(org),
                    "bench_sent_at": time.time(),
                }
                event = {
                    "specversion": "1.0",
                    "id": str(uuid.uuid4()),
                    "source": "task-svc",
                    "type": "task.status_changed",
                    "data": data,
                }
                await redis.xadd(STREAM, {"event": json.dumps(event)})
                sent += 1
            await asyncio.sleep(max(0.0, (sent / rate) - (time.monotonic() - start)))
    finally:
        await redis.aclose()
    return sent


async def measure(
    name: str,
    server_pid: int,
    port: int,
    request: bytes,
    p: Platform,
    project: uuid.UUID,
    org: uuid.UUID,
    args: argparse.Namespace,
) -> dict[str, Any]:
    """One round: the clients connect, events flow for `seconds`, the latencies come back."""
    ctx = mp.get_context("spawn")
    procs, pipes = [], []
    share = [
        args.clients // args.client_procs + (i < args.clients % args.client_procs)
        for i in range(args.client_procs)
    ]
    for n in share:
        mine, theirs = ctx.Pipe()
        proc = ctx.Process(target=client_process, args=(port, request, n, theirs), daemon=True)
        proc.start()
        procs.append(proc)
        pipes.append(mine)
    reports = [await asyncio.to_thread(c.recv) for c in pipes]
    connected = sum(n for n, _ in reports)
    connect_seconds = max(seconds for _, seconds in reports)
    load = os.getloadavg()
    with_clients = rss_mib(server_pid)
    for c in pipes:
        c.send("start")
    cpu = {pid: cpu_seconds(pid) for pid in [server_pid, *(pr.pid for pr in procs)]}
    t0 = time.monotonic()
    sent = await produce(p.redis_url, project, org, args.rate, args.seconds)
    await asyncio.sleep(2.0)
    wall = time.monotonic() - t0
    used = {pid: (cpu_seconds(pid) - before) / wall for pid, before in cpu.items()}
    at_end = rss_mib(server_pid)
    latencies: list[float] = []
    for c in pipes:
        c.send("stop")
    for c in pipes:
        latencies += await asyncio.to_thread(c.recv)
    for proc in procs:
        proc.join(10)
    ms = sorted(v * 1000 for v in latencies)
    result = {
        "name": name,
        "connected": connected,
        "connect_seconds": connect_seconds,
        "sent": sent,
        "deliveries": len(ms),
        "expected": sent * args.clients,
        "p50": percentile(ms, 0.5),
        "p99": percentile(ms, 0.99),
        "max": ms[-1] if ms else float("nan"),
        "server_cpu": used.pop(server_pid),
        "client_cpu": sorted(used.values()),
        "load": load,
        "rss": (with_clients, at_end),
    }
    print(
        f"{name}: {connected} / {args.clients} clients connected in {connect_seconds:.1f} s; "
        f"deliveries {len(ms)} / {sent * args.clients}; event-to-client ms p50 "
        f"{result['p50']:.1f}  p99 {result['p99']:.1f}  max {result['max']:.1f}"
    )
    print(
        f"    CPU (share of one core): server {result['server_cpu']:.2f}, client processes "
        + ", ".join(f"{c:.2f}" for c in result["client_cpu"])
        + f"; load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}"
    )
    if max(result["client_cpu"], default=0) > 0.8:
        print(
            "    (a client process was near a full core: the figure includes the benchmark's "
            "own delay; raise --client-procs)"
        )
    return result


async def run(p: Platform, args: argparse.Namespace) -> None:
    org = uuid.uuid4()
    project = await make_project(p.url, org)
    token = p.token(sub=str(uuid.uuid4()), roles=["viewer"], org_id=org)
    path = f"/api/v1/projects/{project}/stream"
    request = (
        f"GET {path} HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer {token}\r\n"
        "Accept: text/event-stream\r\n\r\n"
    ).encode()
    print(
        f"{args.clients} clients in {args.client_procs} processes, {args.rate} events/s "
        f"for {args.seconds:.0f} s, on {os.cpu_count()} cores"
    )
    raw = None
    if args.baseline:
        mine, theirs = mp.get_context("spawn").Pipe()
        proc = mp.get_context("spawn").Process(
            target=raw_server_process, args=(p.redis_url, theirs), daemon=True
        )
        proc.start()
        port = await asyncio.to_thread(mine.recv)
        raw = await measure("raw fan-out", proc.pid, port, request, p, project, org, args)
        proc.terminate()
        proc.join(10)
    api = p.start_api("task_svc.main:create_app", p.service_env(LOG_LEVEL="WARNING"))
    print(f"task-svc pid {api.pid} (py-spy record -p {api.pid} profiles it during the run)")
    await asyncio.sleep(1.0)
    idle = rss_mib(api.pid)
    svc = await measure("task-svc", api.pid, api.port, request, p, project, org, args)
    print(
        f"    task-svc RSS MiB: idle {idle:.0f}, {args.clients} clients connected "
        f"{svc['rss'][0]:.0f}, after the run {svc['rss'][1]:.0f}"
    )
    print(
        f"task-svc event-to-client ms: p50 {svc['p50']:.1f}  p99 {svc['p99']:.1f}"
        "   (goals: p50 < 50, p99 < 200)"
    )
    if raw is not None:
        print(
            f"task-svc / raw fan-out: p50 {svc['p50'] / raw['p50']:.2f}x  "
            f"p99 {svc['p99'] / raw['p99']:.2f}x   server CPU "
            f"{svc['server_cpu'] / max(raw['server_cpu'], 1e-9):.2f}x"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clients", type=int, default=500)
    parser.add_argument("--rate", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--client-procs", type=int, default=2)
    parser.add_argument(
        "--no-baseline",
        dest="baseline",
        action="store_false",
        help="measure task-svc only, without the raw fan-out round",
    )
    args = parser.parse_args()
    with platform(task_svc, name="stream") as p:
        uvloop.run(run(p, args))


if __name__ == "__main__":
    main()
