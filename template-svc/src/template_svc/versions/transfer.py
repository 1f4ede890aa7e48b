"""Import and export of a version as a JSON or YAML document (planners keep templates in git)."""

from __future__ import annotations

from typing import Any

import orjson
import yaml
from pydantic import ValidationError

from servicekit.errors import AppError, BadRequest
from template_svc.graph import limits as L
from template_svc.versions.schemas import VersionDocument

JSON_TYPES = {"application/json"}
YAML_TYPES = {"application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml"}


def media_kind(content_type: str | None) -> str:
    base = (content_type or "").split(";")[0].strip().lower()
    if base in JSON_TYPES:
        return "json"
    if base in YAML_TYPES:
        return "yaml"
    raise AppError(
        f"send the document as application/json or application/yaml, not {base or 'nothing'!r}",
        code="UNSUPPORTED_MEDIA_TYPE",
        status=415,
        title="Unsupported media type",
    )


def _errors(exc: ValidationError) -> list[dict[str, Any]]:
    out = []
    for err in exc.errors():
        path = ""
        for part in err.get("loc", ()):
            path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
        kind = err.get("type", "value_error")
        message = (
            "unknown field: remove it (this document refuses fields it does not define)"
            if kind == "extra_forbidden"
            else "required field is missing"
            if kind == "missing"
            else str(err.get("msg", "invalid"))
        )
        out.append({"in": "body", "field": path or "body", "message": message, "type": kind})
    return out


MAX_YAML_DEPTH = 32


class _DocumentLoader(yaml.SafeLoader):
    """Safe YAML with the two bombs defused: nesting deeper than a template document ever needs
    (the composer recurses per level) and aliases (a few lines of them expand to millions of
    nodes for whatever walks the result)."""

    def __init__(self, stream: bytes) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.YAMLError(
                f"YAML aliases (*{event.anchor}) are not accepted in a template document "
                f"(line {event.start_mark.line + 1}): write the values out"
            )
        self._depth += 1
        if self._depth > MAX_YAML_DEPTH:
            mark = self.peek_event().start_mark
            raise yaml.YAMLError(
                f"the document nests deeper than {MAX_YAML_DEPTH} levels (line {mark.line + 1})"
            )
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def _load_yaml(raw: bytes) -> Any:
    loader = _DocumentLoader(raw)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


def parse_document(raw: bytes, content_type: str | None) -> VersionDocument:
    """Parse and check an import document; every refusal is a precise problem."""
    kind = media_kind(content_type)
    if len(raw) > L.MAX_IMPORT_BYTES:
        raise AppError(
            f"the document is {len(raw)} bytes; at most {L.MAX_IMPORT_BYTES} are accepted",
            code="PAYLOAD_TOO_LARGE",
            status=413,
            title="Payload too large",
        )
    try:
        data = orjson.loads(raw) if kind == "json" else _load_yaml(raw)
    except (orjson.JSONDecodeError, yaml.YAMLError) as exc:
        raise BadRequest(
            f"the document is not valid {kind.upper()}: {exc}", code="DOCUMENT_UNREADABLE"
        ) from exc
    if not isinstance(data, dict):
        raise BadRequest(
            f"the document must be a {kind.upper()} object (mapping) at the top level",
            code="DOCUMENT_UNREADABLE",
        )
    try:
        return VersionDocument.model_validate(data)
    except ValidationError as exc:
        errors = _errors(exc)
        fields = ", ".join(f"{e['field']} ({e['message']})" for e in errors[:5])
        raise AppError(
            f"invalid fields: {fields}",
            code="VALIDATION_FAILED",
            status=422,
            title="Request is not valid",
            errors=errors,
        ) from exc


def render_document(document: dict[str, Any], kind: str) -> tuple[bytes, str]:
    if kind == "yaml":
        text = yaml.safe_dump(document, sort_keys=False, allow_unicode=True)
        return text.encode(), "application/yaml"
    return orjson.dumps(document, option=orjson.OPT_INDENT_2), "application/json"
