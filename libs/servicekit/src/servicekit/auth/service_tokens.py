"""Tokens this service presents to other services' `/internal/...` routes, and the signing of a
token (also used by the dev tooling, `servicekit.devstack.tokens`)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import jwt

from servicekit.auth.principal import SERVICE_ROLE
from servicekit.errors import Unauthorized
from servicekit.settings import BaseServiceSettings


def sign_token(private_key_pem: bytes, claims: dict[str, Any], *, kid: str | None = None) -> str:
    """The RS256 JWT of `claims`."""
    headers = {"kid": kid} if kid else None
    return jwt.encode(claims, private_key_pem, algorithm="RS256", headers=headers)


def service_claims(
    *, service_name: str, issuer: str, audience: str, ttl_seconds: int
) -> dict[str, Any]:
    now = int(time.time())
    return {
        "sub": f"service:{service_name}",
        "roles": [SERVICE_ROLE],
        "iss": issuer,
        "aud": audience,
        "iat": now,
        "exp": now + ttl_seconds,
    }


class ServiceTokenProvider:
    """Gives this service a bearer token for its calls to other services' internal routes."""

    def __init__(self, settings: BaseServiceSettings) -> None:
        self.settings = settings
        self._token: str | None = settings.service_token
        self._expires_at = float("inf") if settings.service_token else 0.0
        self._key: bytes | None = None
        if settings.service_token_private_key_file:
            self._key = Path(settings.service_token_private_key_file).read_bytes()

    def token(self) -> str:
        if self._token and time.time() < self._expires_at - 30:
            return self._token
        if self._key is None:
            raise Unauthorized(
                "this service has no service token configured", code="SERVICE_TOKEN_MISSING"
            )
        ttl = self.settings.service_token_ttl_seconds
        claims = service_claims(
            service_name=self.settings.service_name,
            issuer=self.settings.jwt_issuer,
            audience=self.settings.jwt_audience,
            ttl_seconds=ttl,
        )
        self._token = sign_token(self._key, claims)
        self._expires_at = time.time() + ttl
        return self._token
