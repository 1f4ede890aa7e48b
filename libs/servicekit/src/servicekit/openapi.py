"""OpenAPI as clients meet it: problem+json error responses and bearer auth, documented.

FastAPI documents request validation errors in its own default shape, which this platform never
sends; every error leaves a service as RFC 9457 problem details. This rewrites the generated
document accordingly and declares the bearer scheme on every public route.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute, iter_route_contexts

from servicekit.openapi_docs import (
    COMMON_PROBLEMS,
    OperationDoc,
    ServiceDocs,
    apply_errors,
    apply_operation,
    fill_examples,
)

PROBLEM_REF = "#/components/schemas/Problem"

PROBLEM_SCHEMAS: dict[str, Any] = {
    "Problem": {
        "title": "Problem",
        "type": "object",
        "description": "RFC 9457 problem details, with a stable `code` and the request id.",
        "required": ["type", "title", "status", "detail", "code"],
        "properties": {
            "type": {"type": "string", "examples": ["/problems/version-conflict"]},
            "title": {"type": "string", "examples": ["Version conflict"]},
            "status": {"type": "integer", "examples": [409]},
            "detail": {
                "type": "string",
                "examples": ["expected row_version 3 but the row is at 4 (status in_progress)"],
            },
            "code": {"type": "string", "examples": ["VERSION_CONFLICT"]},
            "instance": {"type": "string"},
            "request_id": {"type": "string"},
            "errors": {
                "type": "array",
                "description": "For VALIDATION_FAILED: every offending field.",
                "items": {"$ref": "#/components/schemas/ProblemFieldError"},
            },
        },
        "additionalProperties": True,
    },
    "ProblemFieldError": {
        "title": "ProblemFieldError",
        "type": "object",
        "required": ["in", "field", "message", "type"],
        "properties": {
            "in": {"type": "string", "enum": ["body", "query", "path", "header", "cookie"]},
            "field": {"type": "string", "examples": ["payload.assign_to"]},
            "message": {"type": "string", "examples": ["required field is missing"]},
            "type": {"type": "string", "examples": ["missing"]},
        },
    },
}

# status -> (description, the codes every public operation may answer with it).
_STANDARD_ERRORS: dict[str, tuple[str, list[str]]] = {
    "401": (
        "No valid bearer token (TOKEN_MISSING, TOKEN_INVALID, TOKEN_EXPIRED)",
        ["TOKEN_MISSING", "TOKEN_INVALID", "TOKEN_EXPIRED"],
    ),
    "403": ("The token lacks a role this needs (ROLE_REQUIRED)", ["ROLE_REQUIRED"]),
    "422": (
        "The request is not valid (VALIDATION_FAILED lists every offending field)",
        ["VALIDATION_FAILED"],
    ),
}


def _body_properties(doc: dict[str, Any], op: dict[str, Any]) -> set[str]:
    """Top-level property names of the operation's JSON request body (refs resolved)."""
    content = op.get("requestBody", {}).get("content", {})
    schema = content.get("application/json", {}).get("schema", {})
    schemas = doc.get("components", {}).get("schemas", {})
    names: set[str] = set()
    pending = [schema]
    while pending:
        node = pending.pop()
        if "$ref" in node:
            node = schemas.get(node["$ref"].rsplit("/", 1)[-1], {})
        names |= set(node.get("properties", {}))
        for key in ("allOf", "anyOf", "oneOf"):
            pending.extend(node.get(key, []))
    return names


def inferred_errors(
    doc: dict[str, Any], path: str, op: dict[str, Any]
) -> dict[str, tuple[str, list[str]]]:
    """The refusals an operation can answer because of its shape, whatever its rules: what
    the platform's shared code does with ids, bodies, cursors and preconditions. Each status
    comes with its description and the problem codes behind it."""
    params = {(p.get("in"), str(p.get("name", "")).lower()) for p in op.get("parameters", [])}
    has_body = "requestBody" in op
    if_match = ("header", "if-match") in params
    idempotency_key = ("header", "idempotency-key") in params
    out: dict[str, tuple[str, list[str]]] = {}
    bad_request: list[tuple[str, str]] = []
    if has_body:
        bad_request.append(("BODY_NOT_JSON", "the body is not JSON"))
        out["413"] = (
            "The body is larger than the service accepts (PAYLOAD_TOO_LARGE)",
            ["PAYLOAD_TOO_LARGE"],
        )
        media = sorted(op["requestBody"].get("content", {}))
        if media != ["application/json"]:
            out["415"] = (
                f"The body's Content-Type is none of {', '.join(media)}",
                ["UNSUPPORTED_MEDIA_TYPE"],
            )
    if ("query", "cursor") in params:
        bad_request.append(("CURSOR_INVALID", "a cursor not given by this list"))
    if if_match:
        bad_request.append(("IF_MATCH_INVALID", 'If-Match is not a quoted row version like "3"'))
    if idempotency_key:
        bad_request.append(("IDEMPOTENCY_KEY_INVALID", "the key is empty or too long"))
        bad_request.append(
            ("IDEMPOTENCY_KEY_MISMATCH", "it disagrees with the body's client_event_id")
        )
    if bad_request:
        text = "; ".join(f"{code}: {why}" for code, why in bad_request)
        out["400"] = (f"Malformed request ({text})", [code for code, _ in bad_request])
    if any(where == "path" for where, _ in params):
        out["404"] = (
            "No such resource in your organisation (NOT_FOUND or the resource's own code); "
            "another organisation's ids answer exactly the same",
            ["NOT_FOUND"],
        )
    if has_body or params:
        out["422"] = _STANDARD_ERRORS["422"]
    if if_match or "expected_row_version" in _body_properties(doc, op):
        out["409"] = (
            "The row changed since it was read (VERSION_CONFLICT) or its state forbids it",
            ["VERSION_CONFLICT"],
        )
        out["428"] = (
            "The change needs the row version last read (ROW_VERSION_REQUIRED)",
            ["ROW_VERSION_REQUIRED"],
        )
    if if_match:
        out["412"] = (
            "If-Match names a row version that is not the current one, or a weak tag "
            "(VERSION_CONFLICT, with current_row_version and current_status)",
            ["VERSION_CONFLICT"],
        )
    if idempotency_key:
        text, codes = out.get(
            "409", ("The Idempotency-Key was used for another request (IDEMPOTENCY_KEY_REUSED)", [])
        )
        out["409"] = (text, [*codes, "IDEMPOTENCY_KEY_REUSED"])
    if path.startswith("/api/"):
        out["429"] = (
            "Too many writes: the gateway's rate limit (RATE_LIMITED), retry later",
            ["RATE_LIMITED"],
        )
    return out


def _description(response: dict[str, Any], default: str) -> str:
    given = str(response.get("description") or "")
    return default if given in {"", "Validation Error"} else given


def _problem_content() -> dict[str, Any]:
    return {"application/problem+json": {"schema": {"$ref": PROBLEM_REF}}}


def route_roles(app: FastAPI) -> dict[tuple[str, str], list[str]]:
    """(METHOD, path) -> the roles a route's dependencies require (admin included); routes open
    to any user of an org are absent."""
    out: dict[tuple[str, str], list[str]] = {}
    for context in iter_route_contexts(app.routes):
        route = context.original_route
        if not isinstance(route, APIRoute):
            continue
        roles: set[str] = set()
        pending = [route.dependant]
        while pending:
            dependant = pending.pop()
            roles |= set(getattr(dependant.call, "roles", ()))
            pending.extend(dependant.dependencies)
        if roles:
            for method in route.methods or ():
                out[(method.upper(), str(context.path_format))] = sorted(roles)
    return out


def problem_openapi(app: FastAPI) -> dict[str, Any]:
    """The app's OpenAPI document with problem+json errors and bearer auth, and the service's
    documentation tables (`app.state.api_docs`) applied."""
    if app.openapi_schema:
        return app.openapi_schema
    doc = get_openapi(
        title=app.title,
        version=app.version,
        description=app.description,
        routes=app.routes,
        tags=app.openapi_tags,
    )
    components = doc.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    schemas.pop("HTTPValidationError", None)
    schemas.pop("ValidationError", None)
    schemas.update(PROBLEM_SCHEMAS)
    components["securitySchemes"] = {
        "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT (RS256)"}
    }
    roles = route_roles(app)
    docs: ServiceDocs = getattr(app.state, "api_docs", None) or ServiceDocs()
    catalogue = {**COMMON_PROBLEMS, **docs.problems}
    for path, item in doc.get("paths", {}).items():
        for method, op in item.items():
            if method not in {"get", "post", "put", "patch", "delete"}:
                continue
            if (method.upper(), path) in roles:
                op["x-roles"] = roles[(method.upper(), path)]
            _document_operation(doc, path, op, docs.operations.get((method.upper(), path)))
            if path.startswith("/api/"):
                inferred = {k: codes for k, (_, codes) in _errors_of(doc, path, op).items()}
                declared = docs.operations.get((method.upper(), path))
                apply_errors(op, inferred, declared.errors if declared else {}, catalogue)
                fill_examples(op, schemas)
    app.openapi_schema = doc
    return doc


def _errors_of(doc: dict[str, Any], path: str, op: dict[str, Any]) -> dict[str, Any]:
    errors = {k: v for k, v in _STANDARD_ERRORS.items() if k != "422"}
    errors.update(inferred_errors(doc, path, op))
    return errors


def _document_operation(
    doc: dict[str, Any], path: str, op: dict[str, Any], table: OperationDoc | None
) -> None:
    """Problem+json on every error response, bearer auth on public and internal routes, and
    the operation's entry of the documentation table."""
    if table is not None:
        apply_operation(op, table)
    responses = op.setdefault("responses", {})
    if path.startswith(("/api/", "/internal/")):
        op["security"] = [{"bearer": []}]
        for status, (text, _) in _errors_of(doc, path, op).items():
            declared = responses.get(status, {})
            responses[status] = {
                "description": _description(declared, text),
                "content": _problem_content(),
            }
    for status, resp in responses.items():
        if status[:1] in {"4", "5"} and "content" not in resp:
            resp["content"] = _problem_content()
        if status == "422":
            resp["content"] = _problem_content()


def install(app: FastAPI) -> None:
    app.openapi = lambda: problem_openapi(app)  # type: ignore[method-assign]
