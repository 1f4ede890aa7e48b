"""Tokens for people, signed with the local stack's (or the tests') private key: dev tooling.

Services never mint user tokens; they only verify them (`servicekit.auth`).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable
from typing import Any

from servicekit.auth.service_tokens import sign_token


def mint_token(
    private_key_pem: bytes,
    *,
    sub: str,
    roles: Iterable[str],
    org_id: str | uuid.UUID | None = None,
    issuer: str = "blueprint-dev",
    audience: str = "blueprint",
    ttl_seconds: int = 3600,
    kid: str | None = None,
    extra: dict[str, Any] | None = None,
) -> str:
    """A signed token for `sub` with `roles` in `org_id` (dev stack, tests, benchmarks)."""
    now = int(time.time())
    claims: dict[str, Any] = {
        "sub": sub,
        "roles": list(roles),
        "iss": issuer,
        "aud": audience,
        "iat": now,
        "exp": now + ttl_seconds,
    }
    if org_id is not None:
        claims["org_id"] = str(org_id)
    if extra:
        claims.update(extra)
    return sign_token(private_key_pem, claims, kid=kid)
