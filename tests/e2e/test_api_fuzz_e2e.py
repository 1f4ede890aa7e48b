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

from .support import ROLES, World, is_event_stream

pytestmark = pytest.mark.e2e

EXAMPLES = int(os.environ.get("BLUEPRINT_FUZZ_EXAMPLES", "6"))
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


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
            for method, op in item.items():
                if method in {"get", "post", "put", "patch", "delete"} and not is_event_stream(op):
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
