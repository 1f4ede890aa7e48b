"""The declarative Base of notify-svc: every table lives in the `notify` schema."""

from __future__ import annotations

from notify_svc import SCHEMA
from servicekit.db import make_base
from servicekit.outbox import inbox_table, outbox_table

Base = make_base(SCHEMA)
outbox = outbox_table(Base.metadata)
inbox = inbox_table(Base.metadata)
