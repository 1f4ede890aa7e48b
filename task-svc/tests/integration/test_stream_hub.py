"""The stream hub against real Redis: one read loop fans out, a slow subscriber is dropped."""

from __future__ import annotations

import asyncio
import uuid

import redis.asyncio as aioredis

from servicekit.jsonutil import dumps
from task_svc.stream.hub import StreamHub
from task_svc.stream.sse import event_stream


async def test_a_client_that_falls_behind_is_dropped_with_a_reason(redis_url: str) -> None:
    prefix = f"t{uuid.uuid4().hex[:10]}"
    stream = f"{prefix}:task-svc"
    hub = StreamHub(redis_url, [stream], queue_size=3, block_ms=200)
    client = aioredis.from_url(redis_url)
    project, org = str(uuid.uuid4()), str(uuid.uuid4())
    frames = event_stream(
        hub,
        client,
        project_id=project,
        org_id=org,
        cursor=None,
        resume=False,
        heartbeat_seconds=30,
    )
    try:
        assert (await anext(frames)).startswith(b"event: ready\n")
        waiting = asyncio.ensure_future(anext(frames))  # history (empty), then live
        await asyncio.sleep(0.3)
        event = dumps({"type": "task.assigned", "data": {"project_id": project, "org_id": org}})
        async with client.pipeline(transaction=True) as pipe:  # all ten in one XREAD
            for _ in range(10):
                pipe.xadd(stream, {"event": event})
            await pipe.execute()
        dropped = await asyncio.wait_for(waiting, 20)
        assert dropped.startswith(b"event: dropped\n"), dropped
        assert b"fell more than 3 events behind" in dropped
        assert hub._subscribers == {}  # released: holds nothing for it any more
    finally:
        await frames.aclose()
        await hub.close()
        await client.aclose()


async def test_many_subscribers_share_one_read_loop(redis_url: str) -> None:
    stream = f"t{uuid.uuid4().hex[:10]}:task-svc"
    hub = StreamHub(redis_url, [stream], queue_size=100, block_ms=200)
    project, org = str(uuid.uuid4()), str(uuid.uuid4())
    subs = [hub.subscribe(project, org) for _ in range(50)]
    client = aioredis.from_url(redis_url)
    try:
        await hub.wait_ready()
        loop_task = hub._task
        event = dumps({"type": "task.assigned", "data": {"project_id": project, "org_id": org}})
        await client.xadd(stream, {"event": event})
        for sub in subs:
            item = await asyncio.wait_for(sub.queue.get(), 20)
            assert item[2] == b"event: task.assigned\n"
        assert hub._task is loop_task  # one loop served all fifty
    finally:
        await hub.close()
        await client.aclose()
