"""The `blueprint` command: global options, `login`, and the command groups."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field

import click

from blueprint_cli import output
from blueprint_cli.api import Api
from blueprint_cli.config import DEFAULT_PROFILE, Settings, resolve, save_profile


@dataclass
class Context:
    settings: Settings
    json: bool
    _api: Api | None = field(default=None, repr=False)

    @property
    def api(self) -> Api:
        if self._api is None:
            self._api = Api(self.settings)
        return self._api


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--profile", help="profile to use (env BLUEPRINT_PROFILE; default 'default')")
@click.option("--url", help="gateway URL, overriding the profile's (env BLUEPRINT_URL)")
@click.option("--token", help="bearer token, overriding the profile's (env BLUEPRINT_TOKEN)")
@click.option("--json", "json_", is_flag=True, help="machine-readable JSON output")
@click.pass_context
def cli(
    ctx: click.Context, profile: str | None, url: str | None, token: str | None, json_: bool
) -> None:
    """Blueprint from the terminal. Exit codes: 0 done, 1 refused by the API (the problem is
    printed) or unreachable, 2 wrong usage."""
    output.JSON_MODE = json_
    if ctx.invoked_subcommand == "login":
        ctx.obj = Context(Settings(profile or DEFAULT_PROFILE, url or "", token), json_)
        return
    ctx.obj = Context(resolve(profile, url, token), json_)


@cli.command()
@click.option("--url", "login_url", default="http://localhost:8080", show_default=True)
@click.option("--token", "login_token", help="the JWT; read from stdin when not given")
@click.option("--profile", "login_profile", help="profile name (default: the global one)")
@click.pass_obj
def login(obj: Context, login_url: str, login_token: str | None, login_profile: str | None) -> None:
    """Store a profile: `make -s token | tail -1 | blueprint login --url http://localhost:8080`.

    The token is checked against the API before it is saved (file mode 0600)."""
    token = login_token or obj.settings.token
    if not token:
        if sys.stdin.isatty():
            raise click.UsageError("give --token, or pipe the token in")
        lines = [ln.strip() for ln in sys.stdin.read().splitlines() if ln.strip()]
        token = lines[-1] if lines else ""
    if not token:
        raise click.UsageError("the token is empty")
    name = login_profile or obj.settings.profile
    url = obj.settings.url or login_url
    api = Api(Settings(name, url.rstrip("/"), token))
    api.get("/api/v1/projects", limit=1)  # a 401 here is exit code 1, nothing saved
    path = save_profile(name, url=url, token=token)
    if obj.json:
        output.as_json({"profile": name, "url": url.rstrip("/"), "file": str(path)})
    else:
        output.console.print(f"profile [bold]{name}[/] saved in {path} ({url})")


def _register() -> None:
    from blueprint_cli import projects, qc, tasks, templates, watch, webhooks

    cli.add_command(templates.group)
    cli.add_command(projects.group)
    cli.add_command(tasks.group)
    cli.add_command(qc.group)
    cli.add_command(webhooks.group)
    cli.add_command(watch.watch)
    cli.add_command(watch.board)


_register()


def main() -> None:
    cli(prog_name="blueprint")
