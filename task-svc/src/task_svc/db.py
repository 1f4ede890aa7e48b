"""The declarative Base of task-svc: every table lives in the `task` schema."""

from __future__ import annotations

from servicekit.db import make_base
from servicekit.outbox import inbox_table, outbox_table
from task_svc import SCHEMA

Base = make_base(SCHEMA)
outbox = outbox_table(Base.metadata)
inbox = inbox_table(Base.metadata)
