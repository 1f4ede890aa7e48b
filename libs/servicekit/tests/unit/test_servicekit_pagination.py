"""servicekit.pagination: opaque cursors round-trip, anything else is CURSOR_INVALID."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from servicekit.errors import AppError
from servicekit.pagination import (
    CursorPage,
    as_datetime,
    as_int,
    as_str,
    as_uuid,
    cut_page,
    decode_cursor,
    encode_cursor,
)


@given(
    at=st.datetimes(timezones=st.just(UTC)),
    ident=st.uuids(),
    text=st.text(min_size=1),
    number=st.integers(min_value=-(2**53), max_value=2**53),
)
def test_cursors_round_trip(at: datetime, ident: uuid.UUID, text: str, number: int) -> None:
    cursor = encode_cursor([at, ident, text, number])
    assert "=" not in cursor
    assert decode_cursor(cursor, as_datetime, as_uuid, as_str, as_int) == (at, ident, text, number)


def test_no_cursor_is_the_first_page() -> None:
    assert decode_cursor(None, as_int) is None
    assert decode_cursor("", as_int) is None


@pytest.mark.parametrize(
    ("cursor", "parsers"),
    [
        ("%%%", (as_int,)),
        ("not-a-cursor", (as_int,)),
        (encode_cursor([1, 2]), (as_int,)),  # another length
        (encode_cursor(["x"]), (as_int,)),  # another type
        (encode_cursor([True]), (as_int,)),
        # Fixed values: the suite's processes must collect the same test ids.
        (
            encode_cursor(["yesterday", "6c904b75-c509-4b94-854b-dee2b905bb53"]),
            (as_datetime, as_uuid),
        ),
        (encode_cursor([datetime(2026, 12, 3, tzinfo=UTC), "not-a-uuid"]), (as_datetime, as_uuid)),
        (encode_cursor([5]), (as_uuid,)),
    ],
)
def test_anything_else_is_cursor_invalid(cursor: str, parsers: Any) -> None:
    with pytest.raises(AppError) as err:
        decode_cursor(cursor, *parsers)
    assert (err.value.status, err.value.code) == (400, "CURSOR_INVALID")
    assert err.value.extra["errors"][0]["field"] == "cursor"


def test_cut_page_gives_the_last_row_only_when_more_follow() -> None:
    assert cut_page([1, 2, 3], 2) == ([1, 2], 2)
    assert cut_page([1, 2], 2) == ([1, 2], None)
    assert cut_page([], 2) == ([], None)


def test_cursor_page_shape() -> None:
    class NumberPage(CursorPage[int]):
        pass

    page = NumberPage(items=[1, 2], next_cursor=None)
    assert page.model_dump() == {"items": [1, 2], "next_cursor": None}
    assert set(NumberPage.model_json_schema()["required"]) == {"items", "next_cursor"}
