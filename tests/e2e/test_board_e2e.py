"""The live board in a real browser (Debian's chromium driven by Playwright), served by the real
gateway: start a task with its button and see the card move; complete a blocker through the API
and see its dependent move to ready without a reload; an inspector claims, accepts and rejects QC
rounds and sees the cards move to done and rework. Screenshots go to var/test-artifacts/."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from blueprint_stack import Stack
from blueprint_stack.keys import mint_dev_token

ARTIFACTS = Path(__file__).resolve().parents[2] / "var" / "test-artifacts" / "board"
GRAPH = {
    "nodes": [
        {"key": "cut", "title": "Cut"},
        {"key": "weld", "title": "Weld"},
        {"key": "paint", "title": "Paint"},
    ],
    "edges": [{"blocker": "cut", "dependent": "paint"}, {"blocker": "weld", "dependent": "paint"}],
}


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    executable = shutil.which("chromium")
    assert executable, "chromium is missing: `make setup` installs it (apt package chromium)"
    args = ["--no-sandbox"] if os.geteuid() == 0 else []
    with sync_playwright() as pw:
        launched = pw.chromium.launch(executable_path=executable, args=args)
        yield launched
        launched.close()


def _project(gateway: str, headers: dict[str, str]) -> tuple[str, dict[str, Any]]:
    with httpx.Client(base_url=gateway, headers=headers, timeout=15, trust_env=False) as c:
        key = f"board-{uuid.uuid4().hex[:6]}"
        created = c.post("/api/v1/templates", json={"key": key, "name": "B", "draft": GRAPH})
        tid = created.json()["id"]
        assert c.post(f"/api/v1/templates/{tid}/versions/1/publish").status_code == 200
        body = {
            "name": "Board",
            "template_id": tid,
            "deliverables": 1,
            "start_at": "2026-12-01T08:00:00Z",
        }
        pid = c.post("/api/v1/projects", json=body).json()["id"]
        tasks = c.get(f"/api/v1/tasks?project_id={pid}").json()["items"]
        return pid, {t["node_key"]: t for t in tasks}


def _card(page: Page, status: str, node: str) -> Any:
    return page.locator(f'section[data-status="{status}"] article[data-node="{node}"]')


def test_the_board_moves_cards_from_its_buttons_and_from_the_stream(
    stack: Stack, browser: Browser
) -> None:
    gateway = f"http://127.0.0.1:{stack.config.gateway_port}"
    token = mint_dev_token(
        stack.config.keys_dir,
        roles=["planner", "operator"],
        org_id=uuid.uuid4(),
        user_id=uuid.uuid4(),
    )
    headers = {"Authorization": f"Bearer {token}"}
    pid, tasks = _project(gateway, headers)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page = browser.new_page(viewport={"width": 1024, "height": 768})  # a tablet's width
    page.goto(f"{gateway}/board/")
    page.get_by_label("Bearer token").fill(token)
    page.get_by_role("button", name="Use this token").click()
    expect(page.get_by_role("link", name="Board", exact=True)).to_be_visible()
    page.goto(f"{gateway}/board/#/projects/{pid}")
    expect(_card(page, "ready", "cut")).to_be_visible()
    expect(page.locator("#live")).to_have_text("live", timeout=15_000)
    page.screenshot(path=str(ARTIFACTS / "1-loaded.png"), full_page=True)

    assert _card(page, "blocked", "paint").locator("button[data-action=start]").count() == 0
    _card(page, "ready", "cut").get_by_role("button", name="start Cut").click()
    expect(_card(page, "in_progress", "cut")).to_be_visible()
    page.screenshot(path=str(ARTIFACTS / "2-started.png"), full_page=True)

    with httpx.Client(base_url=gateway, headers=headers, timeout=15, trust_env=False) as c:
        for node in ("cut", "weld"):
            for action in ("start", "complete") if node == "weld" else ("complete",):
                version = c.get(f"/api/v1/tasks/{tasks[node]['id']}").json()["row_version"]
                resp = c.post(
                    f"/api/v1/tasks/{tasks[node]['id']}/transitions",
                    json={
                        "action": action,
                        "expected_row_version": version,
                        "client_event_id": str(uuid.uuid4()),
                    },
                )
                assert resp.status_code == 200, resp.text
    # No reload: the stream moves paint to ready (a deadline, generous for a loaded machine).
    expect(_card(page, "ready", "paint")).to_be_visible(timeout=15_000)
    expect(_card(page, "done", "cut")).to_be_visible()
    page.screenshot(path=str(ARTIFACTS / "3-unblocked-live.png"), full_page=True)
    assert "1/3 done" not in page.locator("#progress").inner_text()
    assert "2/3 done" in page.locator("#progress").inner_text()
    page.close()


QC_GRAPH = {
    "nodes": [
        {
            "key": "paint",
            "title": "Paint",
            "qc_required": True,
            "qc_checklist": [{"code": "P-1", "text": "No runs", "required": True}],
        }
    ],
    "edges": [],
}


def test_an_inspector_claims_accepts_and_rejects_from_the_board(
    stack: Stack, browser: Browser
) -> None:
    gateway = f"http://127.0.0.1:{stack.config.gateway_port}"
    org = uuid.uuid4()
    keys = stack.config.keys_dir
    planner = {
        "Authorization": "Bearer "
        + mint_dev_token(keys, roles=["planner", "operator"], org_id=org, user_id=uuid.uuid4())
    }
    inspector = mint_dev_token(keys, roles=["inspector"], org_id=org, user_id=uuid.uuid4())
    with httpx.Client(base_url=gateway, headers=planner, timeout=15, trust_env=False) as c:
        created = c.post(
            "/api/v1/templates",
            json={"key": f"board-qc-{uuid.uuid4().hex[:6]}", "name": "QC", "draft": QC_GRAPH},
        )
        tid = created.json()["id"]
        assert c.post(f"/api/v1/templates/{tid}/versions/1/publish").status_code == 200
        pid = c.post(
            "/api/v1/projects",
            json={
                "name": "Board QC",
                "template_id": tid,
                "deliverables": 2,
                "start_at": "2026-12-01T08:00:00Z",
            },
        ).json()["id"]
        tasks = c.get(f"/api/v1/tasks?project_id={pid}").json()["items"]
        for task in tasks:
            for action in ("start", "complete"):
                version = c.get(f"/api/v1/tasks/{task['id']}").json()["row_version"]
                resp = c.post(
                    f"/api/v1/tasks/{task['id']}/transitions",
                    json={
                        "action": action,
                        "expected_row_version": version,
                        "client_event_id": str(uuid.uuid4()),
                    },
                )
                assert resp.status_code == 200, resp.text
    accepted, rejected = (t["id"] for t in tasks)
    page = browser.new_page(viewport={"width": 1024, "height": 768})
    page.on("dialog", lambda dialog: dialog.accept("Runs on the left panel"))
    page.goto(f"{gateway}/board/")
    page.get_by_label("Bearer token").fill(inspector)
    page.get_by_role("button", name="Use this token").click()
    page.goto(f"{gateway}/board/#/projects/{pid}")
    expect(page.locator("#live")).to_have_text("live", timeout=15_000)

    def card(task_id: str, status: str) -> Any:
        return page.locator(f'section[data-status="{status}"] article[data-task="{task_id}"]')

    for task_id in (accepted, rejected):
        # The inspection is opened by qc-svc from the event; the stream brings it to the card.
        card(task_id, "in_qc").get_by_role("button", name="claim QC of Paint").click(timeout=15_000)
        expect(
            card(task_id, "in_qc").get_by_role("button", name="accept QC of Paint")
        ).to_be_visible()
    page.screenshot(path=str(ARTIFACTS / "4-claimed.png"), full_page=True)
    card(accepted, "in_qc").get_by_role("button", name="accept QC of Paint").click()
    card(rejected, "in_qc").get_by_role("button", name="reject QC of Paint").click()
    # The decisions travel to task-svc as events; the stream moves the cards.
    expect(card(accepted, "done")).to_be_visible(timeout=15_000)
    expect(card(rejected, "rework")).to_be_visible(timeout=15_000)
    page.screenshot(path=str(ARTIFACTS / "5-decided.png"), full_page=True)
    assert page.locator("#error").is_hidden()
    with httpx.Client(base_url=gateway, headers=planner, timeout=15, trust_env=False) as c:
        found = c.get(f"/api/v1/inspections?task_id={rejected}").json()["items"]
    assert [(d["code"], d["description"]) for d in found[0]["defects"]] == [
        ("QC-REJECT", "Runs on the left panel")
    ]
    page.close()
