"""One HTTP attempt: a signed POST to the address that passed the SSRF check.

The connection goes to the checked IP address; the URL's host travels in `Host` (and as the TLS
server name), so a second DNS answer cannot redirect the request. Redirects are not followed.
At most 1 KiB of the answer is read and kept.

Requests go straight to the process's connection pool (an httpx transport), not through an
`httpx.AsyncClient`: a client's layers — cookie jar, auth, redirects, event hooks, default
headers — are all things an attempt must not use (a subscriber's cookie is not sent back, an
answer is not decompressed), and they cost about a tenth of a delivering worker's CPU.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import httpx

from notify_svc.webhooks.ssrf import Target

USER_AGENT = "Blueprint-Webhooks/1.0 (+https://github.com/blueprint; Standard Webhooks)"
EXCERPT_BYTES = 1024


@dataclass(frozen=True)
class Result:
    status_code: int | None
    duration_ms: int
    excerpt: str | None
    error: str | None
    retry_after: str | None = None


def pool() -> httpx.AsyncHTTPTransport:
    """The process's kept-alive connections for attempts."""
    return httpx.AsyncHTTPTransport(
        limits=httpx.Limits(max_connections=200, max_keepalive_connections=50)
    )


async def post(
    transport: httpx.AsyncBaseTransport,
    target: Target,
    *,
    body: bytes,
    headers: dict[str, str],
    timeout_seconds: float,
) -> Result:
    started = time.perf_counter()
    request_headers = {
        **headers,
        "content-type": "application/json",
        "user-agent": USER_AGENT,
        "host": target.host_header,
    }
    extensions: dict[str, object] = {"timeout": httpx.Timeout(timeout_seconds).as_dict()}
    if target.scheme == "https":
        extensions["sni_hostname"] = target.host
    try:
        request = httpx.Request(
            "POST", target.connect_url(), content=body, headers=request_headers,
            extensions=extensions,
        )  # fmt: skip
        response = await transport.handle_async_request(request)
        try:
            excerpt = b""
            async for chunk in response.aiter_raw():
                excerpt += chunk
                if len(excerpt) >= EXCERPT_BYTES:
                    break
        finally:
            await response.aclose()
    except httpx.TimeoutException:
        return Result(None, _ms(started), None, f"timed out after {timeout_seconds:g} s")
    except httpx.HTTPError as exc:
        return Result(None, _ms(started), None, f"{type(exc).__name__}: {exc}"[:500])
    text = excerpt[:EXCERPT_BYTES].decode("utf-8", errors="replace")
    error = None
    if 300 <= response.status_code < 400:
        error = f"redirect to {response.headers.get('location', '?')} not followed"
    return Result(
        response.status_code,
        _ms(started),
        text,
        error,
        response.headers.get("retry-after"),
    )


def _ms(started: float) -> int:
    return int((time.perf_counter() - started) * 1000)
