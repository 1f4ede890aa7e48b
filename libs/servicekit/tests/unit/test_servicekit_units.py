"""Pure pieces of servicekit: claims, error field paths, port checks, naming convention."""

from __future__ import annotations

import socket
import uuid

import pytest

from servicekit.auth import principal_from_claims
from servicekit.db import service_metadata
from servicekit.devstack.ports import PortInUse, ensure_port_free
from servicekit.errors import Unauthorized, _field_path


def test_user_claims_become_a_principal() -> None:
    org, user = uuid.uuid4(), uuid.uuid4()
    p = principal_from_claims(
        {"sub": str(user), "org_id": str(org), "roles": ["planner", "viewer"]}
    )
    assert p.user_id == user and p.org == org and p.roles == {"planner", "viewer"}
    assert not p.is_service


def test_service_claims_need_no_org() -> None:
    p = principal_from_claims({"sub": "service:task-svc", "roles": ["service"]})
    assert p.is_service and p.org_id is None


@pytest.mark.parametrize(
    "claims",
    [
        {"sub": "not-a-uuid", "org_id": str(uuid.uuid4()), "roles": []},
        {"sub": str(uuid.uuid4()), "roles": ["viewer"]},
        {"sub": str(uuid.uuid4()), "org_id": "nope", "roles": ["viewer"]},
        {"sub": str(uuid.uuid4()), "org_id": str(uuid.uuid4()), "roles": {"a": 1}},
    ],
)
def test_bad_claims_are_refused(claims: dict[str, object]) -> None:
    with pytest.raises(Unauthorized):
        principal_from_claims(claims)


@pytest.mark.parametrize(
    ("loc", "expected"),
    [
        (("body", "payload", "assign_to"), ("body", "payload.assign_to")),
        (("body", "nodes", 3, "key"), ("body", "nodes[3].key")),
        (("query", "limit"), ("query", "limit")),
        (("body",), ("body", "body")),
    ],
)
def test_field_paths_read_like_json_paths(
    loc: tuple[object, ...], expected: tuple[str, str]
) -> None:
    assert _field_path(loc) == expected


def test_taken_port_is_refused_with_a_clear_message() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        with pytest.raises(PortInUse) as err:
            ensure_port_free(port, "the gateway")
    assert f"port {port}" in str(err.value) and "the gateway" in str(err.value)


def test_base_binds_tables_to_the_schema_with_stable_names() -> None:
    from sqlalchemy import Column, Integer, Text, UniqueConstraint
    from sqlalchemy.orm import DeclarativeBase

    class Base(DeclarativeBase):
        metadata = service_metadata("demo")

    class Widget(Base):
        __tablename__ = "widget"
        id = Column(Integer, primary_key=True)
        code = Column(Text)
        __table_args__ = (UniqueConstraint("code"),)

    table = Widget.__table__
    assert table.schema == "demo"
    names = {c.name for c in table.constraints}
    assert {"pk_widget", "uq_widget_code"} <= names


def test_json_renders_database_uuids_decimals_and_sets() -> None:
    from decimal import Decimal

    from asyncpg.pgproto.pgproto import UUID as PgUUID

    from servicekit.jsonutil import dumps

    raw = "4a507b9e-97aa-4b42-a256-3448757948be"
    assert dumps({"id": PgUUID(raw), "h": Decimal("1.5"), "s": {"b", "a"}}) == (
        b'{"id":"' + raw.encode() + b'","h":1.5,"s":["a","b"]}'
    )


async def test_a_verified_token_is_not_verified_again_until_it_expires() -> None:
    from servicekit.auth import Principal, TokenVerifier
    from servicekit.devstack.tokens import mint_token
    from servicekit.testing.keys import generate_rsa_pair

    class CountingVerifier(TokenVerifier):
        calls = 0

        async def _verify(self, token: str) -> Principal:
            self.calls += 1
            return await super()._verify(token)

    private, public = generate_rsa_pair()
    verifier = CountingVerifier(issuer="i", audience="a", public_key_pem=public, leeway=0)
    org = uuid.uuid4()

    def token(ttl: int) -> str:
        return mint_token(
            private,
            sub=str(uuid.uuid4()),
            roles=["viewer"],
            org_id=org,
            issuer="i",
            audience="a",
            ttl_seconds=ttl,
        )

    first = token(600)
    assert (await verifier.verify(first)).org_id == org
    assert (await verifier.verify(first)).org_id == org
    assert verifier.calls == 1
    await verifier.verify(token(600))
    assert verifier.calls == 2
    expired = token(-5)
    for _ in range(2):
        with pytest.raises(Unauthorized):
            await verifier.verify(expired)
    assert verifier.calls == 4, "a refused token is never cached"
