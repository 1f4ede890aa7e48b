"""Signing secrets: made, encrypted at rest, and used to sign as Standard Webhooks says.

A secret is `whsec_<base64 of 32 random bytes>`; the HMAC key is the decoded bytes. The
signature of an attempt is `v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`, and during a
rotation's grace period the header carries one signature per secret, separated by spaces.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Iterable

from cryptography.fernet import Fernet, InvalidToken

from notify_svc.settings import Settings

PREFIX = "whsec_"
# Used only when no key is configured, outside production: a development stack must work with
# no set-up, and its secrets protect nothing.
_DEV_KEY = base64.urlsafe_b64encode(hashlib.sha256(b"blueprint-dev-webhook-secrets").digest())


def new_secret() -> str:
    return PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def secret_key_bytes(secret: str) -> bytes:
    return base64.b64decode(secret.removeprefix(PREFIX))


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    to_sign = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret_key_bytes(secret), to_sign, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def signature_header(
    secrets_in_use: Iterable[str], msg_id: str, timestamp: int, body: bytes
) -> str:
    return " ".join(sign(s, msg_id, timestamp, body) for s in secrets_in_use)


class SecretBox:
    """Encrypts and decrypts signing secrets with the Fernet key of the settings."""

    def __init__(self, settings: Settings) -> None:
        configured = settings.webhook_encryption_key
        if configured is None:
            if settings.environment == "production":
                raise RuntimeError(
                    "NOTIFY_SVC_WEBHOOK_ENCRYPTION_KEY must be set in production "
                    "(a Fernet key: python -c 'from cryptography.fernet import Fernet; "
                    "print(Fernet.generate_key().decode())')"
                )
            key = _DEV_KEY
        else:
            key = configured.get_secret_value().encode()
        self._fernet = Fernet(key)

    def encrypt(self, secret: str) -> str:
        return self._fernet.encrypt(secret.encode()).decode()

    def decrypt(self, token: str) -> str:
        try:
            return self._fernet.decrypt(token.encode()).decode()
        except InvalidToken as exc:
            raise RuntimeError(
                "a webhook secret cannot be decrypted: the encryption key changed"
            ) from exc
