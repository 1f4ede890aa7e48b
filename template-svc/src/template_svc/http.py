"""Small HTTP helpers shared by the routers: If-Match, ETags and opaque cursors."""

from __future__ import annotations

import base64
import binascii

from servicekit.errors import AppError, BadRequest


def etag(row_version: int) -> str:
    return f'"{row_version}"'


def expected_version(body_value: int | None, if_match: str | None) -> int | None:
    """The row_version the client expects, from the body or an `If-Match: "<n>"` header."""
    header_value: int | None = None
    if if_match is not None:
        raw = if_match.strip()
        if raw.startswith("W/"):
            raw = raw[2:]
        raw = raw.strip('"')
        if not raw.isdigit():
            raise BadRequest(
                f'If-Match must be a row version in quotes, like "3"; got {if_match!r}',
                code="IF_MATCH_INVALID",
            )
        header_value = int(raw)
    if body_value is not None and header_value is not None and body_value != header_value:
        raise BadRequest(
            f"expected_row_version ({body_value}) and If-Match ({header_value}) disagree: "
            "send one of them",
            code="IF_MATCH_INVALID",
        )
    return body_value if body_value is not None else header_value


def require_expected(value: int | None) -> int:
    if value is None:
        raise AppError(
            'this change needs the row version you last read: send expected_row_version in the '
            'body or an If-Match: "<row_version>" header',
            code="PRECONDITION_REQUIRED",
            status=428,
            title="Precondition required",
        )
    return value


def encode_cursor(value: str) -> str:
    return base64.urlsafe_b64encode(value.encode()).decode().rstrip("=")


def _bad_cursor() -> BadRequest:
    return BadRequest(
        "cursor is not one this API returned: pass next_cursor from the previous page",
        code="CURSOR_INVALID",
    )


def decode_cursor(cursor: str | None) -> str | None:
    if cursor is None:
        return None
    try:
        value = base64.urlsafe_b64decode(
            (cursor + "=" * (-len(cursor) % 4)).encode("ascii")
        ).decode()
    except (binascii.Error, UnicodeError, ValueError) as exc:
        raise _bad_cursor() from exc
    if not value or encode_cursor(value) != cursor:
        raise _bad_cursor()
    return value


def decode_int_cursor(cursor: str | None) -> int | None:
    value = decode_cursor(cursor)
    if value is None:
        return None
    if not value.isdigit():
        raise _bad_cursor()
    return int(value)
