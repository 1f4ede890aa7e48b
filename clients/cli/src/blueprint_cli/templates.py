"""`blueprint templates ...`: list, show, validate, import, publish, diff."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import click
import yaml

from blueprint_cli import output
from blueprint_cli.api import Api, Refused


def read_document(path: Path) -> tuple[dict[str, Any], bytes, str]:
    """The file parsed, its bytes, and its media type (YAML by extension, else JSON)."""
    raw = path.read_bytes()
    is_yaml = path.suffix.lower() in {".yaml", ".yml"}
    try:
        doc = yaml.safe_load(raw) if is_yaml else json.loads(raw)
    except (ValueError, yaml.YAMLError) as exc:
        kind = "YAML" if is_yaml else "JSON"
        raise click.BadParameter(f"{path} is not valid {kind}: {exc}") from exc
    if not isinstance(doc, dict):
        raise click.BadParameter(f"{path} must hold an object with nodes and edges")
    return doc, raw, "application/yaml" if is_yaml else "application/json"


def template_id(api: Api, ref: str) -> str:
    """A template's id from its id or its key."""
    try:
        return str(uuid.UUID(ref))
    except ValueError:
        pass
    for archived in ("false", "true"):
        for item in api.pages("/api/v1/templates", q=ref, archived=archived):
            if item.get("key") == ref:
                return str(item["id"])
    raise click.BadParameter(f"no template with key {ref!r} in your org", param_hint="TEMPLATE")


@click.group("templates")
def group() -> None:
    """Process templates and their versions."""


@group.command("list")
@click.option("--query", "-q", help="text in the key or name")
@click.option("--archived", is_flag=True, help="archived templates only")
@click.pass_context
def list_(ctx: click.Context, query: str | None, archived: bool) -> None:
    items = ctx.obj.api.pages("/api/v1/templates", q=query, archived=str(archived).lower())
    cols = ["id", "key", "name", "archived"]
    output.emit(ctx, items, columns=cols, title="templates")


@group.command()
@click.argument("template")
@click.option("--version", type=int, help="show this version's graph")
@click.pass_context
def show(ctx: click.Context, template: str, version: int | None) -> None:
    """A template (by id or key) with its versions, or one version with --version."""
    api = ctx.obj.api
    tid = template_id(api, template)
    if version is not None:
        value = api.get(f"/api/v1/templates/{tid}/versions/{version}")
        if ctx.obj.json:
            output.as_json(value)
            return
        output.record(value, ["template_id", "version", "status", "checksum", "published_at"])
        output.table(value["nodes"], ["key", "title", "work_kind", "qc_required"], "nodes")
        output.table(value["edges"], ["blocker", "dependent"], "edges")
        return
    value = api.get(f"/api/v1/templates/{tid}")
    value["versions"] = api.pages(f"/api/v1/templates/{tid}/versions")
    if ctx.obj.json:
        output.as_json(value)
        return
    output.record(value, ["id", "key", "name", "description", "archived"])
    output.table(value["versions"], ["version", "status", "changelog", "published_at"])


@group.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.pass_context
def validate(ctx: click.Context, file: Path) -> None:
    """Check a graph file (JSON or YAML: nodes and edges) without saving it."""
    doc, _, _ = read_document(file)
    graph = {"nodes": doc.get("nodes", []), "edges": doc.get("edges", [])}
    result = ctx.obj.api.post("/api/v1/templates/validate", graph)
    if ctx.obj.json:
        output.as_json(result)
    elif result.get("valid"):
        output.console.print(f"{file}: valid ({len(graph['nodes'])} nodes)")
    else:
        for problem in result.get("problems", []):
            output.error(f"{problem.get('code')}: {problem.get('message') or problem}")
    if not result.get("valid"):
        raise Refused(f"{file} is not a valid graph: {len(result.get('problems', []))} problem(s)")


@group.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--template", "template", help="import into this template (id or key)")
@click.option("--key", help="key of a new template (default: the file's template.key)")
@click.option("--name", help="name of a new template (default: the file's template.name)")
@click.pass_context
def import_(
    ctx: click.Context, file: Path, template: str | None, key: str | None, name: str | None
) -> None:
    """Import a version document (as `export` writes it) as a new draft, creating the template
    when no template of that key exists yet."""
    api: Api = ctx.obj.api
    doc, raw, media = read_document(file)
    info = doc.get("template") or {}
    ref = template or key or info.get("key")
    if not ref:
        raise click.UsageError("say which template: --template ID|KEY, or --key for a new one")
    try:
        tid = template_id(api, ref)
    except click.BadParameter:
        if template:
            raise
        new = {"key": ref, "name": name or info.get("name") or ref}
        created = api.post("/api/v1/templates", new)
        tid = created["id"]
    version = api.request(
        "POST",
        f"/api/v1/templates/{tid}/versions/import",
        content=raw,
        headers={"Content-Type": media},
    )
    output.emit(ctx, {"template_id": tid, **version}, fields=["template_id", "version", "status"])


@group.command()
@click.argument("template")
@click.argument("version", type=int)
@click.pass_context
def publish(ctx: click.Context, template: str, version: int) -> None:
    """Validate and freeze a draft version."""
    api = ctx.obj.api
    tid = template_id(api, template)
    result = api.post(f"/api/v1/templates/{tid}/versions/{version}/publish")
    output.emit(ctx, result, fields=["template_id", "version", "status", "checksum"])


@group.command()
@click.argument("template")
@click.argument("v1", type=int)
@click.argument("v2", type=int)
@click.pass_context
def diff(ctx: click.Context, template: str, v1: int, v2: int) -> None:
    """What changes from version V1 to V2."""
    api = ctx.obj.api
    tid = template_id(api, template)
    result = api.get(f"/api/v1/templates/{tid}/versions/{v1}/diff/{v2}")
    if ctx.obj.json:
        output.as_json(result)
        return
    for part, value in result.items():
        if isinstance(value, list) and value:
            output.console.print(f"[bold]{part}[/]: {len(value)}")
            for item in value:
                output.console.print(f"  {json.dumps(item, default=str)}")
