"""`/healthz` (the process is alive) and `/readyz` (its database and Redis answer)."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from servicekit.errors import problem_response
from servicekit.jsonutil import FastJSONResponse

router = APIRouter(include_in_schema=False)


@router.get("/healthz")
async def healthz(request: Request) -> Response:
    return FastJSONResponse({"status": "ok", "service": request.app.state.settings.service_name})


async def _check(coro: Any, limit: float) -> str:
    try:
        await asyncio.wait_for(coro, limit)
    except Exception as exc:  # any failure means "not ready", with its reason
        return f"failed: {type(exc).__name__}: {exc}"[:300] or "failed"
    return "ok"


@router.get("/readyz")
async def readyz(request: Request) -> Response:
    state = request.app.state
    timeout = state.settings.readiness_timeout_seconds
    db_check, redis_check = await asyncio.gather(
        _check(state.db.ping(), timeout), _check(state.redis.ping(), timeout)
    )
    checks = {"database": db_check, "redis": redis_check}
    service = state.settings.service_name
    if all(v == "ok" for v in checks.values()):
        return FastJSONResponse({"status": "ready", "service": service, "checks": checks})
    failing = ", ".join(k for k, v in checks.items() if v != "ok")
    return problem_response(
        status=503,
        code="NOT_READY",
        title="Service not ready",
        detail=f"{service} cannot reach: {failing}",
        checks=checks,
        service=service,
    )
