"""The gateway's API docs: one OpenAPI document merged from the four services, Swagger UI and
ReDoc from local assets (gateway/docs, its assets installed by `npm ci`), written to one
directory that nginx serves at /openapi.json, /docs/ and /redoc.

    python -m blueprint_stack docs --out <dir>
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import json
import os
import shutil
from pathlib import Path
from typing import Any

from blueprint_stack.config import REPO_ROOT, SERVICES

DOCS_SRC = REPO_ROOT / "gateway" / "docs"
SWAGGER_ASSETS = ("swagger-ui-bundle.js", "swagger-ui-standalone-preset.js", "swagger-ui.css")
REDOC_ASSET = Path("redoc") / "bundles" / "redoc.standalone.js"
PUBLIC_PREFIX = "/api/"


class DocsError(RuntimeError):
    pass


def service_documents() -> dict[str, dict[str, Any]]:
    """Each service's OpenAPI document, generated from its app (no server, no database needed)."""
    docs: dict[str, dict[str, Any]] = {}
    for svc in SERVICES:
        main = importlib.import_module(f"{svc.package}.main")
        settings = importlib.import_module(f"{svc.package}.settings").Settings()
        docs[svc.name] = main.create_app(settings).openapi()
    return docs


def _rename_refs(node: Any, renames: dict[str, str]) -> Any:
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                name = value.rsplit("/", 1)[-1]
                value = f"#/components/schemas/{renames.get(name, name)}"
            out[key] = _rename_refs(value, renames)
        return out
    if isinstance(node, list):
        return [_rename_refs(v, renames) for v in node]
    return node


def merge(docs: dict[str, dict[str, Any]], *, version: str = "0.1.0") -> dict[str, Any]:
    """One document with every public path (`/api/...`); never /internal or health routes.

    A schema name two services define differently is kept once per service, prefixed with the
    service's name, and that service's references follow the new name.
    """
    merged_schemas: dict[str, Any] = {}
    owners: dict[str, str] = {}
    paths: dict[str, Any] = {}
    security_schemes: dict[str, Any] = {}
    tags: dict[str, Any] = {}
    for service, doc in docs.items():
        schemas = doc.get("components", {}).get("schemas", {})
        renames: dict[str, str] = {}
        for name, schema in schemas.items():
            if name in merged_schemas and merged_schemas[name] != schema:
                prefix = "".join(
                    part.capitalize() for part in service.replace("-svc", "").split("-")
                )
                renames[name] = f"{prefix}{name}"
        for name, schema in schemas.items():
            new_name = renames.get(name, name)
            merged_schemas[new_name] = _rename_refs(schema, renames)
            owners.setdefault(new_name, service)
        for path, item in doc.get("paths", {}).items():
            if not path.startswith(PUBLIC_PREFIX):
                continue
            if path in paths:
                raise DocsError(f"{path} is served by both {owners.get(path)} and {service}")
            paths[path] = _rename_refs(item, renames)
            owners[path] = service
        security_schemes.update(doc.get("components", {}).get("securitySchemes", {}))
        for tag in doc.get("tags", []) or []:
            tags.setdefault(tag["name"], tag)
    used = _referenced(paths, merged_schemas)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Blueprint API",
            "version": version,
            "description": (
                "Every public route of the four services, as the gateway serves them. "
                "Authorize with a bearer JWT (`make token ROLES=planner,operator`). Errors are "
                "RFC 9457 problem details with a stable `code`."
            ),
        },
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": {k: v for k, v in sorted(merged_schemas.items()) if k in used},
            "securitySchemes": security_schemes,
        },
        "tags": [tag for name, tag in tags.items() if name in _used_tags(paths)],
    }


def _used_tags(paths: dict[str, Any]) -> set[str]:
    """Tags of public operations; a service's internal tag has no place in the public page."""
    return {tag for item in paths.values() for op in item.values() for tag in op.get("tags", [])}


def _referenced(paths: dict[str, Any], schemas: dict[str, Any]) -> set[str]:
    """Schema names reachable from the paths (others belonged to internal routes)."""
    seen: set[str] = set()
    stack = [paths]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "$ref" and isinstance(value, str):
                    name = value.rsplit("/", 1)[-1]
                    if name not in seen and name in schemas:
                        seen.add(name)
                        stack.append(schemas[name])
                else:
                    stack.append(value)
        elif isinstance(node, list):
            stack.extend(node)
    return seen


def swagger_dist(src: Path = DOCS_SRC) -> Path:
    dist = src / "node_modules" / "swagger-ui-dist"
    missing = [a for a in SWAGGER_ASSETS if not (dist / a).exists()]
    if not (src / "node_modules" / REDOC_ASSET).exists():
        missing.append(REDOC_ASSET.name)
    if missing:
        raise DocsError(
            f"Swagger UI or ReDoc assets are missing ({', '.join(missing)}); install them with "
            f"`npm ci --prefix {src}` (make setup does)"
        )
    return dist


def write_site(out: Path, document: dict[str, Any], src: Path = DOCS_SRC) -> Path:
    """Write index.html, init.js, redoc.html, the Swagger UI and ReDoc assets and openapi.json
    into `out`."""
    dist = swagger_dist(src)
    out.mkdir(parents=True, exist_ok=True)
    for name in ("index.html", "init.js", "redoc.html"):
        shutil.copyfile(src / name, out / name)
    for asset in SWAGGER_ASSETS:
        shutil.copyfile(dist / asset, out / asset)
    shutil.copyfile(src / "node_modules" / REDOC_ASSET, out / REDOC_ASSET.name)
    (out / "openapi.json").write_text(json.dumps(document, indent=1, sort_keys=False))
    return out


CACHE_DIR = REPO_ROOT / "var" / "cache" / "api-docs"


def source_fingerprint() -> str:
    """A digest of everything the merged document is generated from: the services' and
    libraries' sources and the lock file (the versions of FastAPI and Pydantic)."""
    digest = hashlib.sha256()
    roots = [REPO_ROOT / svc.name / "src" for svc in SERVICES] + sorted(
        (REPO_ROOT / "libs").glob("*/src")
    )
    files = sorted(f for root in roots for f in root.rglob("*.py"))
    for path in [*files, REPO_ROOT / "uv.lock"]:
        digest.update(str(path.relative_to(REPO_ROOT)).encode())
        digest.update(b"\0")
        digest.update(path.read_bytes())
        digest.update(b"\0")
    return digest.hexdigest()[:32]


def build(out: Path, cache_dir: Path | None = CACHE_DIR) -> Path:
    """Write the site to `out`. Generating the document imports every service's app, which takes
    seconds; it is kept under `cache_dir` by the digest of its sources and reused while they
    are unchanged (every start of a stack builds the site)."""
    cached = None if cache_dir is None else cache_dir / f"{source_fingerprint()}.json"
    document = None
    if cached is not None:
        with contextlib.suppress(FileNotFoundError, ValueError):
            document = json.loads(cached.read_text())
    if document is None:
        document = merge(service_documents())
        if cached is not None:
            cached.parent.mkdir(parents=True, exist_ok=True)
            for old in cached.parent.glob("*.json"):
                old.unlink(missing_ok=True)
            tmp = cached.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(json.dumps(document))
            tmp.replace(cached)
    return write_site(out, document)
