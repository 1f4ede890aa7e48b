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


async def test_many_subscribers_share_one_read_loop_and_one_rendering(redis_url: str) -> None:
    """Fifty clients of one project: one read loop reads the event once, and the SSE frames of
    clients at the same position are made once and shared; a client at another position (here:
    one that already had the event from its history) gets its own, right for it."""
    stream = f"t{uuid.uuid4().hex[:10]}:task-svc"
    hub = StreamHub(redis_url, [stream], queue_size=100, block_ms=200)
    project, org = str(uuid.uuid4()), str(uuid.uuid4())
    subs = [hub.subscribe(project, org) for _ in range(50)]
    other_org = hub.subscribe(project, str(uuid.uuid4()))
    client = aioredis.from_url(redis_url)
    try:
        await hub.wait_ready()
        loop_task = hub._task
        event = dumps({"type": "task.assigned", "data": {"project_id": project, "org_id": org}})
        async with client.pipeline(transaction=True) as pipe:  # both in one XREAD
            pipe.xadd(stream, {"event": event})
            pipe.xadd(stream, {"event": event})
            first, second = (e.decode() for e in await pipe.execute())
        rendered = []
        for sub in subs:
            await asyncio.wait_for(sub.wait(30), 20)
            (batch,) = sub.take()
            rendered.append(batch.render_for(("0-0",)))
        frames, at, count = rendered[0]
        assert (
            frames
            == (
                f"event: task.assigned\nid: {first}\ndata: {event.decode()}\n\n"
                f"event: task.assigned\nid: {second}\ndata: {event.decode()}\n\n"
            ).encode()
        )
        assert (at, count) == ((second,), 2)
        assert all(r[0] is frames for r in rendered)  # made once, shared by all fifty
        behind = batch.render_for((first,))  # had the first one from its history
        assert behind == (
            f"event: task.assigned\nid: {second}\ndata: {event.decode()}\n\n".encode(),
            (second,),
            1,
        )
        assert other_org.take() == []  # same project id, another org: nothing
        assert hub._task is loop_task  # one loop served all of them
    finally:
        await hub.close()
        await client.aclose()
