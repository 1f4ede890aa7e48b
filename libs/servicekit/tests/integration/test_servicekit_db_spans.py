"""With tracing on, a request that queries the database exports a database span in its trace,
through SQLAlchemy or on the pool's asyncpg connection itself (`driver_transaction`).

The app runs in a subprocess (the tracer provider is process-wide) against the test PostgreSQL,
and exports over OTLP/HTTP to a receiver that decodes the protobuf it gets.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from servicekit.testing.otlp import OtlpReceiver
from servicekit.testing.plugin import TestDatabase

_APP = textwrap.dedent(
    """
    import asyncio, sys
    import httpx
    from fastapi import APIRouter, Request
    from opentelemetry import trace
    from sqlalchemy import text
    from servicekit.app import build_app
    from servicekit.db import driver_transaction
    from servicekit.settings import BaseServiceSettings

    router = APIRouter()

    @router.get("/api/v1/probe")
    async def probe(request: Request) -> dict[str, int]:
        async with request.app.state.db.engine.connect() as conn:
            value = (await conn.execute(text("SELECT 41 + 1"))).scalar_one()
        return {"value": value}

    @router.get("/api/v1/probe-driver")
    async def probe_driver(request: Request) -> dict[str, int]:
        async with driver_transaction(request.app.state.db) as conn:
            value = await conn.fetchval("SELECT 40 + $1::int", 2)
        return {"value": value}

    settings = BaseServiceSettings(
        service_name="db-traced-svc",
        database_url=sys.argv[2],
        redis_url="redis://127.0.0.1:1/0",
        otlp_endpoint=sys.argv[1],
    )
    app = build_app(settings, title="db traced", routers=[router])

    async def main() -> None:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                tp = "00-5bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
                r = await client.get("/api/v1/probe", headers={"traceparent": tp})
                assert r.status_code == 200 and r.json() == {"value": 42}, r.text
                r = await client.get("/api/v1/probe-driver", headers={"traceparent": tp})
                assert r.status_code == 200 and r.json() == {"value": 42}, r.text
        trace.get_tracer_provider().force_flush()

    asyncio.run(main())
    """
)


def test_a_request_that_queries_the_database_exports_a_database_span(
    test_database: TestDatabase, tmp_path: Path
) -> None:
    script = tmp_path / "db_traced_app.py"
    script.write_text(_APP)
    url = test_database.admin_url().replace("postgresql://", "postgresql+asyncpg://", 1)
    with OtlpReceiver() as receiver:
        result = subprocess.run(
            [sys.executable, str(script), receiver.endpoint, url],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, result.stderr[-3000:]
        spans = receiver.spans
    trace_id = "5bf92f3577b34da6a3ce929d0e0e4736"
    db_spans = [s for s in spans if s.attributes.get("db.system") == "postgresql"]
    assert db_spans, f"no database span among {[(s.service, s.name) for s in spans]}"
    server = [s for s in spans if s.kind == "SERVER" and s.trace_id == trace_id]
    assert server, "the request's own span is exported"
    in_trace = {s.span_id for s in spans if s.trace_id == trace_id}
    statements = [s.attributes.get("db.statement") for s in db_spans]
    for statement in ("SELECT 41 + 1", "SELECT 40 + $1::int"):
        probe = [s for s in db_spans if s.attributes.get("db.statement") == statement]
        assert probe, (statement, statements)
        span = probe[0]
        assert span.kind == "CLIENT"
        assert span.name == f"SELECT {test_database.name}"
        assert span.service == "db-traced-svc"
        assert span.trace_id == trace_id, "the database span belongs to the request's trace"
        assert span.parent_span_id in in_trace, "the database span hangs under the request's spans"
    # The driver's own transaction is spanned too: its BEGIN and its COMMIT.
    for word in ("BEGIN", "COMMIT"):
        assert any(str(x).upper().startswith(word) for x in statements), (word, statements)
