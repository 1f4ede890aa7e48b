"""The gateway's API docs in a real browser (Debian's chromium driven by Playwright): what a new
user sees in Swagger UI at /docs/ and in ReDoc at /redoc.

The examples selector of the transitions operation must offer every user action of the state
machine, choosing one must pre-fill "Try it out", every error status must show its own code,
and no expanded operation may show `additionalProp1`. Screenshots go to var/test-artifacts/.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from playwright import sync_api

from blueprint_stack import Stack
from blueprint_stack.config import REPO_ROOT

ARTIFACTS = REPO_ROOT / "var" / "test-artifacts"
TRANSITIONS = "#operations-task_transitions-applyTaskTransition"


def _chromium() -> str:
    found = os.environ.get("BLUEPRINT_CHROMIUM") or shutil.which("chromium")
    if not found:
        pytest.fail("chromium is missing: `make setup` installs it (apt package chromium)")
    return found


@pytest.fixture(scope="module")
def page(stack: Stack) -> Iterator[Any]:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=_chromium(), args=["--no-sandbox", "--disable-dev-shm-usage"]
        )
        context = browser.new_context(
            base_url=f"http://127.0.0.1:{stack.config.gateway_port}",
            viewport={"width": 1400, "height": 1000},
        )
        page = context.new_page()
        page.set_default_timeout(30_000)
        try:
            yield page
        finally:
            context.close()
            browser.close()


@pytest.fixture(scope="module")
def document(gateway: httpx.Client) -> dict[str, Any]:
    doc: dict[str, Any] = gateway.get("/openapi.json").json()
    return doc


def _open_transitions(page: Any) -> Any:
    page.goto("/docs/")
    operation = page.locator(TRANSITIONS)
    operation.wait_for()
    if not operation.locator(".opblock-body").count():
        operation.locator(".opblock-summary").first.click()
    operation.locator(".opblock-body").wait_for()
    return operation


def test_the_examples_selector_offers_every_action_and_prefills_try_it_out(
    page: Any, document: dict[str, Any]
) -> None:
    operation = _open_transitions(page)
    request_body = operation.locator(".opblock-section-request-body")
    select = request_body.locator(".examples-select select")
    offered = select.locator("option").evaluate_all("options => options.map(o => o.value)")
    body = document["paths"]["/api/v1/tasks/{task_id}/transitions"]["post"]["requestBody"]
    actions = list(body["content"]["application/json"]["examples"])
    assert offered == actions
    assert {"assign", "start", "complete", "pause", "cancel", "reopen"} <= set(offered)

    select.select_option("cancel")
    operation.locator(".try-out__btn").click()
    prefilled = request_body.locator("textarea.body-param__text").input_value()
    assert '"action": "cancel"' in prefilled
    assert '"reason"' in prefilled
    request_body.screenshot(path=str(ARTIFACTS / "docs-transitions-cancel-example.png"))


def test_each_error_status_shows_its_own_code(page: Any, document: dict[str, Any]) -> None:
    operation = _open_transitions(page)
    responses = document["paths"]["/api/v1/tasks/{task_id}/transitions"]["post"]["responses"]
    for status, response in responses.items():
        if not status.startswith("4"):
            continue
        codes = list(response["content"]["application/problem+json"]["examples"])
        row = operation.locator(f'tr.response[data-code="{status}"]')
        text = row.inner_text()
        assert f'"code": "{codes[0]}"' in text, f"{status} does not show {codes[0]}"
        assert f'"status": {status}' in text, status
        others = {
            c
            for s, r in responses.items()
            if s.startswith("4") and s != status
            for c in r["content"]["application/problem+json"]["examples"]
        }
        shown = {c for c in others - set(codes) if f'"code": "{c}"' in text}
        assert not shown, f"{status} shows the codes of another status: {shown}"
    operation.locator(".responses-wrapper").screenshot(
        path=str(ARTIFACTS / "docs-transitions-error-examples.png")
    )


def _free_form(schema: dict[str, Any], schemas: dict[str, Any], seen: set[str]) -> bool:
    """Whether the schema reaches an object with no declared properties, which Swagger UI
    would fill with `additionalProp1` had the operation no example."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        if name in seen:
            return False
        return _free_form(schemas[name], schemas, seen | {name})
    if schema.get("type") == "object" and not schema.get("properties"):
        return True
    nested = [*schema.get("properties", {}).values(), schema.get("items", {})]
    nested += schema.get("anyOf", []) + schema.get("oneOf", []) + schema.get("allOf", [])
    return any(_free_form(sub, schemas, seen) for sub in nested if sub)


def _operations_with_free_form_objects(document: dict[str, Any]) -> list[str]:
    schemas = document["components"]["schemas"]
    found = []
    for item in document["paths"].values():
        for op in item.values():
            contents = [op.get("requestBody", {}).get("content", {})]
            contents += [r.get("content", {}) for r in op["responses"].values()]
            medias = [m for content in contents for m in content.values()]
            if any(_free_form(m.get("schema", {}), schemas, set()) for m in medias):
                tag = op["tags"][0].replace(" ", "_")
                found.append(f"#operations-{tag}-{op['operationId']}")
    return found


def test_no_expanded_operation_shows_placeholders(page: Any, document: dict[str, Any]) -> None:
    """The operations whose schemas have free-form objects, each opened in turn and closed
    again (Swagger UI re-renders every open operation, so opening all 41 at once is slow)."""
    selectors = _operations_with_free_form_objects(document)
    assert "#operations-task_transitions-applyTaskTransitionsBulk" in selectors
    page.goto("/docs/")
    page.locator(".opblock").first.wait_for()
    for selector in selectors:
        operation = page.locator(selector)
        operation.locator(".opblock-summary").first.click()
        operation.locator(".opblock-body .responses-wrapper").wait_for()
        text = operation.inner_text()
        assert "additionalProp1" not in text, selector
        assert '"string"' not in text, selector
        if selector.endswith("applyTaskTransitionsBulk"):
            operation.screenshot(path=str(ARTIFACTS / "docs-bulk-transitions.png"))
        operation.locator(".opblock-summary").first.click()


def test_redoc_renders_the_document_from_local_assets(page: Any) -> None:
    """ReDoc's code, styles and the document come from the gateway; outside requests are
    refused (its footer links a logo on Redocly's CDN: the page must render without it)."""
    remote: list[tuple[str, str]] = []

    def refuse(route: Any) -> None:
        remote.append((route.request.resource_type, route.request.url))
        route.abort()

    page.route(re.compile(r"^https?://(?!127\.0\.0\.1[:/]).*"), refuse)
    try:
        page.goto("/redoc")
        page.locator("h2", has_text="Apply an action of the state machine to a task").wait_for()
        assert page.locator("h1").first.inner_text().startswith("Blueprint API")
        page.screenshot(path=str(ARTIFACTS / "redoc.png"))
    finally:
        page.unroute(re.compile(r"^https?://(?!127\.0\.0\.1[:/]).*"))
    needed = [(kind, url) for kind, url in remote if kind != "image"]
    assert not needed, f"ReDoc needs assets from outside the gateway: {needed}"
