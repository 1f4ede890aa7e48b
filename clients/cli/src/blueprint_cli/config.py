"""Profiles: where the gateway is and which token to send, kept per user and mode 0600.

The file is `<config dir>/blueprint/profiles.json` (`$XDG_CONFIG_HOME` or `~/.config` on Linux).
Which profile and values apply, strongest first: the command line (`--profile`, `--url`,
`--token`), then `BLUEPRINT_PROFILE`, `BLUEPRINT_URL`, `BLUEPRINT_TOKEN`, then the file.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import click

DEFAULT_PROFILE = "default"
DEFAULT_URL = "http://localhost:8080"


def config_file() -> Path:
    return Path(click.get_app_dir("blueprint")) / "profiles.json"


def _read() -> dict[str, dict[str, str]]:
    path = config_file()
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text())
    except ValueError as exc:
        raise click.ClickException(f"{path} is not valid JSON ({exc}); fix or delete it") from exc
    return data.get("profiles", {}) if isinstance(data, dict) else {}


def save_profile(name: str, *, url: str, token: str) -> Path:
    """Write the profile; the file is created 0600 (it holds a bearer token) and stays so."""
    profiles = _read()
    profiles[name] = {"url": url.rstrip("/"), "token": token}
    path = config_file()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump({"profiles": profiles}, out, indent=2)
    os.chmod(tmp, 0o600)
    tmp.replace(path)
    return path


@dataclass(frozen=True)
class Settings:
    profile: str
    url: str
    token: str | None


def resolve(profile: str | None, url: str | None, token: str | None) -> Settings:
    name = profile or os.environ.get("BLUEPRINT_PROFILE") or DEFAULT_PROFILE
    stored = _read().get(name, {})
    if profile and not stored and not (url or os.environ.get("BLUEPRINT_URL")):
        raise click.UsageError(f"no profile {name!r}: run `blueprint login --profile {name}`")
    return Settings(
        profile=name,
        url=(url or os.environ.get("BLUEPRINT_URL") or stored.get("url") or DEFAULT_URL).rstrip(
            "/"
        ),
        token=token or os.environ.get("BLUEPRINT_TOKEN") or stored.get("token"),
    )
