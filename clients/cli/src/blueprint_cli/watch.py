"""`blueprint watch PROJECT` (one line per event) and `blueprint board PROJECT` (live columns)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import click
from rich.console import Group
from rich.live import Live
from rich.panel import Panel
from rich.table import Table

from blueprint_cli import output
from blueprint_cli.sse import Frame, follow

COLUMNS = ["blocked", "ready", "in_progress", "in_qc", "rework", "on_hold", "done", "cancelled"]


def describe(frame: Frame) -> str:
    """One human line for an event."""
    envelope = frame.json()
    if not isinstance(envelope, dict):
        return f"{frame.event} {frame.data}"
    data = envelope.get("data") or {}
    when = str(envelope.get("time", ""))[11:19] or datetime.now().strftime("%H:%M:%S")
    what = data.get("node_key") or data.get("task_id") or envelope.get("subject") or ""
    detail = ""
    if "from_status" in data:
        detail = f"{data['from_status']} -> {data['to_status']} ({data.get('action')})"
    elif "assigned_to" in data:
        detail = f"assigned to {data['assigned_to'] or 'nobody'}"
    elif "status" in data:
        detail = str(data["status"])
    return f"{when} {frame.event:<28} {what} {detail}".rstrip()


@click.command()
@click.argument("project_id")
@click.option("--max-events", type=click.IntRange(min=1), help="stop after this many events")
@click.option("--last-event-id", help="resume after this cursor (an event's id)")
@click.pass_context
def watch(
    ctx: click.Context, project_id: str, max_events: int | None, last_event_id: str | None
) -> None:
    """Print each event of a project as it happens (Ctrl-C to stop). Reconnects by itself with
    the last event id, so nothing is missed. With --json: one JSON object per line."""
    seen = 0
    for frame in follow(ctx.obj.api, project_id, last_event_id=last_event_id):
        if frame.event in {"ready", "reset", "dropped"}:
            click.echo(f"{frame.event}: watching project {project_id} ({frame.data})", err=True)
            continue
        if ctx.obj.json:
            click.echo(json.dumps({"event": frame.event, "id": frame.id, "data": frame.json()}))
        else:
            click.echo(describe(frame))
        seen += 1
        if max_events is not None and seen >= max_events:
            return


def render(project: dict[str, Any], tasks: dict[str, dict[str, Any]]) -> Group:
    table = Table(expand=True, show_lines=False)
    by_status: dict[str, list[dict[str, Any]]] = {s: [] for s in COLUMNS}
    for task in tasks.values():
        by_status.setdefault(task["status"], []).append(task)
    shown = [s for s in COLUMNS if by_status[s] or s in COLUMNS[:6]]
    for status in shown:
        table.add_column(f"{status} ({len(by_status[status])})", overflow="fold")
    cards = [[_card(t) for t in sorted(by_status[s], key=lambda t: t["node_key"])] for s in shown]
    for row in range(max((len(c) for c in cards), default=0)):
        table.add_row(*(c[row] if row < len(c) else "" for c in cards))
    title = f"{project['name']} [{project['status']}]"
    return Group(Panel(table, title=title))


def _card(task: dict[str, Any]) -> str:
    who = str(task.get("assigned_to") or "")[:8] or "-"
    due = str(task.get("due_at") or "")[:10]
    return f"{task['node_key']} {who} {due}".strip()


def apply(tasks: dict[str, dict[str, Any]], frame: Frame) -> bool:
    """Update the board from one event; True when something it shows changed."""
    envelope = frame.json()
    data = envelope.get("data") if isinstance(envelope, dict) else None
    task = tasks.get(str((data or {}).get("task_id")))
    if task is None or data is None:
        return False
    if frame.event == "task.status_changed":
        task["status"] = data["to_status"]
    elif frame.event == "task.unblocked":
        task["status"] = "ready"
    elif frame.event == "task.assigned":
        task["assigned_to"] = data.get("assigned_to")
    else:
        return False
    return True


@click.command()
@click.argument("project_id")
@click.option("--once", is_flag=True, help="print the board once and exit")
@click.pass_context
def board(ctx: click.Context, project_id: str, once: bool) -> None:
    """The project's tasks as columns by status, kept up to date from the live stream."""
    api = ctx.obj.api
    project = api.get(f"/api/v1/projects/{project_id}")
    tasks = {t["id"]: t for t in api.pages("/api/v1/tasks", project_id=project_id)}
    if once:
        if ctx.obj.json:
            columns = {
                s: sorted(t["node_key"] for t in tasks.values() if t["status"] == s)
                for s in COLUMNS
            }
            output.as_json({"project": project["id"], "columns": columns})
        else:
            output.console.print(render(project, tasks))
        return
    with Live(render(project, tasks), console=output.console, auto_refresh=False) as live:
        for frame in follow(api, project_id):
            if apply(tasks, frame):
                live.update(render(project, tasks), refresh=True)
