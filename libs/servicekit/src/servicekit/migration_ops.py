"""Migration building blocks shared by every service's first migration."""

from __future__ import annotations

from typing import Any

from sqlalchemy import MetaData

from servicekit.db import NAMING_CONVENTION
from servicekit.outbox import create_outbox_sql, drop_outbox_sql, inbox_table, outbox_table


def create_outbox_and_inbox(op: Any, schema: str) -> None:
    metadata = MetaData(schema=schema, naming_convention=NAMING_CONVENTION)
    bind = op.get_bind()
    outbox_table(metadata).create(bind)
    inbox_table(metadata).create(bind)
    for stmt in create_outbox_sql(schema):
        op.execute(stmt)


def drop_outbox_and_inbox(op: Any, schema: str) -> None:
    for stmt in drop_outbox_sql(schema):
        op.execute(stmt)
    op.drop_table("inbox", schema=schema)
    op.drop_table("outbox", schema=schema)
