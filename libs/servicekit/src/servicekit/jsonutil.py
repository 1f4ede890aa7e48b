"""Fast JSON (orjson) for responses, logs and events."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import orjson
from starlette.responses import JSONResponse


def _default(value: Any) -> Any:
    if isinstance(value, uuid.UUID):  # asyncpg's own UUID type, which orjson does not know
        return str(value)
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, set | frozenset):
        return sorted(value)
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json")
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def dumps(value: Any) -> bytes:
    return orjson.dumps(value, default=_default, option=orjson.OPT_NON_STR_KEYS)


def loads(raw: bytes | str) -> Any:
    return orjson.loads(raw)


class FastJSONResponse(JSONResponse):
    """JSONResponse rendered with orjson (UUIDs, datetimes and Decimals included)."""

    def render(self, content: Any) -> bytes:
        return dumps(content)


__all__ = ["FastJSONResponse", "date", "datetime", "dumps", "loads", "uuid"]
