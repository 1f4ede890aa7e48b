"""`blueprint tasks ...`: list, show, act (an action of the state machine)."""

from __future__ import annotations

import json
from typing import Any

import click

from blueprint_cli import output

ACTIONS = [
    "assign",
    "unassign",
    "start",
    "pause",
    "resume",
    "complete",
    "reopen",
    "cancel",
    "restore",
]
COLUMNS = ["id", "node_key", "title", "status", "assigned_to", "due_at", "open_blockers"]


@click.group("tasks")
def group() -> None:
    """Tasks and their state machine."""


@group.command("list")
@click.option("--project", "project_id", required=True, help="project id")
@click.option("--status", help="e.g. ready, or several: ready,in_progress")
@click.option("--assignee", help="a user id, or 'me'")
@click.pass_context
def list_(ctx: click.Context, project_id: str, status: str | None, assignee: str | None) -> None:
    items = ctx.obj.api.pages(
        "/api/v1/tasks", project_id=project_id, status=status, assignee=assignee
    )
    output.emit(ctx, items, columns=COLUMNS, title="tasks")


@group.command()
@click.argument("task_id")
@click.pass_context
def show(ctx: click.Context, task_id: str) -> None:
    """A task with its blockers, dependents and the actions you may take."""
    task = ctx.obj.api.get(f"/api/v1/tasks/{task_id}")
    if ctx.obj.json:
        output.as_json(task)
        return
    output.record(task, [*COLUMNS, "row_version", "allowed_actions"])
    output.table(task["blockers"], ["id", "title", "status"], "blocked by")


@group.command()
@click.argument("task_id")
@click.argument("action", type=click.Choice(ACTIONS))
@click.option("--to", "assign_to", help="assign: the user id to assign")
@click.option("--reason", help="pause, reopen, cancel, restore: why")
@click.option("--note", help="complete: a note")
@click.option("--payload", "raw_payload", help="any other payload fields, as a JSON object")
@click.pass_context
def act(
    ctx: click.Context,
    task_id: str,
    action: str,
    assign_to: str | None,
    reason: str | None,
    note: str | None,
    raw_payload: str | None,
) -> None:
    """Apply ACTION to a task. The task's row version is read first and a fresh client_event_id
    is sent; a refusal prints the API's problem (exit code 1)."""
    payload: dict[str, Any] = {}
    if raw_payload:
        try:
            payload = json.loads(raw_payload)
        except ValueError as exc:
            raise click.BadParameter(f"not JSON: {exc}", param_hint="--payload") from exc
        if not isinstance(payload, dict):
            raise click.BadParameter("must be a JSON object", param_hint="--payload")
    for key, value in (("assign_to", assign_to), ("reason", reason), ("note", note)):
        if value is not None:
            payload[key] = value
    api = ctx.obj.api
    task = api.get(f"/api/v1/tasks/{task_id}")
    body: dict[str, Any] = {"action": action}
    if payload:
        body["payload"] = payload
    result = api.command(
        f"/api/v1/tasks/{task_id}/transitions", body, row_version=task["row_version"]
    )
    if ctx.obj.json:
        output.as_json(result)
        return
    after = result.get("task") or {}
    output.console.print(
        f"{after.get('title', task_id)}: {result['from_status']} -> {result['to_status']} "
        f"({action}); row_version {result['row_version']}; next: "
        f"{', '.join(after.get('allowed_actions') or []) or 'nothing for you'}"
    )
