"""servicekit.idempotency: the parts without a database (keys, request hashes, the replay rule).

The stored-answer round trip (lock, replay, a reused key) runs against PostgreSQL in the API tests
of qc-svc, template-svc and task-svc, which keep their own tables.
"""

from __future__ import annotations

import pytest
from starlette.requests import Request

from servicekit.errors import AppError
from servicekit.idempotency import (
    MAX_KEY_LENGTH,
    REPLAY_HEADER,
    Answer,
    CommandKey,
    StoredAnswer,
    check_key,
    command_key,
    fingerprint,
    replay,
    request_fingerprint,
    request_hash,
    required_command_key,
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


def test_a_command_key_comes_from_the_body_or_the_header() -> None:
    assert command_key(None, None) is None
    assert command_key("abc", None) == CommandKey("abc", "client_event_id")
    assert command_key(None, " k-1 ") == CommandKey("k-1", "Idempotency-Key")
    assert command_key("k-1", "k-1") == CommandKey("k-1", "client_event_id")
    with pytest.raises(AppError) as err:
        command_key("k-1", "k-2")
    assert (err.value.status, err.value.code) == (400, "IDEMPOTENCY_KEY_MISMATCH")
    with pytest.raises(AppError) as missing:
        required_command_key(None, None, where="query")
    assert (missing.value.status, missing.value.code) == (422, "VALIDATION_FAILED")
    assert missing.value.extra["errors"][0] == {
        "in": "query",
        "field": "client_event_id",
        "message": "required field is missing (or send an Idempotency-Key header)",
        "type": "missing",
    }


def test_fingerprint_ignores_key_order_but_not_values_or_scope() -> None:
    base = fingerprint("decide 1", {"decision": "reject", "reason": "r"})
    assert base == fingerprint("decide 1", {"reason": "r", "decision": "reject"})
    assert base != fingerprint("decide 2", {"decision": "reject", "reason": "r"})
    assert base != fingerprint("decide 1", {"decision": "reject", "reason": "s"})


def test_replay_gives_the_stored_answer_or_refuses_another_request_with_409() -> None:
    stored = StoredAnswer(
        "h1", 201, b'{"id":1}', {"ETag": '"2"'}, {"original_action": "add_defect"}
    )
    key = CommandKey("k", "client_event_id")
    answer = replay(stored, key=key, request_hash="h1")
    assert answer == Answer(201, b'{"id":1}', {"ETag": '"2"'}, replayed=True)
    resp = answer.response()
    assert resp.body == b'{"id":1}' and resp.headers[REPLAY_HEADER] == "true"
    with pytest.raises(AppError) as err:
        replay(stored, key=key, request_hash="h2")
    assert (err.value.status, err.value.code) == (409, "IDEMPOTENCY_KEY_REUSED")
    assert err.value.extra == {"client_event_id": "k", "original_action": "add_defect"}
