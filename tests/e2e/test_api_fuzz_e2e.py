"""Every public operation of every service, fuzzed from its own OpenAPI document against the real
platform: generated requests (valid and invalid) with a token of each role, and every answer must
be no 5xx, a status the document declares, and a body that matches the declared schema.

A fixed seed and a bounded number of examples keep it short in `make test`;
`BLUEPRINT_FUZZ_EXAMPLES` raises the count for long runs. Some generated ids are real ones (a
published template, a project and its tasks in the token's org), so the fuzzing reaches past the
404 of a random id into the rules behind it.
"""

from __future__ import annotations

import os
import random
import uuid
from typing import Any

import httpx
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from blueprint_stack import Stack
from blueprint_stack.config import SERVICES
from blueprint_stack.keys import mint_dev_token

pytestmark = pytest.mark.e2e

EXAMPLES = int(os.environ.get("BLUEPRINT_FUZZ_EXAMPLES", "6"))
ROLES = ("admin", "planner", "operator", "inspector", "approver", "viewer")
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


class World:
    """Real ids in one org, for the generated requests to land on."""

    def __init__(self, stack: Stack) -> None:
        self.org_id = uuid.uuid4()
        self.keys = stack.config.keys_dir
        gateway = f"http://127.0.0.1:{stack.config.gateway_port}"
        self.ids: dict[str, list[str]] = {}
        with httpx.Client(base_url=gateway, timeout=15, trust_env=False) as client:
            planner = self.headers("planner")
            template = client.post(
                "/api/v1/templates",
                json={
                    "key": "fuzz",
                    "name": "Fuzz",
                    "draft": {
                        "nodes": [
                            {"key": "cut", "title": "Cut"},
                            {
                                "key": "paint",
                                "title": "Paint",
                                "qc_required": True,
                                "qc_checklist": [{"code": "P-1", "text": "No runs"}],
                            },
                        ],
                        "edges": [{"blocker": "cut", "dependent": "paint"}],
                    },
                },
                headers=planner,
            )
            assert template.status_code == 201, template.text
            template_id = template.json()["id"]
            published = client.post(
                f"/api/v1/templates/{template_id}/versions/1/publish", headers=planner
            )
            assert published.status_code == 200, published.text
            project = client.post(
                "/api/v1/projects",
                json={
                    "name": "Fuzz",
                    "template_id": template_id,
                    "deliverables": 1,
                    "start_at": "2026-12-01T08:00:00Z",
                },
                headers=planner,
            )
            assert project.status_code == 201, project.text
            project_id = project.json()["id"]
            tasks = client.get(f"/api/v1/projects/{project_id}/tasks", headers=planner).json()
            deliverables = [d["id"] for d in project.json().get("deliverables", [])]
        self.ids = {
            "template_id": [template_id],
            "project_id": [project_id],
            "task_id": [t["id"] for t in tasks.get("items", [])],
            "deliverable_id": deliverables,
        }
        self.tokens = {role: self.headers(role) for role in ROLES}

    def headers(self, role: str) -> dict[str, str]:
        token = mint_dev_token(self.keys, roles=[role], org_id=self.org_id, user_id=uuid.uuid4())
        return {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="module")
def world(stack: Stack) -> World:
    return World(stack)


def _operations() -> list[tuple[str, str]]:
    out = []
    from blueprint_stack.openapi import service_documents

    for name, doc in service_documents().items():
        for path, item in doc["paths"].items():
            if not path.startswith("/api/"):
                continue
            for method in item:
                if method in {"get", "post", "put", "patch", "delete"}:
                    out.append((name, f"{method.upper()} {path}"))
    return out


OPERATIONS = _operations()


@pytest.fixture(scope="module")
def schemas(stack: Stack) -> dict[str, Any]:
    out = {}
    for svc in SERVICES:
        port = stack.config.service_port(svc.name)
        doc = httpx.get(f"http://127.0.0.1:{port}/openapi.json", trust_env=False).json()
        schema = schemathesis.openapi.from_dict(doc)
        out[svc.name] = (schema, f"http://127.0.0.1:{port}")
    return out


@pytest.mark.parametrize(("service", "label"), OPERATIONS, ids=[label for _, label in OPERATIONS])
def test_fuzzed_requests_get_documented_answers_never_a_5xx(
    schemas: dict[str, Any], world: World, service: str, label: str
) -> None:
    schema, base_url = schemas[service]
    operation = schema.find_operation_by_label(label)
    assert operation is not None, label
    session = requests.Session()
    session.trust_env = False
    strategy = st.one_of(
        operation.as_strategy(GenerationMode.POSITIVE),
        operation.as_strategy(GenerationMode.NEGATIVE),
    )
    failures: list[str] = []

    @seed(20261202)
    @settings(
        max_examples=EXAMPLES * len(ROLES),
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy, role=st.sampled_from(ROLES), real=st.booleans())
    def check(case: Any, role: str, real: bool) -> None:
        if real and case.path_parameters:
            for name in case.path_parameters:
                if world.ids.get(name):
                    case.path_parameters[name] = random.choice(world.ids[name])
        headers = dict(case.headers or {})
        headers.update(world.tokens[role])
        response = case.call(base_url=base_url, session=session, headers=headers)
        try:
            case.validate_response(response, checks=CHECKS, headers=headers)
        except Exception as exc:
            failures.append(f"{role}: {exc}")

    check()
    assert not failures, f"{len(failures)} failing answers, first:\n{failures[0]}"
