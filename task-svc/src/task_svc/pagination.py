"""Opaque cursors of keyset pagination: the sort values of the last row of a page."""

from __future__ import annotations

import base64
import binascii
from typing import Any

from servicekit.errors import BadRequest
from servicekit.jsonutil import dumps, loads

DEFAULT_LIMIT = 50
MAX_LIMIT = 200


def encode_cursor(values: list[Any]) -> str:
    return base64.urlsafe_b64encode(dumps(values)).decode().rstrip("=")


def cursor_invalid() -> BadRequest:
    return BadRequest(
        "cursor is not valid: pass the next_cursor of the previous page unchanged "
        "(with the same sort)",
        code="CURSOR_INVALID",
        errors=[{"in": "query", "field": "cursor", "message": "not a cursor of this list"}],
    )


def decode_cursor(cursor: str, *, size: int) -> list[Any]:
    """The values of a cursor made by encode_cursor; a 400 problem when it is not one."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        values = loads(raw)
    except (binascii.Error, ValueError):
        values = None
    if not isinstance(values, list) or len(values) != size:
        raise cursor_invalid()
    return values
