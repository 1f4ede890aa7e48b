"""Verification of bearer JWTs (RS256): keys from a PEM file or a JWKS URL, and the claims.

Tokens are validated against a PEM public key file and/or a JWKS URL: signature, `exp`, `iss`
and `aud` are checked, and only RS256 is accepted (so `alg: none` and HMAC tricks fail). Claims:
`sub` (user id), `org_id`, `roles`. A token with the role `service` is another service calling
an `/internal/...` route.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import OrderedDict
from pathlib import Path
from typing import Any

import httpx
import jwt
from jwt import PyJWK

from servicekit.auth.principal import SERVICE_ROLE, Principal
from servicekit.errors import Unauthorized
from servicekit.settings import BaseServiceSettings

ALGORITHMS = ["RS256"]
VERIFIED_TTL = 60.0  # seconds a verified token is trusted without checking its signature again
VERIFIED_MAX = 4096


class TokenVerifier:
    """Validates bearer tokens; keys come from a PEM file and/or a JWKS URL (cached)."""

    def __init__(
        self,
        *,
        issuer: str,
        audience: str,
        public_key_pem: bytes | None = None,
        jwks_url: str | None = None,
        leeway: int = 30,
        jwks_ttl: float = 300.0,
    ) -> None:
        self.issuer = issuer
        self.audience = audience
        self.leeway = leeway
        self.jwks_url = jwks_url
        self.jwks_ttl = jwks_ttl
        self._static_key: Any = None
        if public_key_pem:
            self._static_key = PyJWK.from_dict(pem_to_jwk(public_key_pem)).key
        self._jwks: dict[str, Any] = {}
        self._jwks_fetched_at = 0.0
        self._jwks_lock = asyncio.Lock()
        # Tokens already verified, until they expire (at most a minute): a client sends the same
        # token with every request, and an RSA verification costs ~0.1 ms of CPU each time.
        self._verified: OrderedDict[str, tuple[float, Principal]] = OrderedDict()

    @classmethod
    def from_settings(cls, settings: BaseServiceSettings) -> TokenVerifier:
        pem = None
        if settings.jwt_public_key_file:
            pem = Path(settings.jwt_public_key_file).read_bytes()
        return cls(
            issuer=settings.jwt_issuer,
            audience=settings.jwt_audience,
            public_key_pem=pem,
            jwks_url=settings.jwt_jwks_url,
            leeway=settings.jwt_leeway_seconds,
        )

    async def _jwks_key(self, kid: str | None) -> Any:
        if not self.jwks_url:
            return None
        stale = time.monotonic() - self._jwks_fetched_at > self.jwks_ttl
        if stale or (kid and kid not in self._jwks):
            async with self._jwks_lock:
                if stale or (kid and kid not in self._jwks):
                    await self._refresh_jwks()
        if kid:
            return self._jwks.get(kid)
        return next(iter(self._jwks.values()), None)

    async def _refresh_jwks(self) -> None:
        assert self.jwks_url
        try:
            async with httpx.AsyncClient(timeout=5.0) as client:
                resp = await client.get(self.jwks_url)
                resp.raise_for_status()
                data = resp.json()
        except (httpx.HTTPError, ValueError) as exc:
            if not self._jwks:
                raise Unauthorized(
                    "token keys could not be fetched from the JWKS URL", code="JWKS_UNAVAILABLE"
                ) from exc
            return
        keys = {}
        for raw in data.get("keys", []):
            if raw.get("kty") != "RSA":
                continue
            keys[raw.get("kid") or ""] = PyJWK.from_dict(raw).key
        self._jwks = keys
        self._jwks_fetched_at = time.monotonic()

    async def verify(self, token: str) -> Principal:
        now = time.time()
        cached = self._verified.get(token)
        if cached is not None:
            if now < cached[0]:
                return cached[1]
            del self._verified[token]
        principal = await self._verify(token)
        expires = min(float(principal.claims.get("exp", now)) + self.leeway, now + VERIFIED_TTL)
        self._verified[token] = (expires, principal)
        if len(self._verified) > VERIFIED_MAX:
            self._verified.popitem(last=False)
        return principal

    async def _verify(self, token: str) -> Principal:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise Unauthorized(
                "the bearer token is not a well-formed JWT", code="TOKEN_INVALID"
            ) from exc
        alg = header.get("alg")
        if alg not in ALGORITHMS:
            raise Unauthorized(
                f"token algorithm {alg!r} is not accepted; tokens must be signed with RS256",
                code="TOKEN_INVALID",
            )
        key = await self._jwks_key(header.get("kid")) if self.jwks_url else None
        if key is None:
            key = self._static_key
        if key is None:
            raise Unauthorized("no key is known that could verify this token", code="TOKEN_INVALID")
        try:
            claims = jwt.decode(
                token,
                key=key,
                algorithms=ALGORITHMS,
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.leeway,
                options={"require": ["exp", "iss", "aud", "sub"]},
            )
        except jwt.ExpiredSignatureError as exc:
            raise Unauthorized("the bearer token has expired", code="TOKEN_EXPIRED") from exc
        except jwt.InvalidAudienceError as exc:
            raise Unauthorized(
                f"the token's audience is wrong; expected {self.audience!r}", code="TOKEN_INVALID"
            ) from exc
        except jwt.InvalidIssuerError as exc:
            raise Unauthorized(
                f"the token's issuer is wrong; expected {self.issuer!r}", code="TOKEN_INVALID"
            ) from exc
        except jwt.InvalidSignatureError as exc:
            raise Unauthorized(
                "the token's signature does not verify", code="TOKEN_INVALID"
            ) from exc
        except jwt.MissingRequiredClaimError as exc:
            raise Unauthorized(
                f"the token lacks the claim {exc.claim!r}", code="TOKEN_INVALID"
            ) from exc
        except jwt.PyJWTError as exc:
            raise Unauthorized(f"the bearer token is invalid: {exc}", code="TOKEN_INVALID") from exc
        return principal_from_claims(claims)


def principal_from_claims(claims: dict[str, Any]) -> Principal:
    roles_claim = claims.get("roles", [])
    if isinstance(roles_claim, str):
        roles_claim = [r for r in roles_claim.replace(",", " ").split() if r]
    if not isinstance(roles_claim, list) or not all(isinstance(r, str) for r in roles_claim):
        raise Unauthorized("claim 'roles' must be a list of role names", code="TOKEN_INVALID")
    roles = frozenset(roles_claim)
    sub = str(claims["sub"])
    org_raw = claims.get("org_id")
    org_id: uuid.UUID | None = None
    if org_raw is not None:
        try:
            org_id = uuid.UUID(str(org_raw))
        except ValueError as exc:
            raise Unauthorized("claim 'org_id' must be a UUID", code="TOKEN_INVALID") from exc
    if SERVICE_ROLE not in roles:
        if org_id is None:
            raise Unauthorized("the token lacks the claim 'org_id'", code="TOKEN_INVALID")
        try:
            uuid.UUID(sub)
        except ValueError as exc:
            raise Unauthorized(
                "claim 'sub' must be a user id (UUID)", code="TOKEN_INVALID"
            ) from exc
    return Principal(sub=sub, org_id=org_id, roles=roles, claims=claims)


def pem_to_jwk(pem: bytes) -> dict[str, Any]:
    """The JWK (as a JWKS lists it) of an RSA key in PEM."""
    from jwt.algorithms import RSAAlgorithm

    key = RSAAlgorithm(RSAAlgorithm.SHA256).prepare_key(pem)
    jwk: dict[str, Any] = RSAAlgorithm.to_jwk(key, as_dict=True)
    return jwk
