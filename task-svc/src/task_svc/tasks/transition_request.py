"""A transition request on its own: who asks, the action and payload it names, and the answer
it gets, also when it repeats an earlier request (the same key: `client_event_id` or an
`Idempotency-Key` header). Pure, no I/O.

A repeated key is judged by servicekit's one rule set (`servicekit.idempotency.replay`): the
stored answer lives on the task's event of the first request (its action, payload and answer, under
a unique index on `(task_id, client_event_id)`), so the request's fingerprint is rebuilt from that
event rather than read from a table of answers.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from servicekit.errors import Forbidden, Unprocessable
from servicekit.idempotency import CommandKey, StoredAnswer, fingerprint, replay
from servicekit.jsonutil import loads
from task_svc.tasks.fsm import SYSTEM_ACTIONS, TRANSITIONS, Action
from task_svc.tasks.fsm_payload import PayloadError, validate_payload

# Keys the service adds to an event's payload (not part of the request): ignored when a
# repeated client_event_id is compared with the original request.
EFFECT_KEYS = frozenset({"assigned_to"})


@dataclass(frozen=True)
class Caller:
    """Who asks: a user (with roles) or a service / the system."""

    actor: str
    roles: frozenset[str]
    user_id: uuid.UUID | None
    system: bool = False


@dataclass(frozen=True)
class TransitionOutcome:
    """The answer to a transition request: new, or the stored one of a repeated request."""

    status_code: int
    body: dict[str, Any]
    replayed: bool

    @property
    def row_version(self) -> int:
        return int(self.body["task"]["row_version"])


def parse_request(action: str, payload: Any, caller: Caller) -> tuple[Action, dict[str, Any]]:
    """The action and its normalised payload; refuses an unknown action, a system action from
    a user (and the reverse) and a payload that does not fit the action."""
    try:
        act = Action(action)
    except ValueError:
        raise Unprocessable(
            f"unknown action {action!r}; the actions are: "
            + ", ".join(a for a in TRANSITIONS if a not in SYSTEM_ACTIONS),
            code="ACTION_UNKNOWN",
            action=action,
        ) from None
    if act in SYSTEM_ACTIONS and not caller.system:
        raise Forbidden(
            f"action '{act}' is a system action: only the platform performs it",
            code="SYSTEM_ACTION",
            action=str(act),
        )
    if caller.system and act not in SYSTEM_ACTIONS:
        raise Forbidden(
            f"action '{act}' is a user action; services may only perform "
            + ", ".join(sorted(SYSTEM_ACTIONS)),
            code="USER_ACTION",
            action=str(act),
        )
    try:
        return act, validate_payload(act, payload)
    except PayloadError as exc:
        raise Unprocessable(str(exc), code="PAYLOAD_INVALID", field=exc.field) from None


def request_fingerprint(act: Action | str, clean: dict[str, Any]) -> str:
    """What makes two transition requests on a task "the same": the action and its payload."""
    return fingerprint(str(act), clean)


def replayed(
    prior: tuple[Any, ...], *, key: CommandKey, act: Action, clean: dict[str, Any]
) -> TransitionOutcome:
    """The stored answer of an earlier request (action, payload, response, status_code) with
    the same key; 409 `IDEMPOTENCY_KEY_REUSED` when that request was a different one."""
    prior_payload = loads(prior[1]) if isinstance(prior[1], str) else (prior[1] or {})
    original = {k: v for k, v in prior_payload.items() if k not in EFFECT_KEYS}
    body = loads(prior[2]) if isinstance(prior[2], str) else prior[2]
    stored = StoredAnswer(
        request_hash=request_fingerprint(prior[0], original),
        status_code=prior[3] or 200,
        body=body or {},
        context={"original_action": str(prior[0])},
    )
    answer = replay(stored, key=key, request_hash=request_fingerprint(act, clean))
    return TransitionOutcome(status_code=answer.status_code, body=answer.body, replayed=True)
