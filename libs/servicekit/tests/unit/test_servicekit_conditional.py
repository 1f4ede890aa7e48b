"""servicekit.conditional: If-Match vs expected_row_version, 428 without either, ETags."""

from __future__ import annotations

import pytest

from servicekit.conditional import (
    etag,
    expected_row_version,
    not_modified,
    parse_if_match,
    required_row_version,
)
from servicekit.errors import AppError


@pytest.mark.parametrize(
    ("header", "expected"),
    [(None, None), ('"3"', 3), ("3", 3), ('W/"7"', 7), ('  "12" ', 12)],
)
def test_if_match_reads_a_quoted_row_version(header: str | None, expected: int | None) -> None:
    assert parse_if_match(header) == expected


@pytest.mark.parametrize("header", ["abc", '"0"', '"-1"', '"3.5"', "*", '"1", "2"', "", '"٣"'])
def test_if_match_that_is_not_a_row_version_is_400(header: str) -> None:
    with pytest.raises(AppError) as err:
        parse_if_match(header)
    assert (err.value.status, err.value.code) == (400, "IF_MATCH_INVALID")
    assert err.value.extra["errors"][0]["field"] == "If-Match"


@pytest.mark.parametrize(
    ("body", "header", "expected"),
    [(None, None, None), (4, None, 4), (None, '"4"', 4), (4, '"4"', 4)],
)
def test_expected_row_version_from_body_or_header(
    body: int | None, header: str | None, expected: int | None
) -> None:
    assert expected_row_version(body, header) == expected


def test_body_and_header_that_disagree_are_refused() -> None:
    with pytest.raises(AppError) as err:
        expected_row_version(4, '"5"')
    assert (err.value.status, err.value.code) == (400, "IF_MATCH_MISMATCH")


def test_the_disagreement_code_is_a_parameter() -> None:
    with pytest.raises(AppError) as err:
        required_row_version(4, '"5"', mismatch_code="ROW_VERSION_AMBIGUOUS", mismatch_status=422)
    assert (err.value.status, err.value.code) == (422, "ROW_VERSION_AMBIGUOUS")


def test_required_row_version_is_428_without_either() -> None:
    with pytest.raises(AppError) as err:
        required_row_version(None, None)
    assert (err.value.status, err.value.code) == (428, "ROW_VERSION_REQUIRED")
    assert err.value.extra["errors"][0]["field"] == "expected_row_version"
    with pytest.raises(AppError) as named:
        required_row_version(None, None, required_code="PRECONDITION_REQUIRED")
    assert (named.value.status, named.value.code) == (428, "PRECONDITION_REQUIRED")
    assert required_row_version(None, '"2"') == 2


def test_etag_and_if_none_match() -> None:
    assert etag(3) == '"3"'
    assert parse_if_match(etag(3)) == 3
    assert not_modified('"3"', 3)
    assert not_modified('"1", W/"3"', 3)
    assert not_modified("*", 3)
    assert not not_modified('"2"', 3)
    assert not not_modified(None, 3)
