"""What a service's OpenAPI document teaches: human operationIds, named request examples, and
problem examples per error status, from tables.

Swagger UI offers a selector only for media-type `examples`; examples on oneOf branches or on a
schema are not offered as choices. Error examples come from one catalogue of problem codes (this
module's, plus each service's own), so every status shows the codes it really answers, with the
body the error handlers really send (`errors.problem_body`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from fastapi.routing import APIRoute

from servicekit.errors import PROBLEM_JSON
from servicekit.openapi_samples import sample

EXAMPLE_INSTANCE = "/api/v1/tasks/0b7c1a52-6f0e-4d43-9d0c-2f6d6c1b8e11/transitions"
EXAMPLE_REQUEST_ID = "9f0c2d4e6a8b4c1d"


@dataclass(frozen=True)
class ProblemExample:
    """A problem code: the statuses it is answered with, its title and a typical detail."""

    statuses: tuple[int, ...]
    title: str
    detail: str
    extra: Mapping[str, Any] = field(default_factory=dict)
    status_titles: Mapping[int, str] = field(default_factory=dict)

    def body(self, code: str, status: int) -> dict[str, Any]:
        return {
            "type": f"/problems/{code.lower().replace('_', '-')}",
            "title": self.status_titles.get(status, self.title),
            "status": status,
            "detail": self.detail,
            "code": code,
            "instance": EXAMPLE_INSTANCE,
            "request_id": EXAMPLE_REQUEST_ID,
            **self.extra,
        }


_CONFLICT = {"current_row_version": 4, "current_status": "in_progress"}

COMMON_PROBLEMS: dict[str, ProblemExample] = {
    "TOKEN_MISSING": ProblemExample(
        (401,), "Authentication required", "send 'Authorization: Bearer <token>'"
    ),
    "TOKEN_INVALID": ProblemExample(
        (401,), "Authentication required", "the token's signature does not verify"
    ),
    "TOKEN_EXPIRED": ProblemExample((401,), "Authentication required", "the token has expired"),
    "ROLE_REQUIRED": ProblemExample(
        (403,),
        "Forbidden",
        "this needs one of the roles ['admin', 'planner']; the token has ['operator']",
    ),
    "NOT_FOUND": ProblemExample((404,), "Not found", "no resource at GET /api/v1/unknown"),
    "BODY_NOT_JSON": ProblemExample(
        (400,),
        "Request body is not valid JSON",
        "the request body could not be parsed as JSON: send a JSON object",
        {
            "errors": [
                {
                    "in": "body",
                    "field": "body",
                    "message": "JSON decode error",
                    "type": "json_invalid",
                }
            ]
        },
    ),
    "CURSOR_INVALID": ProblemExample(
        (400,), "Bad request", "cursor is not a next_cursor this list gave"
    ),
    "IF_MATCH_INVALID": ProblemExample(
        (400,), "Bad request", 'If-Match must be a quoted row version such as "3"'
    ),
    "IDEMPOTENCY_KEY_INVALID": ProblemExample(
        (400,), "Bad request", "Idempotency-Key must be 1-200 visible characters"
    ),
    "IDEMPOTENCY_KEY_MISMATCH": ProblemExample(
        (400,), "Bad request", "Idempotency-Key and the body's client_event_id differ"
    ),
    "PAYLOAD_TOO_LARGE": ProblemExample(
        (413,), "Payload too large", "the request body is larger than 1048576 bytes"
    ),
    "UNSUPPORTED_MEDIA_TYPE": ProblemExample(
        (415,), "Unsupported media type", "send the body as one of the documented media types"
    ),
    "VALIDATION_FAILED": ProblemExample(
        (422,),
        "Request is not valid",
        "invalid fields: name (required field is missing)",
        {
            "errors": [
                {
                    "in": "body",
                    "field": "name",
                    "message": "required field is missing",
                    "type": "missing",
                }
            ]
        },
    ),
    "VERSION_CONFLICT": ProblemExample(
        (409, 412),
        "Version conflict",
        "expected row_version 3 but the row is at 4 (status in_progress)",
        _CONFLICT,
        {412: "Precondition failed"},
    ),
    "IDEMPOTENCY_KEY_REUSED": ProblemExample(
        (409,), "Conflict", "this client_event_id was already used for another request"
    ),
    "ROW_VERSION_REQUIRED": ProblemExample(
        (428,),
        "Precondition required",
        'send If-Match: "<row_version>" or expected_row_version with the version you last read',
    ),
    "RATE_LIMITED": ProblemExample(
        (429,),
        "Too many requests",
        "too many write requests from this client; slow down and retry later",
    ),
}


@dataclass(frozen=True)
class Example:
    summary: str
    value: Any


@dataclass(frozen=True)
class OperationDoc:
    """One operation's documentation beyond what its route says.

    `errors`: status -> the operation's own problem codes, added to those its shape implies;
    `responses`: status -> an example body of a successful answer.
    """

    operation_id: str
    requests: Mapping[str, Example] = field(default_factory=dict)
    responses: Mapping[int, Any] = field(default_factory=dict)
    errors: Mapping[int, Sequence[str]] = field(default_factory=dict)


@dataclass(frozen=True)
class ServiceDocs:
    """A service's tables: operations by (METHOD, path), and the problem codes it raises."""

    operations: Mapping[tuple[str, str], OperationDoc] = field(default_factory=dict)
    problems: Mapping[str, ProblemExample] = field(default_factory=dict)


class DocsTableError(ValueError):
    """The documentation tables disagree with the routes or the problem catalogue."""


def camel_operation_id(route: APIRoute) -> str:
    """`create_template` -> `createTemplate`: the default operationId, from the handler's name
    (FastAPI's own default, `create_template_api_v1_templates_post`, is for no human)."""
    head, *rest = re.split(r"[_\W]+", route.name.strip("_"))
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


# Statuses an operation answers with one code only: a code the table declares for them replaces
# the generic one its shape implies (TASK_NOT_FOUND, not NOT_FOUND).
_SINGLE_CODE_STATUSES = {404, 428}


def _codes_for(status: int, inferred: Sequence[str], declared: Sequence[str]) -> list[str]:
    if declared and status in _SINGLE_CODE_STATUSES:
        return list(declared)
    return list(dict.fromkeys([*inferred, *declared]))


def problem_examples(
    status: int, codes: Sequence[str], catalogue: Mapping[str, ProblemExample]
) -> dict[str, Any]:
    """Media-type `examples` for one error status, one per code, with the handlers' body shape."""
    out: dict[str, Any] = {}
    for code in codes:
        problem = catalogue.get(code)
        if problem is None:
            raise DocsTableError(f"problem code {code} has no entry in the problem catalogue")
        if status not in problem.statuses:
            raise DocsTableError(f"{code} is answered with {problem.statuses}, not {status}")
        out[code] = {"summary": f"{code}: {problem.title}", "value": problem.body(code, status)}
    return out


def apply_errors(
    op: dict[str, Any],
    inferred: Mapping[str, Sequence[str]],
    declared: Mapping[int, Sequence[str]],
    catalogue: Mapping[str, ProblemExample],
) -> None:
    """Every 4xx response of `op` gets an example per code it answers: the codes its shape
    implies (`inferred`, status -> codes) and those the service's table declares."""
    responses = op.setdefault("responses", {})
    for status_int, codes in declared.items():
        responses.setdefault(str(status_int), {"description": ", ".join(codes)})
    for status, response in responses.items():
        if not status.startswith("4"):
            continue
        codes = _codes_for(int(status), inferred.get(status, ()), declared.get(int(status), ()))
        if not codes:
            continue  # a status no table explains yet: the document's tests name it
        media = response.setdefault("content", {}).setdefault(PROBLEM_JSON, {})
        media.setdefault("schema", {"$ref": "#/components/schemas/Problem"})
        media.pop("example", None)
        media["examples"] = problem_examples(int(status), codes, catalogue)


def apply_operation(op: dict[str, Any], doc: OperationDoc) -> None:
    """The operationId, the named request examples and the success examples of one operation."""
    op["operationId"] = doc.operation_id
    if doc.requests:
        content = op.get("requestBody", {}).get("content", {})
        media = content.get("application/json")
        if media is None:
            raise DocsTableError(f"{doc.operation_id} has request examples but no JSON body")
        media.pop("example", None)
        media["examples"] = {
            name: {"summary": ex.summary, "value": ex.value} for name, ex in doc.requests.items()
        }
    for status, value in doc.responses.items():
        response = op.get("responses", {}).get(str(status))
        if response is None or "application/json" not in response.get("content", {}):
            raise DocsTableError(f"{doc.operation_id} documents no JSON {status} answer")
        response["content"]["application/json"]["example"] = value


def _has_example(media: dict[str, Any]) -> bool:
    return media.get("example") is not None or bool(media.get("examples"))


def fill_examples(op: dict[str, Any], schemas: dict[str, Any]) -> None:
    """A media-level example on the JSON request body and every JSON 2xx answer that has none,
    so Swagger UI never builds one itself (it would show `"string"` and `additionalProp1`)."""
    medias = [op.get("requestBody", {}).get("content", {}).get("application/json")]
    for status, response in op.get("responses", {}).items():
        if status.startswith("2"):
            medias.append(response.get("content", {}).get("application/json"))
    for media in medias:
        if media is not None and not _has_example(media) and "schema" in media:
            media["example"] = sample(media["schema"], schemas)
