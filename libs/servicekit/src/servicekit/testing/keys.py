"""RSA key pairs for dev tokens and tests."""

from __future__ import annotations

from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa


def generate_rsa_pair() -> tuple[bytes, bytes]:
    """(private PEM, public PEM)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private, public


def ensure_key_pair(directory: Path) -> tuple[Path, Path]:
    """Create `private.pem` and `public.pem` in `directory` unless they exist."""
    directory.mkdir(parents=True, exist_ok=True)
    private_file, public_file = directory / "private.pem", directory / "public.pem"
    if not (private_file.exists() and public_file.exists()):
        private, public = generate_rsa_pair()
        private_file.write_bytes(private)
        private_file.chmod(0o600)
        public_file.write_bytes(public)
    return private_file, public_file
