"""`blueprint projects ...`: start, list, show."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import click

from blueprint_cli import output
from blueprint_cli.templates import template_id


@click.group("projects")
def group() -> None:
    """Projects started from a published template version."""


@group.command()
@click.option("--template", "template", required=True, help="template id or key")
@click.option("--version", type=int, help="template version (default: the latest published)")
@click.option("--deliverables", type=click.IntRange(1, 200), default=1, show_default=True)
@click.option("--name", help="project name (default: '<key> <date>')")
@click.option("--start-at", type=click.DateTime(), help="start time, UTC (default: now)")
@click.option("--due-at", type=click.DateTime(), help="due time, UTC")
@click.pass_context
def start(
    ctx: click.Context,
    template: str,
    version: int | None,
    deliverables: int,
    name: str | None,
    start_at: datetime | None,
    due_at: datetime | None,
) -> None:
    """Start a project: every task of every deliverable is created at once."""
    api = ctx.obj.api
    body: dict[str, Any] = {
        "name": name or f"{template} {datetime.now(UTC):%Y-%m-%d %H:%M}",
        "template_id": template_id(api, template),
        "deliverables": deliverables,
        "start_at": _utc(start_at or datetime.now(UTC)),
    }
    if version is not None:
        body["template_version"] = version
    if due_at is not None:
        body["due_at"] = _utc(due_at)
    project = api.post("/api/v1/projects", body)
    output.emit(ctx, project, fields=["id", "name", "status", "template", "task_count", "start_at"])


@group.command("list")
@click.option("--status", help="active, on_hold, completed, cancelled (comma-separated)")
@click.pass_context
def list_(ctx: click.Context, status: str | None) -> None:
    items = ctx.obj.api.pages("/api/v1/projects", status=status)
    for item in items:
        item["template_key"] = (item.get("template") or {}).get("key")
    cols = ["id", "name", "status", "template_key", "start_at", "due_at"]
    output.emit(ctx, items, columns=cols, title="projects")


@group.command()
@click.argument("project_id")
@click.pass_context
def show(ctx: click.Context, project_id: str) -> None:
    """A project with its deliverables and task counts."""
    project = ctx.obj.api.get(f"/api/v1/projects/{project_id}")
    if ctx.obj.json:
        output.as_json(project)
        return
    output.record(
        project,
        ["id", "name", "status", "template", "start_at", "due_at", "task_count", "task_counts"],
    )
    output.table(project["deliverables"], ["id", "serial", "status"], "deliverables")


def _utc(value: datetime) -> str:
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
