"""FastAPI dependencies that give a route its caller: one way, an `Annotated` alias.

    CurrentUser       any user of an org (servicekit)
    ServiceCaller     another service, on `/internal/...` routes (servicekit)
    Inspector = Annotated[Principal, Depends(require_roles("inspector"))]   (each service, once)

A route takes `principal: CurrentUser` (or its service's alias) and passes it on to the service
as `principal=`. Every dependency here is flat (the request in, a `Principal` out): one
dependency call per route, cheap enough for the hottest route. A user token on an internal route
and a service token on a user route are refused (403).
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import Depends, Request

from servicekit.auth.principal import Principal
from servicekit.auth.verify import TokenVerifier
from servicekit.context import actor_id_var, org_id_var
from servicekit.errors import Forbidden, Unauthorized


def _bearer(request: Request) -> str:
    header = request.headers.get("authorization")
    if not header:
        raise Unauthorized("send 'Authorization: Bearer <token>'", code="TOKEN_MISSING")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized(
            "the Authorization header must be 'Bearer <token>'", code="TOKEN_MISSING"
        )
    return token.strip()


async def current_principal(request: Request) -> Principal:
    """The verified caller, user or service; its org and id go into the log context."""
    verifier: TokenVerifier = request.app.state.token_verifier
    principal = await verifier.verify(_bearer(request))
    if principal.org_id is not None:
        org_id_var.set(str(principal.org_id))
    actor_id_var.set(principal.sub)
    return principal


def ensure_user(principal: Principal) -> Principal:
    if principal.is_service:
        raise Forbidden("service tokens may only call /internal routes", code="ROLE_REQUIRED")
    return principal


async def authenticate_user(request: Request) -> Principal:
    """Any authenticated user of an org (not a service)."""
    return ensure_user(await current_principal(request))


async def authenticate_service(request: Request) -> Principal:
    """Another service (a service token)."""
    principal = await current_principal(request)
    if not principal.is_service:
        raise Forbidden("internal routes need a service token", code="SERVICE_TOKEN_REQUIRED")
    return principal


def require_roles(*roles: str) -> Callable[[Request], Coroutine[Any, Any, Principal]]:
    """The dependency of a user holding at least one of `roles` (admin always passes)."""
    allowed = frozenset(roles) | {"admin"}

    async def dependency(request: Request) -> Principal:
        principal = await authenticate_user(request)
        if not principal.has_any(allowed):
            raise Forbidden(
                f"this needs one of the roles {sorted(allowed)}; the token has "
                f"{sorted(principal.roles) or 'none'}",
                code="ROLE_REQUIRED",
            )
        return principal

    # Read by the OpenAPI document (`x-roles`), so the role matrix is derived from the routes.
    dependency.roles = allowed  # type: ignore[attr-defined]
    return dependency


CurrentUser = Annotated[Principal, Depends(authenticate_user)]
ServiceCaller = Annotated[Principal, Depends(authenticate_service)]


__all__ = [
    "CurrentUser",
    "ServiceCaller",
    "authenticate_service",
    "authenticate_user",
    "current_principal",
    "ensure_user",
    "require_roles",
]
