"""Keys from a JWKS URL (an identity provider's real HTTP endpoint), and traces exported over
OTLP/HTTP to a collector endpoint when one is configured."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from servicekit.auth.verify import TokenVerifier, pem_to_jwk
from servicekit.devstack.tokens import mint_token
from servicekit.errors import Unauthorized
from servicekit.testing.keys import generate_rsa_pair


class _Recorder(ThreadingHTTPServer):
    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.jwks: dict[str, Any] = {"keys": []}
        self.posts: list[tuple[str, bytes]] = []
        self.jwks_hits = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    server: _Recorder

    def do_GET(self) -> None:
        self.server.jwks_hits += 1
        body = json.dumps(self.server.jwks).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        self.server.posts.append((self.path, self.rfile.read(length)))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def recorder() -> Iterator[_Recorder]:
    server = _Recorder()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def _jwk(public_pem: bytes, kid: str) -> dict[str, Any]:
    jwk = pem_to_jwk(public_pem)
    jwk.update(kid=kid, use="sig", alg="RS256")
    return jwk


async def test_tokens_verify_against_a_jwks_url_and_keys_rotate(recorder: _Recorder) -> None:
    old_private, old_public = generate_rsa_pair()
    new_private, new_public = generate_rsa_pair()
    recorder.jwks = {"keys": [_jwk(old_public, "k1")]}
    verifier = TokenVerifier(
        issuer="idp", audience="blueprint", jwks_url=f"{recorder.url}/jwks.json"
    )
    org = uuid.uuid4()

    def token(private: bytes, kid: str) -> str:
        return mint_token(
            private, sub=str(uuid.uuid4()), roles=["viewer"], org_id=org, issuer="idp", kid=kid
        )

    assert (await verifier.verify(token(old_private, "k1"))).org_id == org
    # The provider rotates: a token with an unknown kid makes the verifier fetch the keys again.
    recorder.jwks = {"keys": [_jwk(old_public, "k1"), _jwk(new_public, "k2")]}
    assert (await verifier.verify(token(new_private, "k2"))).org_id == org
    assert recorder.jwks_hits == 2
    # A key the provider never published does not verify.
    stranger, _ = generate_rsa_pair()
    with pytest.raises(Unauthorized):
        await verifier.verify(token(stranger, "k2"))


async def test_unreachable_jwks_is_a_401_not_a_crash() -> None:
    verifier = TokenVerifier(issuer="idp", audience="blueprint", jwks_url="http://127.0.0.1:9/jwks")
    private, _ = generate_rsa_pair()
    tok = mint_token(private, sub=str(uuid.uuid4()), roles=["viewer"], org_id=uuid.uuid4(), kid="x")
    with pytest.raises(Unauthorized) as err:
        await verifier.verify(tok)
    assert err.value.code == "JWKS_UNAVAILABLE"


_TRACED_APP = textwrap.dedent(
    """
    import asyncio, sys
    import httpx
    from opentelemetry import trace
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from servicekit.app import build_app
    from servicekit.settings import BaseServiceSettings

    settings = BaseServiceSettings(
        service_name="traced-svc",
        database_url="postgresql+asyncpg://nobody@127.0.0.1:1/none",
        redis_url="redis://127.0.0.1:1/0",
        otlp_endpoint=sys.argv[1],
    )
    app = build_app(settings, title="traced")

    memory = InMemorySpanExporter()

    async def main() -> None:
        async with app.router.lifespan_context(app):
            trace.get_tracer_provider().add_span_processor(SimpleSpanProcessor(memory))
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
                r = await client.get("/api/v1/anything", headers={"traceparent": tp})
                assert r.status_code == 404, r.text
        trace.get_tracer_provider().force_flush()
        spans = memory.get_finished_spans()
        print("server spans:", sum(s.kind is trace.SpanKind.SERVER for s in spans))

    asyncio.run(main())
    """
)


def test_spans_are_exported_over_otlp_when_an_endpoint_is_set(
    recorder: _Recorder, tmp_path: Path
) -> None:
    script = tmp_path / "traced_app.py"
    script.write_text(_TRACED_APP)
    result = subprocess.run(
        [sys.executable, str(script), f"{recorder.url}/v1/traces"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    # One server span per request: servicekit's instrumentation, not FastAPI's own as well.
    assert "server spans: 1" in result.stdout, result.stdout
    bodies = [body for path, body in recorder.posts if path == "/v1/traces"]
    assert bodies, "the exporter posted spans to the collector endpoint"
    payload = b"".join(bodies)
    assert b"traced-svc" in payload, "spans carry the service name"
    # The incoming traceparent's trace id continues in the exported span.
    assert bytes.fromhex("4bf92f3577b34da6a3ce929d0e0e4736") in payload
