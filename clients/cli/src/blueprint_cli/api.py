"""The HTTP side: one client per command, problems turned into exit code 1 with their detail."""

from __future__ import annotations

import uuid
from typing import Any, NoReturn

import click
import httpx

from blueprint_cli import output
from blueprint_cli.config import Settings


class Refused(click.ClickException):
    """The API said no (a 4xx or 5xx problem) or could not be reached: exit code 1."""

    exit_code = 1

    def __init__(self, message: str, problem: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.problem = problem or {}

    def show(self, file: Any = None) -> None:
        """The problem's status, code and detail on stderr; with `--json`, the whole problem
        document on stdout too, for scripts."""
        click.echo(f"refused: {self.message}", err=True)
        if output.JSON_MODE and self.problem:
            output.as_json(self.problem)


def refuse(resp: httpx.Response) -> NoReturn:
    try:
        problem = resp.json()
    except ValueError:
        problem = {}
    if not isinstance(problem, dict):
        problem = {}
    code = problem.get("code") or f"HTTP_{resp.status_code}"
    detail = problem.get("detail") or resp.text[:300] or resp.reason_phrase
    raise Refused(f"{resp.status_code} {code}: {detail}", problem)


class Api:
    def __init__(self, settings: Settings, *, timeout: float = 30.0) -> None:
        if not settings.token:
            raise click.UsageError(
                "no token: run `blueprint login --url URL --token TOKEN` or set BLUEPRINT_TOKEN"
            )
        self.settings = settings
        self.http = httpx.Client(
            base_url=settings.url,
            headers={"Authorization": f"Bearer {settings.token}"},
            timeout=timeout,
            trust_env=False,
        )

    def request(self, method: str, path: str, **kw: Any) -> Any:
        try:
            resp = self.http.request(method, path, **kw)
        except httpx.HTTPError as exc:
            raise Refused(f"cannot reach {self.settings.url}: {exc}") from exc
        if resp.status_code >= 400:
            refuse(resp)
        if not resp.content:
            return None
        if "json" in resp.headers.get("content-type", ""):
            return resp.json()
        return resp.text

    def get(self, path: str, **params: Any) -> Any:
        clean = {k: v for k, v in params.items() if v is not None}
        return self.request("GET", path, params=clean)

    def post(self, path: str, body: Any = None, **kw: Any) -> Any:
        return self.request("POST", path, json=body, **kw)

    def command(self, path: str, body: dict[str, Any], *, row_version: int) -> Any:
        """A versioned command: the row version read just before, a fresh client_event_id."""
        payload = {**body, "expected_row_version": row_version}
        payload["client_event_id"] = str(uuid.uuid4())
        return self.post(path, payload)

    def pages(self, path: str, *, limit: int = 200, max_items: int = 10_000, **params: Any) -> Any:
        """Every item of a cursor-paginated list (up to `max_items`)."""
        items: list[Any] = []
        cursor = None
        while len(items) < max_items:
            page = self.get(path, limit=limit, cursor=cursor, **params)
            items += page["items"]
            cursor = page.get("next_cursor")
            if not cursor:
                break
        return items
