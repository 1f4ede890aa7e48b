"""Profiles and usage errors of the `blueprint` command, without a server: nothing here talks
to the network (a wrong invocation is refused before any request)."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner

from blueprint_cli.config import resolve, save_profile
from blueprint_cli.main import cli


@pytest.fixture(autouse=True)
def config_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    for name in ("BLUEPRINT_PROFILE", "BLUEPRINT_URL", "BLUEPRINT_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


def test_a_saved_profile_is_private_and_the_command_line_and_env_override_it(
    config_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = save_profile("default", url="http://gw:8080/", token="t-file")
    save_profile("ops", url="http://ops:8080", token="t-ops")
    assert path == config_home / "blueprint" / "profiles.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert set(json.loads(path.read_text())["profiles"]) == {"default", "ops"}
    assert resolve(None, None, None).url == "http://gw:8080"
    assert resolve("ops", None, None).token == "t-ops"
    monkeypatch.setenv("BLUEPRINT_PROFILE", "ops")
    monkeypatch.setenv("BLUEPRINT_TOKEN", "t-env")
    assert resolve(None, None, None).url == "http://ops:8080"
    assert resolve(None, None, None).token == "t-env"
    assert resolve(None, "http://cli:1", "t-cli").token == "t-cli"
    assert resolve(None, "http://cli:1", "t-cli").url == "http://cli:1"


@pytest.mark.parametrize(
    "args",
    [
        ["tasks", "act", "0b6f8a8e-5d7c-4f1e-9a63-2c1d0e9b7a10", "fly"],
        ["tasks", "list"],
        ["--profile", "nowhere", "projects", "list"],
        ["projects", "list"],  # no token anywhere
        ["--token", "x", "tasks", "act", "x", "assign", "--payload", "[1]"],
    ],
)
def test_wrong_usage_exits_2_and_says_why(args: list[str]) -> None:
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2, result.output
    assert "Error" in result.output


def test_unreachable_gateway_exits_1() -> None:
    args = ["--url", "http://127.0.0.1:9", "--token", "x", "projects", "list"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 1, result.output
    assert "cannot reach http://127.0.0.1:9" in result.output


def test_a_message_longer_than_the_terminal_stays_on_one_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Scripts grep what the CLI says: a message is never wrapped at the terminal's width."""
    from blueprint_cli import output

    message = "/a/very/long/path/" + "x" * 120 + "/cabinet.json: valid (3 nodes)"
    output.console.print(message)
    assert capsys.readouterr().out == message + "\n"
