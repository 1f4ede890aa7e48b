"""The client of template-svc's internal read of a template version.

A project is started from a version fetched once, over HTTP with a service token; the project
keeps a frozen snapshot, so it never needs template-svc again. Calls time out, transient
failures (connection errors, timeouts, 5xx) are retried a few times with exponential backoff,
and what still fails becomes a clear problem: 503 when template-svc cannot be reached, 502 when
it answers with something unexpected.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from typing import Any

import httpx

from servicekit.errors import UpstreamError, UpstreamUnavailable

RETRYABLE_STATUS = frozenset({500, 502, 503, 504})


class TemplateNotFound(Exception):
    """template-svc answered 404: no such template or version in this org."""


class TemplatesClient:
    def __init__(
        self,
        base_url: str,
        *,
        token: Callable[[], str],
        transport: httpx.AsyncBaseTransport | None = None,
        timeout_seconds: float = 5.0,
        attempts: int = 3,
        backoff_seconds: float = 0.2,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._token = token
        self.attempts = max(1, attempts)
        self.backoff_seconds = backoff_seconds
        self._http = httpx.AsyncClient(
            base_url=self.base_url,
            transport=transport,
            timeout=httpx.Timeout(timeout_seconds),
            follow_redirects=False,
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def get_version(
        self, *, org_id: uuid.UUID, template_id: uuid.UUID, version: int | None
    ) -> dict[str, Any]:
        """The version's JSON (`version=None`: the latest published one).

        Raises TemplateNotFound on 404, UpstreamUnavailable / UpstreamError otherwise.
        """
        which = "latest" if version is None else str(version)
        path = f"/internal/templates/{template_id}/versions/{which}"
        last_problem = ""
        for attempt in range(1, self.attempts + 1):
            try:
                resp = await self._http.get(
                    path,
                    params={"org_id": str(org_id)},
                    headers={"Authorization": f"Bearer {self._token()}"},
                )
            except httpx.TransportError as exc:  # connect refused, timeouts, protocol errors
                last_problem = f"{type(exc).__name__}: {exc}".rstrip(": ")
            else:
                if resp.status_code == 404:
                    raise TemplateNotFound(which)
                if resp.status_code == 200:
                    return _parse(resp)
                if resp.status_code not in RETRYABLE_STATUS:
                    raise UpstreamError(
                        f"template-svc answered {resp.status_code} to the read of template "
                        f"{template_id} version {which}",
                        code="TEMPLATE_SVC_ERROR",
                        upstream_status=resp.status_code,
                    )
                last_problem = f"HTTP {resp.status_code}"
            if attempt < self.attempts:
                await asyncio.sleep(self.backoff_seconds * 2 ** (attempt - 1))
        raise UpstreamUnavailable(
            f"template-svc could not answer the read of template {template_id} version {which} "
            f"after {self.attempts} attempts (last: {last_problem}); try again later",
            code="TEMPLATE_SVC_UNAVAILABLE",
            headers={"Retry-After": "5"},
        )


def _parse(resp: httpx.Response) -> dict[str, Any]:
    try:
        body = resp.json()
    except ValueError:
        body = None
    required = ("template_id", "version", "status", "nodes", "edges")
    if not isinstance(body, dict) or any(k not in body for k in required):
        raise UpstreamError(
            "template-svc answered a template version read with an unexpected body",
            code="TEMPLATE_SVC_ERROR",
        )
    return body
