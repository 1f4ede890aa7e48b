"""The `blueprint` CLI against the real platform, as a new user would use it: login, a template
imported and published, a project started, tasks moved (and one refused), QC decided, and
`watch` (a real subprocess) receiving an event."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from standardwebhooks.webhooks import Webhook

from blueprint_stack import Stack
from blueprint_stack.keys import mint_dev_token
from notify_svc.receiver import Receiver

DOCUMENT = {
    "format": "blueprint.template-version/v1",
    "template": {"key": "cli-cabinet", "name": "Cabinet (CLI)"},
    "changelog": "first",
    "nodes": [
        {"key": "cut", "title": "Cut"},
        {
            "key": "paint",
            "title": "Paint",
            "qc_required": True,
            "qc_checklist": [{"code": "P-1", "text": "No runs"}],
        },
        {"key": "pack", "title": "Pack"},
    ],
    "edges": [{"blocker": "cut", "dependent": "paint"}, {"blocker": "paint", "dependent": "pack"}],
}


class Cli:
    def __init__(self, home: Path) -> None:
        self.env = {
            "XDG_CONFIG_HOME": str(home),
            "BLUEPRINT_PROFILE": "",
            "BLUEPRINT_URL": "",
            "BLUEPRINT_TOKEN": "",
        }

    def __call__(self, *args: str, code: int = 0, stdin: str | None = None) -> Result:
        from blueprint_cli.main import cli

        result = CliRunner().invoke(cli, list(args), env=self.env, input=stdin)
        assert result.exit_code == code, (args, result.exit_code, result.output)
        return result

    def json(self, *args: str) -> Any:
        return json.loads(self("--json", *args).stdout)


@pytest.fixture(scope="module")
def cli(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Cli:
    run = Cli(tmp_path_factory.mktemp("cli-home"))
    token = mint_dev_token(
        stack.config.keys_dir,
        roles=["planner", "operator", "inspector"],
        org_id=uuid.uuid4(),
        user_id=uuid.uuid4(),
    )
    url = f"http://127.0.0.1:{stack.config.gateway_port}"
    run("login", "--url", url, stdin=f"some make output\n{token}\n")
    profile = Path(run.env["XDG_CONFIG_HOME"]) / "blueprint" / "profiles.json"
    assert stat.S_IMODE(profile.stat().st_mode) == 0o600
    run.env["TOKEN_FOR_WATCH"] = token
    return run


def _wait(what: str, probe: Any, timeout: float = 30) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"{what}: not in time")


def test_a_new_user_runs_a_project_from_the_command_line(cli: Cli, tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({**DOCUMENT, "edges": [{"blocker": "cut", "dependent": "cut"}]}))
    refused = cli("templates", "validate", str(bad), code=1)
    assert "not a valid graph" in refused.output
    doc = tmp_path / "cabinet.json"
    doc.write_text(json.dumps(DOCUMENT))
    assert "valid (3 nodes)" in cli("templates", "validate", str(doc)).output
    imported = cli.json("templates", "import", str(doc))
    assert imported["version"] == 1
    assert cli.json("templates", "publish", "cli-cabinet", "1")["status"] == "published"
    assert "cli-cabinet" in [t["key"] for t in cli.json("templates", "list")]
    assert "cli-cabinet" in cli("templates", "list").output  # the table for people
    project = cli.json("projects", "start", "--template", "cli-cabinet", "--name", "CLI run")
    pid = project["id"]
    assert pid in [p["id"] for p in cli.json("projects", "list")]
    tasks = {t["node_key"]: t["id"] for t in cli.json("tasks", "list", "--project", pid)}
    ready = cli.json("tasks", "list", "--project", pid, "--status", "ready")
    assert [t["node_key"] for t in ready] == ["cut"]

    blocked = cli("tasks", "act", tasks["paint"], "start", code=1)
    assert "TASK_BLOCKED" in blocked.output and "Cut" in blocked.output

    started = cli("tasks", "act", tasks["cut"], "start").output
    assert "ready -> in_progress (start)" in started
    cli("tasks", "act", tasks["cut"], "complete")
    for action, status in (("start", "in_progress"), ("complete", "in_qc")):
        moved = cli.json("tasks", "act", tasks["paint"], action)
        assert (moved["task_id"], moved["to_status"]) == (tasks["paint"], status)
    inspection = _wait(
        "the inspection of paint",
        lambda: cli.json("qc", "list", "--task", tasks["paint"]),
    )[0]["id"]
    cli("qc", "claim", inspection)
    cli("qc", "result", inspection, "P-1", "pass")
    assert cli.json("qc", "decide", inspection, "accept")["decision"] == "accept"
    columns = _wait(
        "pack ready on the board",
        lambda: (c := cli.json("board", pid, "--once")["columns"])["ready"] == ["pack"] and c,
    )
    assert columns["done"] == ["cut", "paint"]
    assert "pack" in cli("board", pid, "--once").output


def test_watch_prints_the_events_of_a_project_as_they_happen(cli: Cli, tmp_path: Path) -> None:
    doc = tmp_path / "watched.json"
    doc.write_text(json.dumps({**DOCUMENT, "template": {"key": "cli-watch", "name": "W"}}))
    cli("templates", "import", str(doc))
    cli("templates", "publish", "cli-watch", "1")
    pid = cli.json("projects", "start", "--template", "cli-watch")["id"]
    cut = cli.json("tasks", "list", "--project", pid, "--status", "ready")[0]["id"]
    env = {**os.environ, **cli.env}
    watcher = subprocess.Popen(
        [sys.executable, "-m", "blueprint_cli", "--json", "watch", pid, "--max-events", "2"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert watcher.stderr is not None
        assert "ready: watching project" in watcher.stderr.readline()
        cli("tasks", "act", cut, "start")
        out, _ = watcher.communicate(timeout=60)
    finally:
        watcher.kill()
    # Starting an unassigned task assigns it to whoever starts it, then moves it.
    events = [json.loads(line) for line in out.splitlines()]
    assert [e["event"] for e in events] == ["task.assigned", "task.status_changed"]
    assert events[1]["data"]["data"]["task_id"] == cut
    assert events[1]["data"]["data"]["to_status"] == "in_progress"
    assert all(e["id"] for e in events)  # cursors a script can resume from
    assert watcher.returncode == 0


def test_a_subscriber_manages_a_webhook_endpoint_from_the_command_line(cli: Cli) -> None:
    assert any(t["type"] == "task.status_changed" for t in cli.json("webhooks", "event-types"))
    refused = cli("webhooks", "create", "http://10.0.0.1/hook", "--events", "task.*", code=1)
    assert "422 URL_NOT_ALLOWED" in refused.output
    with Receiver() as receiver:
        created = cli.json(
            "webhooks", "create", receiver.url, "--events", "task.*", "--description", "cli"
        )
        endpoint = created["id"]
        assert created["secret"].startswith("whsec_")
        assert endpoint in {e["id"] for e in cli.json("webhooks", "list")}
        delivery = cli.json("webhooks", "test", endpoint)["id"]
        got = _wait("the test event", receiver.requests)
        payload = Webhook(created["secret"]).verify(got[0].body, got[0].headers)
        assert payload["type"] == "webhook.test"
        settled = _wait(
            "the delivery recorded as succeeded",
            lambda: (
                (d := cli.json("webhooks", "delivery", delivery))["status"] == "succeeded" and d
            ),
        )
        assert [a["status_code"] for a in settled["history"]] == [200]
        listed = cli.json("webhooks", "deliveries", endpoint, "--status", "succeeded")
        assert [d["id"] for d in listed] == [delivery]
        again = cli.json("webhooks", "replay", delivery, "--include-succeeded")
        assert again["id"] == delivery
        _wait("the replay", lambda: len(receiver.requests()) == 2)
        assert {r.webhook_id for r in receiver.requests()} == {got[0].webhook_id}
    assert cli.json("webhooks", "update", endpoint, "--paused")["active"] is False
    assert cli("webhooks", "update", endpoint, code=2).exit_code == 2  # nothing to change
    rotated = cli.json("webhooks", "rotate-secret", endpoint, "--grace", "0")
    assert rotated["secret"].startswith("whsec_") and rotated["secret"] != created["secret"]
    cli("webhooks", "delete", endpoint)
    gone = cli("webhooks", "show", endpoint, code=1)
    assert "404 ENDPOINT_NOT_FOUND" in gone.output
