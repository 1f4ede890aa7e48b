"""The live stream's fan-out: N SSE clients on one project while events arrive at R per second.

    uv run python tests/perf/bench_stream.py [--clients 500] [--rate 100] [--seconds 20]

task-svc runs under uvicorn (one process) against a private PostgreSQL and Redis; the clients
are raw HTTP/1.1 connections in this process (uvloop), all on one project. The producer writes
envelopes of the relay's shape straight to `events:task-svc`, each carrying the time it was
written, so the figure is what the stream adds (Redis read, fan-out, SSE write, the client's
read), not the transition's own cost: event-to-client p50 / p99, and task-svc's resident
memory idle, with the clients connected, and at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import time
import uuid
from pathlib import Path

import asyncpg
import redis.asyncio as aioredis
import uvloop
from benchkit import Platform, percentile, platform

import task_svc

SENT = re.compile(rb'"bench_sent_at":\s*([0-9.]+)')


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def make_project(url: str, org: uuid.UUID) -> uuid.UUID:
    project = uuid.uuid4()
    conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        await conn.execute(
            "INSERT INTO task.projects (id, org_id, name, template_id, template_key, "
            "template_version, template_checksum, snapshot, status, start_at, created_by) "
            "VALUES ($1, $2, 'bench', $3, 'tpl', 1, 'x', '{}'::jsonb, 'active', now(), 'bench')",
            project, org, uuid.uuid4(),
        )
    finally:
        await conn.close()
    return project


async def client(port: int, path: str, token: str, latencies: list[float],
                 connected: list[int]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(
        f"GET {path} HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer {token}\r\n"
        "Accept: text/event-stream\r\n\r\n".encode()
    )
    await writer.drain()
    status = await reader.readline()
    if b" 200 " not in status:
        print(f"a client was refused: {status!r} {await reader.read(500)!r}")
        writer.close()
        return
    try:
        while line := await reader.readline():
            if line.startswith(b"event: ready"):
                connected[0] += 1
            elif (found := SENT.search(line)) is not None:
                latencies.append(time.time() - float(found.group(1)))
    except (asyncio.CancelledError, ConnectionError):
        pass
    finally:
        writer.close()


async def produce(redis_url: str, project: uuid.UUID, org: uuid.UUID, rate: int,
                  seconds: float) -> int:
    redis = aioredis.from_url(redis_url)
    sent, start = 0, time.monotonic()
    try:
        while (elapsed := time.monotonic() - start) < seconds:
            due = int(elapsed * rate) + 1
            for _ in range(due - sent):
                data = {"project_id": str(project), "org_id": str(org),
                        "bench_sent_at": time.time()}
                event = {"specversion": "1.0", "id": str(uuid.uuid4()), "source": "task-svc",
                         "type": "task.status_changed", "data": data}
                await redis.xadd("events:task-svc", {"event": json.dumps(event)})
                sent += 1
            await asyncio.sleep(max(0.0, (sent / rate) - (time.monotonic() - start)))
    finally:
        await redis.aclose()
    return sent


async def run(p: Platform, args: argparse.Namespace) -> None:
    org = uuid.uuid4()
    project = await make_project(p.url, org)
    api = p.start_api("task_svc.main:create_app", p.service_env(LOG_LEVEL="WARNING"))
    token = p.token(sub=str(uuid.uuid4()), roles=["viewer"], org_id=org)
    await asyncio.sleep(1.0)
    idle = rss_mib(api.pid)
    latencies: list[float] = []
    connected = [0]
    path = f"/api/v1/projects/{project}/stream"
    tasks = [asyncio.create_task(client(api.port, path, token, latencies, connected))
             for _ in range(args.clients)]
    began = time.monotonic()
    while connected[0] < args.clients and time.monotonic() < began + 30:
        await asyncio.sleep(0.2)
    connect_seconds = time.monotonic() - began
    if connected[0] < args.clients:
        for log in p.workdir.glob("api-*.log"):
            for line in log.read_text(errors="replace").splitlines():
                if '"level":"error"' in line:
                    entry = json.loads(line)
                    print(entry["msg"], entry.get("exc", "")[-1500:])
    with_clients = rss_mib(api.pid)
    sent = await produce(p.redis_url, project, org, args.rate, args.seconds)
    await asyncio.sleep(2.0)
    at_end = rss_mib(api.pid)
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    expected = sent * args.clients
    print(f"clients connected: {connected[0]} / {args.clients} in {connect_seconds:.1f} s; "
          f"events sent: {sent} "
          f"({args.rate}/s for {args.seconds:.0f} s); deliveries: {len(latencies)} / {expected}")
    ms = [v * 1000 for v in latencies]
    print(f"event-to-client ms: p50 {percentile(ms, 0.5):.1f}  p99 {percentile(ms, 0.99):.1f}  "
          f"max {max(ms, default=float('nan')):.1f}   (goals: p50 < 50, p99 < 200)")
    print(f"task-svc RSS MiB: idle {idle:.0f}, {args.clients} clients connected "
          f"{with_clients:.0f}, after the run {at_end:.0f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clients", type=int, default=500)
    parser.add_argument("--rate", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args()
    with platform(task_svc, name="stream") as p:
        uvloop.run(run(p, args))


if __name__ == "__main__":
    main()
