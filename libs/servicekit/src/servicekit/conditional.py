"""Optimistic locking over HTTP: the row version a client expects, and the ETag it reads.

A write names the `row_version` it last read either as `expected_row_version` in the body or as
an `If-Match: "<n>"` header. `expected_version` / `required_version` say which: an
`ExpectedVersion` with `.version` and `.from_header`. `check_version` compares it with the row
under its lock and raises the one `VersionConflict`:

- a stale `expected_row_version` in the body: 409 `VERSION_CONFLICT`;
- a stale `If-Match`: 412 Precondition Failed, code `VERSION_CONFLICT` (RFC 9110). If-Match uses
  the strong comparison, so a weak tag (`W/"3"`) never matches and is a 412 too.

Refusals before any row is read:

- `If-Match` that is not a quoted positive integer: 400 `IF_MATCH_INVALID`;
- body and header both sent with different values: 400 `IF_MATCH_MISMATCH`;
- neither sent where the write needs one: 428 `ROW_VERSION_REQUIRED` (the code is a parameter, so
  a service whose published contract names it differently keeps its name).

Every function here is plain and synchronous: cheap enough for the hottest route, and usable from
a router or a service alike.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from servicekit.bounds import INT4_MAX
from servicekit.errors import AppError, BadRequest, VersionConflict

_IF_MATCH = re.compile(r'^\s*(W/)?"?(\d+)"?\s*$', re.ASCII)

IF_MATCH_INVALID = "IF_MATCH_INVALID"
IF_MATCH_MISMATCH = "IF_MATCH_MISMATCH"
ROW_VERSION_REQUIRED = "ROW_VERSION_REQUIRED"


@dataclass(frozen=True, slots=True)
class ExpectedVersion:
    """The row version a write expects, and whether an `If-Match` header named it."""

    version: int
    from_header: bool = False
    weak: bool = False  # a weak If-Match tag: never matches under the strong comparison

    def matches(self, current_row_version: int) -> bool:
        return not self.weak and self.version == current_row_version


def etag(row_version: int) -> str:
    """The strong ETag of a row version: `"3"`."""
    return f'"{row_version}"'


def not_modified(if_none_match: str | None, row_version: int) -> bool:
    """Whether an `If-None-Match` header names this row version (so the answer may be 304).

    If-None-Match uses the weak comparison (RFC 9110 13.1.2), so `W/"3"` names version 3.
    """
    if if_none_match is None:
        return False
    tag = etag(row_version)
    return any(t.strip().removeprefix("W/") in (tag, "*") for t in if_none_match.split(","))


def if_match_version(if_match: str | None) -> ExpectedVersion | None:
    """The version an `If-Match` header names, None without one; 400 when it names none."""
    if if_match is None:
        return None
    m = _IF_MATCH.match(if_match)
    if m is None or not 1 <= int(m.group(2)) <= INT4_MAX:
        raise BadRequest(
            f'If-Match must be a row_version in quotes, such as "3"; got {if_match!r}',
            code=IF_MATCH_INVALID,
            errors=[{"in": "header", "field": "If-Match", "message": "a quoted row version"}],
        )
    return ExpectedVersion(int(m.group(2)), from_header=True, weak=m.group(1) is not None)


def expected_version(body_value: int | None, if_match: str | None) -> ExpectedVersion | None:
    """The row version the client expects, from the body or `If-Match`; None if neither."""
    header = if_match_version(if_match)
    if body_value is None or header is None:
        return header if body_value is None else ExpectedVersion(body_value)
    if header.version != body_value:
        raise AppError(
            f"expected_row_version ({body_value}) and If-Match ({header.version}) disagree: "
            "send one of them",
            code=IF_MATCH_MISMATCH,
            status=400,
            errors=[
                {"in": "header", "field": "If-Match", "message": "disagrees with the body"},
                {
                    "in": "body",
                    "field": "expected_row_version",
                    "message": "disagrees with If-Match",
                },
            ],
        )
    return header


def required_version(
    body_value: int | None, if_match: str | None, *, required_code: str = ROW_VERSION_REQUIRED
) -> ExpectedVersion:
    """Like `expected_version`, for a write that needs one: 428 when neither was sent."""
    version = expected_version(body_value, if_match)
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


def version_conflict(
    expected: ExpectedVersion | None,
    *,
    current_row_version: int,
    current_status: str,
    what: str,
) -> VersionConflict | None:
    """The refusal of a write whose expected version is not the row's, None when it matches:
    409 (body) or 412 (If-Match). For a pure rule that returns its refusals rather than raising.

    `what` names the row in the message, e.g. "inspection 5b0c...". No expectation: no refusal.
    """
    if expected is None or expected.matches(current_row_version):
        return None
    if expected.weak:
        detail = (
            f'If-Match W/"{expected.version}" is a weak tag, which never matches a write: send '
            f"the strong ETag {etag(current_row_version)} of the {what} you read"
        )
    else:
        detail = (
            f"{what} is at row_version {current_row_version} (status '{current_status}'), "
            f"not {expected.version}: read it again and retry"
        )
    return VersionConflict(
        detail,
        current_row_version=current_row_version,
        current_status=current_status,
        from_header=expected.from_header,
    )


def check_version(
    expected: ExpectedVersion | None,
    *,
    current_row_version: int,
    current_status: str,
    what: str,
) -> None:
    """Raise `version_conflict`'s refusal, if any."""
    conflict = version_conflict(
        expected,
        current_row_version=current_row_version,
        current_status=current_status,
        what=what,
    )
    if conflict is not None:
        raise conflict


__all__ = [
    "IF_MATCH_INVALID",
    "IF_MATCH_MISMATCH",
    "ROW_VERSION_REQUIRED",
    "ExpectedVersion",
    "check_version",
    "etag",
    "expected_version",
    "if_match_version",
    "not_modified",
    "required_version",
    "version_conflict",
]
