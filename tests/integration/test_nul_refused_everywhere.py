"""Every service refuses text with the NUL character before its routes run (PostgreSQL cannot
store it): in a JSON body and in the query string, with the field named."""

from __future__ import annotations

import importlib

import httpx
import pytest

SERVICES = ["template_svc", "task_svc", "qc_svc", "notify_svc"]
PATHS = {
    "template_svc": "/api/v1/templates",
    "task_svc": "/api/v1/projects",
    "qc_svc": "/api/v1/inspections",
    "notify_svc": "/api/v1/webhooks/endpoints",
}


@pytest.mark.parametrize("package", SERVICES)
async def test_each_service_refuses_nul_in_body_and_query(package: str) -> None:
    main = importlib.import_module(f"{package}.main")
    settings = importlib.import_module(f"{package}.settings").Settings()
    app = main.create_app(settings)
    path = PATHS[package]
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://svc") as client:
        resp = await client.post(path, json={"name": "a\u0000b", "reason": "ok"})
        assert resp.status_code == 422, resp.text
        assert resp.json()["errors"] == [
            {
                "in": "body",
                "field": "name",
                "message": "must not contain the NUL character (U+0000)",
                "type": "string_nul",
            }
        ]
        resp = await client.get(f"{path}?text=a%00b")
        assert resp.status_code == 422, resp.text
        assert resp.json()["errors"][0]["field"] == "text"
