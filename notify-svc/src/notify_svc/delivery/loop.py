"""An event loop in a thread of its own, shared by the Celery worker's task threads.

Celery tasks are synchronous; the delivery code is async (asyncpg, httpx). Each task thread
hands its coroutine to this loop and waits: the attempts of all threads share one connection
pool and one HTTP client, and a process made by fork gets a loop of its own.

The loop is uvloop's where it is installed (it comes with uvicorn's standard extras): this one
thread runs every attempt of the process, and uvloop runs its sockets, timers and callbacks in C
where the standard loop runs them in Python.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from notify_svc.delivery.context import DeliveryContext
from notify_svc.settings import Settings

T = TypeVar("T")

_lock = threading.Lock()
_state: dict[str, Any] = {}


def _new_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - platforms without uvloop
        return asyncio.new_event_loop()
    loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
    return loop


def _loop() -> asyncio.AbstractEventLoop:
    with _lock:
        if _state.get("pid") != os.getpid():
            loop = _new_loop()
            thread = threading.Thread(target=loop.run_forever, name="delivery-loop", daemon=True)
            thread.start()
            _state.clear()
            _state.update(pid=os.getpid(), loop=loop)
        loop_: asyncio.AbstractEventLoop = _state["loop"]
        return loop_


async def _context() -> DeliveryContext:
    ctx: DeliveryContext | None = _state.get("ctx")
    if ctx is None:
        settings = Settings()
        ctx = DeliveryContext.create(settings, pool_size=min(20, settings.celery_concurrency))
        _state["ctx"] = ctx
    return ctx


def run(work: Callable[[DeliveryContext], Awaitable[T]], timeout: float | None = None) -> T:
    """Run `work(context)` on the shared loop and wait for its result."""

    async def call() -> T:
        return await work(await _context())

    return asyncio.run_coroutine_threadsafe(call(), _loop()).result(timeout)
