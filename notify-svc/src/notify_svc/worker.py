"""`python -m notify_svc.worker`: notify-svc's outbox relay, event consumer and the delivery
dispatcher (new deliveries to Celery right after their commit), no HTTP API.

Run it when `NOTIFY_SVC_EVENTS_IN_PROCESS=false` takes them out of the API processes.
"""

from __future__ import annotations

import asyncio

from notify_svc.delivery.dispatcher import Dispatcher
from notify_svc.main import create_app
from notify_svc.settings import Settings
from servicekit.events.runtime import serve_worker


async def serve() -> None:
    settings = Settings(events_in_process=False)
    dispatcher = Dispatcher(settings)
    task = asyncio.create_task(dispatcher.run(), name="delivery-dispatcher")
    try:
        await serve_worker(create_app(settings))
    finally:
        dispatcher.stop()
        await task


def main() -> None:
    asyncio.run(serve())


if __name__ == "__main__":
    main()
