"""One-shot provisioning for the docker-compose stack.

`all` (what the `provision` service runs, safe to run again):
  1. writes a dev RSA key pair into the keys volume, unless one is already there: the services
     verify bearer tokens with the public key and sign their service tokens with the private one;
  2. creates the database, one role per service owning its own schema (servicekit.dbadmin);
  3. migrates each service's schema to head, connected as that service's own role.

`token` prints a dev bearer token signed with that key, for calling the API through the gateway:

    docker-compose run --rm provision python /app/provision.py token --role admin

Configuration comes from the environment (docker-compose.yml sets it):
  PROVISION_ADMIN_DSN   superuser DSN, e.g. postgresql://postgres:postgres@postgres:5432/postgres
  PROVISION_DATABASE    the platform's database (default blueprint)
  KEYS_DIR              where the key pair lives (default /keys)
  SERVICES_DIR          where each service's alembic.ini and migrations/ are (default /app)
  <SVC>_DB_PASSWORD     each service role's password, e.g. TASK_SVC_DB_PASSWORD
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlsplit

PRIVATE_KEY = "private.pem"
PUBLIC_KEY = "public.pem"
# The local stack runner's dev org and user, so a token means the same thing in both stacks.
DEV_ORG_ID = "00000000-0000-4000-8000-000000000001"
DEV_USER_ID = "00000000-0000-4000-8000-000000000002"


@dataclass(frozen=True)
class Service:
    name: str  # template-svc
    schema: str  # template

    @property
    def role(self) -> str:
        return self.name.replace("-", "_")

    @property
    def env_prefix(self) -> str:
        return self.role.upper() + "_"

    def password(self) -> str:
        return os.environ.get(f"{self.env_prefix}DB_PASSWORD", f"{self.name}-dev")


SERVICES = (
    Service("template-svc", "template"),
    Service("task-svc", "task"),
    Service("qc-svc", "qc"),
    Service("notify-svc", "notify"),
)


def _log(message: str) -> None:
    print(f"provision: {message}", flush=True)


def ensure_keys(keys_dir: Path) -> None:
    """Write an RSA key pair once; later runs keep it, so issued tokens stay valid."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    private_path, public_path = keys_dir / PRIVATE_KEY, keys_dir / PUBLIC_KEY
    if private_path.exists() and public_path.exists():
        _log(f"key pair already in {keys_dir}")
        return
    if not os.access(keys_dir, os.W_OK):
        raise SystemExit(f"provision: cannot write to {keys_dir} (is the keys volume mounted?)")
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    # Write under temporary names and rename, so a reader never sees half a key.
    for path, data, mode in ((private_path, private_pem, 0o600), (public_path, public_pem, 0o644)):
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(data)
        tmp.chmod(mode)
        tmp.replace(path)
    _log(f"wrote a new dev key pair to {keys_dir}")


def service_database_url(admin_dsn: str, database: str, service: Service) -> str:
    """The SQLAlchemy URL a service (and its migrations) uses: its own role, same server."""
    parts = urlsplit(admin_dsn)
    host = parts.hostname or "localhost"
    port = parts.port or 5432
    user, password = quote(service.role, safe=""), quote(service.password(), safe="")
    return f"postgresql+asyncpg://{user}:{password}@{host}:{port}/{database}"


async def _wait_for_postgres(admin_dsn: str, wait_seconds: float = 60.0) -> None:
    import asyncpg

    deadline = time.monotonic() + wait_seconds
    while True:
        try:
            conn = await asyncpg.connect(admin_dsn, timeout=5)
        except (OSError, asyncpg.PostgresError) as exc:
            if time.monotonic() > deadline:
                raise SystemExit(f"provision: PostgreSQL did not answer: {exc}") from exc
            await asyncio.sleep(1)
            continue
        await conn.close()
        return


def provision_database(admin_dsn: str, database: str) -> None:
    from servicekit.dbadmin import ServiceSchema, provision

    asyncio.run(_wait_for_postgres(admin_dsn))
    schemas = [ServiceSchema(role=s.role, schema=s.schema, password=s.password()) for s in SERVICES]
    asyncio.run(provision(admin_dsn, database, schemas))
    _log(f"database {database!r}: roles and schemas of {', '.join(s.name for s in SERVICES)}")


def migrate(admin_dsn: str, database: str, services_dir: Path) -> None:
    from servicekit.migrations import upgrade

    for service in SERVICES:
        upgrade(services_dir / service.name, service_database_url(admin_dsn, database, service))
        _log(f"{service.name}: migrated to head")


def mint_dev_token(
    keys_dir: Path, *, sub: str, org_id: str, roles: list[str], ttl_seconds: int
) -> str:
    from servicekit.devstack.tokens import mint_token

    key = (keys_dir / PRIVATE_KEY).read_bytes()
    return mint_token(key, sub=sub, org_id=org_id, roles=roles, ttl_seconds=ttl_seconds)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="provision.py", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    sub.add_parser("all", help="key pair, database roles and schemas, migrations")
    sub.add_parser("keys", help="only the dev key pair")
    tok = sub.add_parser("token", help="print a dev bearer token")
    tok.add_argument("--role", action="append", dest="roles", help="repeatable; default admin")
    tok.add_argument("--sub", default=DEV_USER_ID, help="user id (a UUID)")
    tok.add_argument("--org", default=DEV_ORG_ID, help="org id (a UUID)")
    tok.add_argument("--ttl", type=int, default=8 * 3600, help="seconds (default 8 hours)")
    args = parser.parse_args(argv)

    keys_dir = Path(os.environ.get("KEYS_DIR", "/keys"))
    if args.cmd == "token":
        roles = args.roles or ["admin"]
        print(
            mint_dev_token(
                keys_dir, sub=args.sub, org_id=args.org, roles=roles, ttl_seconds=args.ttl
            )
        )
        return
    ensure_keys(keys_dir)
    if args.cmd == "keys":
        return
    admin_dsn = os.environ.get("PROVISION_ADMIN_DSN")
    if not admin_dsn:
        raise SystemExit("provision: set PROVISION_ADMIN_DSN to a superuser DSN")
    database = os.environ.get("PROVISION_DATABASE", "blueprint")
    provision_database(admin_dsn, database)
    migrate(admin_dsn, database, Path(os.environ.get("SERVICES_DIR", "/app")))
    _log("done")


if __name__ == "__main__":
    main(sys.argv[1:])
