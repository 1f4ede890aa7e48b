"""servicekit.idempotency: the parts without a database (keys, request hashes, answers).

The stored-answer round trip (lock, replay, a reused key) runs against PostgreSQL in the API tests
of template-svc and task-svc, which keep their own tables.
"""

from __future__ import annotations

import pytest
from starlette.requests import Request

from servicekit.errors import AppError
from servicekit.idempotency import (
    MAX_KEY_LENGTH,
    REPLAY_HEADER,
    Answer,
    check_key,
    request_fingerprint,
    request_hash,
)
from servicekit.jsonutil import loads


def test_check_key_strips_and_bounds_the_key() -> None:
    assert check_key(None) is None
    assert check_key("  order-4711 ") == "order-4711"
    assert check_key("k" * MAX_KEY_LENGTH) == "k" * MAX_KEY_LENGTH


@pytest.mark.parametrize("key", ["", "   ", "k" * (MAX_KEY_LENGTH + 1)])
def test_empty_or_long_keys_are_400(key: str) -> None:
    with pytest.raises(AppError) as err:
        check_key(key)
    assert (err.value.status, err.value.code) == (400, "IDEMPOTENCY_KEY_INVALID")
    assert err.value.extra["errors"][0]["field"] == "Idempotency-Key"


def test_request_hash_depends_on_route_and_body() -> None:
    base = request_hash("POST /a", b'{"x":1}')
    assert base == request_hash("POST /a", b'{"x":1}')
    assert base != request_hash("POST /b", b'{"x":1}')
    assert base != request_hash("POST /a", b'{"x":2}')


async def test_request_fingerprint_is_method_path_and_body() -> None:
    body = b'{"name":"x"}'

    async def receive() -> dict[str, object]:
        return {"type": "http.request", "body": body, "more_body": False}

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/api/v1/things",
        "query_string": b"",
        "headers": [],
    }
    assert await request_fingerprint(Request(scope, receive)) == request_hash(
        "POST /api/v1/things", body
    )


def test_a_replayed_answer_says_so() -> None:
    fresh = Answer(201, {"id": 1}, {"ETag": '"1"'})
    resp = fresh.response({"Location": "/things/1"})
    assert resp.status_code == 201
    assert loads(resp.body) == {"id": 1}
    assert resp.headers["ETag"] == '"1"' and resp.headers["Location"] == "/things/1"
    assert REPLAY_HEADER not in resp.headers
    replay = Answer(201, {"id": 1}, {"ETag": '"1"'}, replayed=True).response()
    assert replay.headers[REPLAY_HEADER] == "true" and replay.headers["ETag"] == '"1"'
