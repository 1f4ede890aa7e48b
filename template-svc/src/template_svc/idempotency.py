"""The table of stored answers behind `Idempotency-Key` (the mechanism: servicekit.idempotency).

A row per (org_id, key) holds the hash of the request (method, path, body) and the response
(status, body and headers), written in the same transaction as the change.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import DateTime, Integer, Text, func
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from servicekit.idempotency import IdempotencyTable
from template_svc.db import Base


class IdempotencyRecord(Base):
    __tablename__ = "idempotency_key"

    org_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    key: Mapped[str] = mapped_column(Text, primary_key=True)
    request_hash: Mapped[str] = mapped_column(Text, nullable=False)
    status_code: Mapped[int] = mapped_column(Integer, nullable=False)
    response_body: Mapped[Any] = mapped_column(JSONB, nullable=False)
    response_headers: Mapped[dict[str, str]] = mapped_column(JSONB, nullable=False)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now()
    )


IDEMPOTENCY = IdempotencyTable(
    IdempotencyRecord.__table__, body_column="response_body", headers_column="response_headers"
)
