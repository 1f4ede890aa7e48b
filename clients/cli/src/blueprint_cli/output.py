"""What a command prints: a rich table for people, JSON for scripts (`--json`)."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Any

import click
from rich.console import Console
from rich.table import Table

# soft_wrap: a message is one line however long (a path, an id), so scripts can grep it; only
# tables are laid out to the terminal's width.
console = Console(highlight=False, soft_wrap=True)
JSON_MODE = False  # set by the root command's --json


def as_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, sort_keys=True, default=str))


def table(rows: Sequence[dict[str, Any]], columns: Sequence[str], title: str | None = None) -> None:
    t = Table(title=title, show_lines=False)
    for col in columns:
        if col == "id" or col.endswith("_id"):  # ids are copied into the next command: whole
            t.add_column(col, no_wrap=True, min_width=36)
        else:
            t.add_column(col, overflow="fold")
    for row in rows:
        t.add_row(*(_cell(row.get(col)) for col in columns))
    console.print(t)


def record(value: dict[str, Any], fields: Sequence[str] | None = None) -> None:
    t = Table(show_header=False, box=None)
    t.add_column(style="bold")
    t.add_column()
    for key in fields or list(value):
        t.add_row(key, _cell(value.get(key)))
    console.print(t)


def emit(
    ctx: click.Context,
    value: Any,
    *,
    columns: Sequence[str] | None = None,
    fields: Sequence[str] | None = None,
    title: str | None = None,
) -> None:
    """Print `value` the way the caller asked for: JSON, a table of rows, or one record."""
    if ctx.obj.json:
        as_json(value)
    elif columns is not None:
        table(value, columns, title)
    elif isinstance(value, dict):
        record(value, fields)
    else:
        console.print(value)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, dict | list):
        return json.dumps(value, default=str)
    return str(value)


def error(message: str) -> None:
    click.echo(message, err=True)
    sys.stderr.flush()
