"""The declarative Base of task-svc: every table lives in the `task` schema."""

from __future__ import annotations

from sqlalchemy.orm import DeclarativeBase

from servicekit.db import service_metadata
from servicekit.outbox import inbox_table, outbox_table
from task_svc import SCHEMA


class Base(DeclarativeBase):
    metadata = service_metadata(SCHEMA)


outbox = outbox_table(Base.metadata)
inbox = inbox_table(Base.metadata)
