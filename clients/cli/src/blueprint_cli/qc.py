"""`blueprint qc ...`: inspections: list, claim, result, defect, decide."""

from __future__ import annotations

import uuid
from typing import Any

import click

from blueprint_cli import output

COLUMNS = ["id", "task_id", "round", "status", "inspector_id", "decision"]


def _command(
    ctx: click.Context, inspection_id: str, what: str, body: dict[str, Any], method: str = "POST"
) -> None:
    api = ctx.obj.api
    current = api.get(f"/api/v1/inspections/{inspection_id}")
    payload = {**body, "expected_row_version": current["row_version"]}
    payload["client_event_id"] = str(uuid.uuid4())
    result = api.request(method, f"/api/v1/inspections/{inspection_id}/{what}", json=payload)
    output.emit(ctx, result, fields=[*COLUMNS, "row_version", "results", "defects"])


@click.group("qc")
def group() -> None:
    """QC inspections."""


@group.command("list")
@click.option("--status", help="pending, claimed, decided ...")
@click.option("--project", "project_id")
@click.option("--task", "task_id")
@click.pass_context
def list_(
    ctx: click.Context, status: str | None, project_id: str | None, task_id: str | None
) -> None:
    items = ctx.obj.api.pages(
        "/api/v1/inspections", limit=100, status=status, project_id=project_id, task_id=task_id
    )
    output.emit(ctx, items, columns=COLUMNS, title="inspections")


@group.command()
@click.argument("inspection_id")
@click.pass_context
def claim(ctx: click.Context, inspection_id: str) -> None:
    """Take a pending inspection."""
    _command(ctx, inspection_id, "claim", {})


@group.command()
@click.argument("inspection_id")
@click.argument("code")
@click.argument("result", type=click.Choice(["pass", "fail", "na"]))
@click.option("--note")
@click.pass_context
def result(
    ctx: click.Context, inspection_id: str, code: str, result: str, note: str | None
) -> None:
    """Answer one checklist item."""
    item: dict[str, Any] = {"code": code, "result": result}
    if note:
        item["note"] = note
    _command(ctx, inspection_id, "results", {"results": [item]}, method="PUT")


@group.command()
@click.argument("inspection_id")
@click.option("--code", required=True)
@click.option("--severity", required=True, type=click.Choice(["minor", "major", "critical"]))
@click.option("--description", required=True)
@click.pass_context
def defect(
    ctx: click.Context, inspection_id: str, code: str, severity: str, description: str
) -> None:
    """Record a defect."""
    body = {"code": code, "severity": severity, "description": description}
    _command(ctx, inspection_id, "defects", body)


@group.command()
@click.argument("inspection_id")
@click.argument("decision", type=click.Choice(["accept", "reject"]))
@click.option("--reason")
@click.option("--rework-from", "rework_from", help="reject: the upstream task to redo")
@click.pass_context
def decide(
    ctx: click.Context,
    inspection_id: str,
    decision: str,
    reason: str | None,
    rework_from: str | None,
) -> None:
    """Accept or reject the inspected work."""
    body: dict[str, Any] = {"decision": decision}
    if reason:
        body["reason"] = reason
    if rework_from:
        body["rework_from_task_id"] = rework_from
    _command(ctx, inspection_id, "decision", body)
