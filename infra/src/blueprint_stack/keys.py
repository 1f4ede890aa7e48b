"""The stack's dev signing key pair and dev tokens.

Services verify bearer tokens with var/keys/public.pem and sign their own service tokens with
var/keys/private.pem; `python -m blueprint_stack token` signs user tokens with the same key.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterable
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from servicekit.auth import ROLES
from servicekit.devstack.tokens import mint_token

DEV_ORG_ID = uuid.UUID("00000000-0000-4000-8000-000000000001")
DEV_USER_ID = uuid.UUID("00000000-0000-4000-8000-000000000002")
DEV_ISSUER = "blueprint-dev"
DEV_AUDIENCE = "blueprint"


def ensure_key_pair(keys_dir: Path) -> tuple[Path, Path]:
    """(private.pem, public.pem) under `keys_dir`, generated the first time."""
    private, public = keys_dir / "private.pem", keys_dir / "public.pem"
    if private.exists() and public.exists():
        return private, public
    keys_dir.mkdir(parents=True, exist_ok=True)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    _write_atomically(private, private_pem, 0o600)
    _write_atomically(public, public_pem, 0o644)
    return private, public


def _write_atomically(path: Path, data: bytes, mode: int) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.replace(tmp, path)


def parse_roles(raw: str) -> list[str]:
    roles = [r.strip() for r in raw.replace(" ", ",").split(",") if r.strip()]
    if not roles:
        raise ValueError(
            f"give at least one role, e.g. --roles planner,operator (roles: {', '.join(ROLES)})"
        )
    unknown = [r for r in roles if r not in ROLES]
    if unknown:
        raise ValueError(f"unknown role(s) {', '.join(unknown)}; roles are: {', '.join(ROLES)}")
    return roles


def mint_dev_token(
    keys_dir: Path,
    *,
    roles: Iterable[str],
    org_id: uuid.UUID = DEV_ORG_ID,
    user_id: uuid.UUID = DEV_USER_ID,
    ttl_seconds: int = 12 * 3600,
) -> str:
    private, _ = ensure_key_pair(keys_dir)
    return mint_token(
        private.read_bytes(),
        sub=str(user_id),
        roles=list(roles),
        org_id=org_id,
        issuer=DEV_ISSUER,
        audience=DEV_AUDIENCE,
        ttl_seconds=ttl_seconds,
    )
