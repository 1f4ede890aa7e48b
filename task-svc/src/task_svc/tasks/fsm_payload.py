"""Payload validation of the transition table: each action's payload checked against its
fields in `fsm.TRANSITIONS` (the hot path: plain checks, no pydantic). Pure Python, no I/O."""

from __future__ import annotations

import uuid
from typing import Any

from task_svc.tasks.fsm import MAX_DEFECTS, MAX_TEXT, TRANSITIONS, Action, PayloadField


class PayloadError(ValueError):
    """A payload that does not fit its action; `field` names the offending member."""

    def __init__(self, message: str, *, field: str) -> None:
        super().__init__(message)
        self.field = field


def _describe(f: PayloadField) -> str:
    if f.kind == "uuid":
        what = "a user id" if f.name == "assign_to" else "a uuid"
    elif f.kind == "text":
        what = f"a non-empty text of at most {MAX_TEXT} characters"
    else:
        what = "a list"
    return what


def validate_payload(action: Action, payload: Any) -> dict[str, Any]:
    """Check `payload` against the table and return it normalised (uuids as strings, trimmed text).

    Raises PayloadError with a message such as
    "action 'assign' needs payload.assign_to (a user id)".
    """
    t = TRANSITIONS[action]
    if payload is None:
        payload = {}
    if not isinstance(payload, dict):
        raise PayloadError(f"payload of action '{action}' must be a JSON object", field="payload")
    known = {f.name for f in t.payload}
    unknown = sorted(k for k in payload if k not in known)
    if unknown:
        allowed = ", ".join(sorted(known)) or "no fields"
        raise PayloadError(
            f"action '{action}' does not take payload.{unknown[0]} (it takes {allowed})",
            field=f"payload.{unknown[0]}",
        )
    out: dict[str, Any] = {}
    for f in t.payload:
        value = payload.get(f.name)
        name = f"payload.{f.name}"
        if value is None:
            if f.required:
                raise PayloadError(f"action '{action}' needs {name} ({_describe(f)})", field=name)
            continue
        if f.kind == "uuid":
            try:
                out[f.name] = str(uuid.UUID(str(value)))
            except (ValueError, TypeError, AttributeError):
                raise PayloadError(
                    f"action '{action}' needs {name} ({_describe(f)}), got {value!r}",
                    field=name,
                ) from None
        elif f.kind == "text":
            text = value.strip() if isinstance(value, str) else None
            if not text or len(text) > MAX_TEXT:
                if not f.required and isinstance(value, str) and not text:
                    continue
                raise PayloadError(f"action '{action}' needs {name} ({_describe(f)})", field=name)
            out[f.name] = text
        else:
            if not isinstance(value, list) or len(value) > MAX_DEFECTS:
                raise PayloadError(
                    f"action '{action}' needs {name} as a list of at most {MAX_DEFECTS} items",
                    field=name,
                )
            out[f.name] = value
    return out
