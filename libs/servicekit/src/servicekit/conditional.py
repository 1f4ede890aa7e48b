"""Optimistic locking over HTTP: the row version a client expects, and the ETag it reads.

A write names the `row_version` it last read either as `expected_row_version` in the body or as
an `If-Match: "<n>"` header (a weak `W/"<n>"` is accepted too). Refusals:

- `If-Match` that is not a quoted positive integer: 400 `IF_MATCH_INVALID`;
- body and header both sent with different values: 400 `IF_MATCH_MISMATCH`;
- neither sent where the write needs one: 428 `ROW_VERSION_REQUIRED`.

The codes of the last two are parameters, so a service whose published contract names them
differently keeps its names. Every function here is plain and synchronous: cheap enough for the
hottest route, and usable from a router or a service alike.
"""

from __future__ import annotations

import re

from servicekit.bounds import INT4_MAX
from servicekit.errors import AppError, BadRequest

_IF_MATCH = re.compile(r'^\s*(?:W/)?"?(\d+)"?\s*$', re.ASCII)

IF_MATCH_INVALID = "IF_MATCH_INVALID"
IF_MATCH_MISMATCH = "IF_MATCH_MISMATCH"
ROW_VERSION_REQUIRED = "ROW_VERSION_REQUIRED"


def etag(row_version: int) -> str:
    """The strong ETag of a row version: `"3"`."""
    return f'"{row_version}"'


def not_modified(if_none_match: str | None, row_version: int) -> bool:
    """Whether an `If-None-Match` header names this row version (so the answer may be 304)."""
    if if_none_match is None:
        return False
    tag = etag(row_version)
    return any(t.strip().removeprefix("W/") in (tag, "*") for t in if_none_match.split(","))


def parse_if_match(if_match: str | None) -> int | None:
    """The row version of an `If-Match` header, None without one; 400 when it is not one."""
    if if_match is None:
        return None
    m = _IF_MATCH.match(if_match)
    if m is None or not 1 <= int(m.group(1)) <= INT4_MAX:
        raise BadRequest(
            f'If-Match must be a row_version in quotes, such as "3"; got {if_match!r}',
            code=IF_MATCH_INVALID,
            errors=[{"in": "header", "field": "If-Match", "message": "a quoted row version"}],
        )
    return int(m.group(1))


def expected_row_version(
    body_value: int | None,
    if_match: str | None,
    *,
    mismatch_code: str = IF_MATCH_MISMATCH,
    mismatch_status: int = 400,
) -> int | None:
    """The row version the client expects, from the body or `If-Match`; None if neither."""
    header_value = parse_if_match(if_match)
    if body_value is None:
        return header_value
    if header_value is not None and header_value != body_value:
        raise AppError(
            f"expected_row_version ({body_value}) and If-Match ({header_value}) disagree: "
            "send one of them",
            code=mismatch_code,
            status=mismatch_status,
            errors=[
                {"in": "header", "field": "If-Match", "message": "disagrees with the body"},
                {
                    "in": "body",
                    "field": "expected_row_version",
                    "message": "disagrees with If-Match",
                },
            ],
        )
    return body_value


def required_row_version(
    body_value: int | None,
    if_match: str | None,
    *,
    required_code: str = ROW_VERSION_REQUIRED,
    mismatch_code: str = IF_MATCH_MISMATCH,
    mismatch_status: int = 400,
) -> int:
    """Like `expected_row_version`, for a write that needs one: 428 when neither was sent."""
    version = expected_row_version(
        body_value, if_match, mismatch_code=mismatch_code, mismatch_status=mismatch_status
    )
    if version is None:
        raise AppError(
            "this change needs the row_version you last read: send expected_row_version in the "
            'body or an If-Match: "<row_version>" header',
            code=required_code,
            status=428,
            title="Precondition required",
            errors=[
                {
                    "in": "body",
                    "field": "expected_row_version",
                    "message": 'required (or an If-Match: "<row_version>" header)',
                }
            ],
        )
    return version


__all__ = [
    "IF_MATCH_INVALID",
    "IF_MATCH_MISMATCH",
    "ROW_VERSION_REQUIRED",
    "etag",
    "expected_row_version",
    "not_modified",
    "parse_if_match",
    "required_row_version",
]
