"""The declarative Base of notify-svc: every table lives in the `notify` schema."""

from __future__ import annotations

from sqlalchemy.orm import DeclarativeBase

from notify_svc import SCHEMA
from servicekit.db import service_metadata
from servicekit.outbox import inbox_table, outbox_table


class Base(DeclarativeBase):
    metadata = service_metadata(SCHEMA)


outbox = outbox_table(Base.metadata)
inbox = inbox_table(Base.metadata)
