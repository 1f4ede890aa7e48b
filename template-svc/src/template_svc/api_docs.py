"""template-svc's API documentation table: operationIds, named request examples, problem codes."""

from __future__ import annotations

from servicekit.openapi_docs import Example, OperationDoc, ProblemExample, ServiceDocs
from template_svc.graph.schemas import GRAPH_EXAMPLE

_T = "/api/v1/templates"
_V = "/api/v1/templates/{template_id}/versions"
_TEMPLATE_404 = {404: ["TEMPLATE_NOT_FOUND"]}
_VERSION_404 = {404: ["TEMPLATE_NOT_FOUND", "VERSION_NOT_FOUND"]}
_TEMPLATE_CREATE = {
    "key": "cabinet-assembly",
    "name": "Cabinet assembly",
    "description": "From cut sheet metal to an inspected cabinet",
}

OPERATIONS: dict[tuple[str, str], OperationDoc] = {
    ("POST", _T): OperationDoc(
        "createTemplate",
        requests={
            "with_draft": Example(
                "with a draft: version 1 is created as a draft with this graph",
                {**_TEMPLATE_CREATE, "draft": GRAPH_EXAMPLE},
            ),
            "without_draft": Example("without a draft: add versions later", dict(_TEMPLATE_CREATE)),
        },
        errors={409: ["TEMPLATE_KEY_TAKEN"]},
    ),
    ("GET", _T): OperationDoc("listTemplates"),
    ("POST", f"{_T}/validate"): OperationDoc("validateTemplateGraph"),
    ("GET", f"{_T}/{{template_id}}"): OperationDoc("getTemplate", errors=_TEMPLATE_404),
    ("PATCH", f"{_T}/{{template_id}}"): OperationDoc("updateTemplate", errors=_TEMPLATE_404),
    ("POST", f"{_T}/{{template_id}}/archive"): OperationDoc(
        "archiveTemplate", errors=_TEMPLATE_404
    ),
    ("POST", f"{_T}/{{template_id}}/unarchive"): OperationDoc(
        "unarchiveTemplate", errors=_TEMPLATE_404
    ),
    ("POST", _V): OperationDoc(
        "createTemplateVersion", errors={**_TEMPLATE_404, 409: ["TEMPLATE_ARCHIVED"]}
    ),
    ("GET", _V): OperationDoc("listTemplateVersions", errors=_TEMPLATE_404),
    ("POST", f"{_V}/import"): OperationDoc(
        "importTemplateVersion",
        errors={**_TEMPLATE_404, 400: ["DOCUMENT_UNREADABLE"], 409: ["TEMPLATE_ARCHIVED"]},
    ),
    ("GET", f"{_V}/{{version}}"): OperationDoc("getTemplateVersion", errors=_VERSION_404),
    ("PUT", f"{_V}/{{version}}"): OperationDoc(
        "replaceTemplateVersion",
        errors={**_VERSION_404, 409: ["VERSION_NOT_DRAFT"], 428: ["PRECONDITION_REQUIRED"]},
    ),
    ("POST", f"{_V}/{{version}}/publish"): OperationDoc(
        "publishTemplateVersion",
        errors={**_VERSION_404, 409: ["VERSION_NOT_DRAFT"], 422: ["GRAPH_INVALID"]},
    ),
    ("POST", f"{_V}/{{version}}/deprecate"): OperationDoc(
        "deprecateTemplateVersion", errors={**_VERSION_404, 409: ["VERSION_NOT_PUBLISHED"]}
    ),
    ("GET", f"{_V}/{{version}}/diff/{{other}}"): OperationDoc(
        "diffTemplateVersions", errors=_VERSION_404
    ),
    ("GET", f"{_V}/{{version}}/export"): OperationDoc("exportTemplateVersion", errors=_VERSION_404),
}


def _p(status: int, title: str, detail: str) -> ProblemExample:
    return ProblemExample((status,), title, detail)


PROBLEMS: dict[str, ProblemExample] = {
    "TEMPLATE_NOT_FOUND": _p(404, "Not found", "template 4f3e2d1c-... does not exist"),
    "VERSION_NOT_FOUND": _p(404, "Not found", "the template has no version 7"),
    "TEMPLATE_KEY_TAKEN": _p(
        409, "Conflict", "key 'cabinet-assembly' is taken by another template of your org"
    ),
    "TEMPLATE_ARCHIVED": _p(409, "Conflict", "the template is archived: unarchive it first"),
    "VERSION_NOT_DRAFT": _p(409, "Conflict", "version 2 is published: only drafts change"),
    "VERSION_NOT_PUBLISHED": _p(409, "Conflict", "only a published version can be deprecated"),
    "GRAPH_INVALID": _p(
        422, "Unprocessable request", "the graph has a cycle: weld-frame -> paint -> weld-frame"
    ),
    "DOCUMENT_UNREADABLE": _p(400, "Bad request", "the uploaded document is not YAML or JSON"),
    "PRECONDITION_REQUIRED": _p(
        428,
        "Precondition required",
        'send If-Match: "<row_version>" or expected_row_version with the version you last read',
    ),
}

TAGS: list[dict[str, str]] = [
    {
        "name": "templates",
        "description": "Processes described once, by planners: create, rename, archive.",
    },
    {
        "name": "template versions",
        "description": "Numbered graphs of a template: drafts, published (frozen), "
        "deprecated; import, export and diff.",
    },
    {"name": "internal", "description": "For other services only (service token)."},
]

API_DOCS = ServiceDocs(operations=OPERATIONS, problems=PROBLEMS)
