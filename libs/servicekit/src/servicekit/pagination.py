"""Keyset pagination: `limit` and `cursor` in, `items` and `next_cursor` out.

A cursor is opaque to clients: the sort values of the last row of a page, as a JSON array in
unpadded URL-safe base64. A list route declares `limit: Limit = DEFAULT_LIMIT` and
`cursor: Cursor = None`; its service fetches `limit + 1` rows, cuts them with `cut_page`, decodes
the incoming cursor with `decode_cursor(cursor, as_datetime, as_uuid)` (one parser per value, in
order) and answers a `CursorPage` subclass. A cursor that is not one the API made is a 400
`CURSOR_INVALID` naming the `cursor` query parameter.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Query
from pydantic import BaseModel

from servicekit.errors import BadRequest
from servicekit.jsonutil import dumps, loads

DEFAULT_LIMIT = 50
MAX_LIMIT = 200

Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description=f"items per page, 1 to {MAX_LIMIT}")]
Cursor = Annotated[str | None, Query(description="next_cursor of the previous page")]

T = TypeVar("T")


class CursorPage(BaseModel, Generic[T]):
    """A page of a list; `next_cursor` is null on the last page."""

    items: list[T]
    next_cursor: str | None


def cut_page(rows: Sequence[T], limit: int) -> tuple[list[T], T | None]:
    """(the page, its last row when another page follows) from `limit + 1` fetched rows."""
    page = list(rows[:limit])
    return page, (page[-1] if len(rows) > limit and page else None)


def encode_cursor(values: Sequence[Any]) -> str:
    """A cursor holding these sort values (datetimes and UUIDs become strings)."""
    return base64.urlsafe_b64encode(dumps(list(values))).decode().rstrip("=")


def cursor_invalid() -> BadRequest:
    return BadRequest(
        "cursor is not valid: pass the next_cursor of the previous page unchanged "
        "(with the same filters and sort)",
        code="CURSOR_INVALID",
        errors=[{"in": "query", "field": "cursor", "message": "not a cursor of this list"}],
    )


def decode_cursor(cursor: str | None, *parsers: Callable[[Any], Any]) -> tuple[Any, ...] | None:
    """The values of a cursor made by `encode_cursor`, each read by its parser; None for none.

    A parser raises ValueError or TypeError for a value it does not accept; that, a cursor of
    another length or one that is not base64 JSON at all, is a 400 `CURSOR_INVALID`.
    """
    if not cursor:
        return None
    try:
        values = loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if not isinstance(values, list) or len(values) != len(parsers):
            raise ValueError("not a cursor")
        return tuple(parse(value) for parse, value in zip(parsers, values, strict=True))
    except (binascii.Error, ValueError, TypeError):
        raise cursor_invalid() from None


def as_int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError("not an integer")
    return value


def as_str(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError("not a string")
    return value


def as_datetime(value: Any) -> datetime:
    return datetime.fromisoformat(as_str(value))


def as_uuid(value: Any) -> uuid.UUID:
    return uuid.UUID(as_str(value))


__all__ = [
    "DEFAULT_LIMIT",
    "MAX_LIMIT",
    "Cursor",
    "CursorPage",
    "Limit",
    "as_datetime",
    "as_int",
    "as_str",
    "as_uuid",
    "cursor_invalid",
    "cut_page",
    "decode_cursor",
    "encode_cursor",
]
