"""The client of task-svc's internal reads: a task's summary and the open tasks due in a window.

Service token, a timeout per call, transient failures (connection errors, timeouts, 5xx) retried
with exponential backoff; what still fails raises `TaskServiceUnavailable`.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

import httpx

from notify_svc.settings import Settings

RETRYABLE_STATUS = frozenset({500, 502, 503, 504})


class TaskServiceUnavailable(Exception):
    """task-svc could not answer (after the retries)."""


class TaskNotFound(Exception):
    """task-svc answered 404: no such task in the org."""


class TasksClient:
    def __init__(self, settings: Settings, *, token: Callable[[], str]) -> None:
        self.attempts = settings.task_client_attempts
        self.backoff = settings.task_client_backoff_seconds
        self._token = token
        self._http = httpx.AsyncClient(
            base_url=settings.task_svc_url.rstrip("/"),
            timeout=httpx.Timeout(settings.task_client_timeout_seconds),
            follow_redirects=False,
            trust_env=False,
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _get(self, path: str, params: dict[str, str]) -> dict[str, Any]:
        last = ""
        for attempt in range(1, self.attempts + 1):
            try:
                resp = await self._http.get(
                    path, params=params, headers={"Authorization": f"Bearer {self._token()}"}
                )
            except httpx.TransportError as exc:
                last = f"{type(exc).__name__}: {exc}".rstrip(": ")
            else:
                if resp.status_code == 404:
                    raise TaskNotFound(path)
                if resp.status_code == 200:
                    body: dict[str, Any] = resp.json()
                    return body
                last = f"HTTP {resp.status_code}"
                if resp.status_code not in RETRYABLE_STATUS:
                    break
            if attempt < self.attempts:
                await asyncio.sleep(self.backoff * 2 ** (attempt - 1))
        raise TaskServiceUnavailable(f"task-svc did not answer GET {path} ({last})")

    async def task(self, *, org_id: uuid.UUID, task_id: uuid.UUID | str) -> dict[str, Any]:
        return await self._get(f"/internal/tasks/{task_id}", {"org_id": str(org_id)})

    async def due(self, *, due_after: datetime, due_before: datetime) -> list[dict[str, Any]]:
        """Every open task due in [due_after, due_before), page after page."""
        items: list[dict[str, Any]] = []
        cursor: str | None = None
        while True:
            params = {"due_after": due_after.isoformat(), "due_before": due_before.isoformat()}
            if cursor:
                params["cursor"] = cursor
            page = await self._get("/internal/tasks/due", params)
            items += page["items"]
            cursor = page.get("next_cursor")
            if not cursor:
                return items
