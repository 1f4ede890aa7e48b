"""What a delivering process holds: settings, the database, an HTTP connection pool, Redis, the
key box.

Made once per process (lazily, inside the event loop that uses it).
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx
import redis.asyncio as aioredis

from notify_svc.delivery.http import pool
from notify_svc.notifications.tasks_client import TasksClient
from notify_svc.settings import Settings
from notify_svc.webhooks.signing import SecretBox
from notify_svc.webhooks.ssrf import Network, parse_networks
from servicekit.auth.service_tokens import ServiceTokenProvider
from servicekit.db import Database, make_engine


@dataclass
class DeliveryContext:
    settings: Settings
    db: Database
    http: httpx.AsyncBaseTransport  # the connection pool of attempts (delivery.http)
    redis: aioredis.Redis
    box: SecretBox
    allowed: list[Network]
    tasks: TasksClient

    @classmethod
    def create(cls, settings: Settings, *, pool_size: int = 10) -> DeliveryContext:
        engine = make_engine(
            settings.database_url,
            schema=settings.db_schema,
            application_name=f"{settings.service_name}-delivery",
            pool_size=pool_size,
            max_overflow=pool_size,
        )
        return cls(
            settings=settings,
            db=Database(engine),
            http=pool(),
            redis=aioredis.from_url(settings.redis_url, socket_timeout=5),
            box=SecretBox(settings),
            allowed=parse_networks(settings.webhook_allowed_networks),
            tasks=TasksClient(settings, token=ServiceTokenProvider(settings).token),
        )

    async def close(self) -> None:
        await self.http.aclose()
        await self.tasks.aclose()
        await self.redis.aclose()  # type: ignore[attr-defined]
        await self.db.dispose()
