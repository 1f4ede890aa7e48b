"""servicekit.conditional: If-Match vs expected_row_version, 428 without either, 409 vs 412 for a
stale version, ETags."""

from __future__ import annotations

import pytest

from servicekit.conditional import (
    ExpectedVersion,
    check_version,
    etag,
    expected_version,
    if_match_version,
    not_modified,
    required_version,
    version_conflict,
)
from servicekit.errors import AppError, VersionConflict


@pytest.mark.parametrize(
    ("header", "expected"),
    [(None, None), ('"3"', 3), ("3", 3), ('W/"7"', 7), ('  "12" ', 12)],
)
def test_if_match_reads_a_quoted_row_version(header: str | None, expected: int | None) -> None:
    named = if_match_version(header)
    assert (named.version if named is not None else None) == expected


@pytest.mark.parametrize("header", ["abc", '"0"', '"-1"', '"3.5"', "*", '"1", "2"', "", '"٣"'])
def test_if_match_that_is_not_a_row_version_is_400(header: str) -> None:
    with pytest.raises(AppError) as err:
        if_match_version(header)
    assert (err.value.status, err.value.code) == (400, "IF_MATCH_INVALID")
    assert err.value.extra["errors"][0]["field"] == "If-Match"


@pytest.mark.parametrize(
    ("body", "header", "expected"),
    [(None, None, None), (4, None, 4), (None, '"4"', 4), (4, '"4"', 4)],
)
def test_expected_version_from_body_or_header(
    body: int | None, header: str | None, expected: int | None
) -> None:
    named = expected_version(body, header)
    assert (named.version if named is not None else None) == expected


def test_body_and_header_that_disagree_are_refused() -> None:
    with pytest.raises(AppError) as err:
        expected_version(4, '"5"')
    assert (err.value.status, err.value.code) == (400, "IF_MATCH_MISMATCH")


@pytest.mark.parametrize(
    ("body", "header", "expected"),
    [
        (None, None, None),
        (4, None, ExpectedVersion(4)),
        (None, '"4"', ExpectedVersion(4, from_header=True)),
        (4, '"4"', ExpectedVersion(4, from_header=True)),
        (None, 'W/"4"', ExpectedVersion(4, from_header=True, weak=True)),
    ],
)
def test_expected_version_says_where_the_version_came_from(
    body: int | None, header: str | None, expected: ExpectedVersion | None
) -> None:
    assert expected_version(body, header) == expected


def test_a_stale_body_version_is_409_and_a_stale_if_match_is_412() -> None:
    check_version(ExpectedVersion(3), current_row_version=3, current_status="draft", what="x")
    check_version(None, current_row_version=3, current_status="draft", what="x")
    with pytest.raises(VersionConflict) as body:
        check_version(
            required_version(2, None),
            current_row_version=3,
            current_status="draft",
            what="version 1",
        )
    assert (body.value.status, body.value.code) == (409, "VERSION_CONFLICT")
    assert body.value.extra == {"current_row_version": 3, "current_status": "draft"}
    assert body.value.headers["ETag"] == '"3"'
    with pytest.raises(VersionConflict) as header:
        check_version(
            required_version(None, '"2"'),
            current_row_version=3,
            current_status="draft",
            what="version 1",
        )
    assert (header.value.status, header.value.code) == (412, "VERSION_CONFLICT")
    assert header.value.title == "Precondition failed"
    assert header.value.extra == {"current_row_version": 3, "current_status": "draft"}


def test_a_weak_if_match_never_matches() -> None:
    weak = required_version(None, 'W/"3"')
    with pytest.raises(VersionConflict) as err:
        check_version(weak, current_row_version=3, current_status="draft", what="version 1")
    assert err.value.status == 412
    assert "weak" in err.value.detail


def test_required_version_is_428_without_either() -> None:
    with pytest.raises(AppError) as err:
        required_version(None, None)
    assert (err.value.status, err.value.code) == (428, "ROW_VERSION_REQUIRED")
    assert err.value.extra["errors"][0]["field"] == "expected_row_version"
    with pytest.raises(AppError) as named:
        required_version(None, None, required_code="PRECONDITION_REQUIRED")
    assert (named.value.status, named.value.code) == (428, "PRECONDITION_REQUIRED")
    assert required_version(None, '"2"') == ExpectedVersion(2, from_header=True)


def test_version_conflict_returns_the_refusal_a_pure_rule_reports() -> None:
    assert (
        version_conflict(
            ExpectedVersion(3), current_row_version=3, current_status="todo", what="task t"
        )
        is None
    )
    stale = version_conflict(
        ExpectedVersion(2, from_header=True),
        current_row_version=3,
        current_status="todo",
        what="task t",
    )
    assert stale is not None and (stale.status, stale.current_row_version) == (412, 3)
    body = version_conflict(
        ExpectedVersion(2), current_row_version=3, current_status="todo", what="task t"
    )
    assert body is not None and body.status == 409 and "task t" in body.detail


def test_etag_and_if_none_match() -> None:
    assert etag(3) == '"3"'
    assert if_match_version(etag(3)) == ExpectedVersion(3, from_header=True)
    assert not_modified('"3"', 3)
    assert not_modified('"1", W/"3"', 3)
    assert not_modified("*", 3)
    assert not not_modified('"2"', 3)
    assert not not_modified(None, 3)
