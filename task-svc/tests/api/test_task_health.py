"""task-svc answers health, readiness and metrics, and refuses what it does not serve."""

import httpx


async def test_healthz_and_readyz(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).json()["status"] == "ok"
    ready = await client.get("/readyz")
    assert ready.status_code == 200, ready.text
    assert ready.json()["checks"] == {"database": "ok", "redis": "ok"}


async def test_metrics_show_requests_by_route_template(client: httpx.AsyncClient) -> None:
    await client.get("/healthz", headers={"X-Request-ID": "metrics-probe"})
    body = (await client.get("/metrics")).text
    assert (
        'http_requests_total{method="GET",route="/healthz",service="task-svc",status="200"}' in body
    )


async def test_unknown_path_is_a_problem(client: httpx.AsyncClient) -> None:
    resp = await client.get("/api/v1/nothing-here")
    assert resp.status_code == 404
    assert resp.headers["content-type"] == "application/problem+json"
    assert resp.json()["code"] == "NOT_FOUND"
