"""Stateful fuzzing: sequences of calls chained by the links schemathesis infers from each
service's OpenAPI document (a created template's id fed to its versions, publish, diff, export;
a project's id to its hold, resume, dashboard, tasks ...), against the real platform. Every
answer of every step must be no 5xx, a status the document declares, and a body that matches it.

The calls carry an admin token of the fuzzing world's org (tests/e2e/support.py). Half of the
generated bodies of the operations that start a chain are replaced by valid ones (a project of
the world's real template, an endpoint on a loopback address), and some path ids are the
world's real ones, so that sequences reach the resources instead of stopping at a 422 or a 404;
the rest stays as generated. The
event stream is left out (its answer never ends). A fixed seed and a bounded number of sequences
keep it short in `make test`; `BLUEPRINT_FUZZ_EXAMPLES` raises the count (`make chaos`).
"""

from __future__ import annotations

import os
import random
from typing import Any

import httpx
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, settings

from blueprint_stack import Stack
from blueprint_stack.config import SERVICES

from .support import World
from .test_api_fuzz_e2e import CHECKS

pytestmark = pytest.mark.e2e

SEQUENCES = int(os.environ.get("BLUEPRINT_FUZZ_EXAMPLES", "6"))
STEPS = 6


def valid_bodies(real: dict[str, list[str]]) -> dict[tuple[str, str], Any]:
    """Valid bodies of the producers whose generated bodies rarely pass validation."""
    return {
        ("POST", "/api/v1/projects"): lambda: {
            "name": f"Stateful {random.randrange(10**6)}",
            "template_id": random.choice(real["template_id"]),
            "deliverables": random.randint(1, 3),
            "start_at": "2026-12-01T08:00:00Z",
        },
        ("POST", "/api/v1/webhooks/endpoints"): lambda: {
            "url": "http://127.0.0.1:9/hook",
            "event_types": random.choice([["task.*"], ["qc.*", "task.status_changed"]]),
        },
    }


@pytest.fixture(scope="module")
def world(stack: Stack) -> World:
    return World(stack)


@pytest.mark.timeout(600)
@pytest.mark.parametrize("service", [svc.name for svc in SERVICES])
def test_call_sequences_get_documented_answers_never_a_5xx(
    stack: Stack, world: World, service: str, capsys: pytest.CaptureFixture[str]
) -> None:
    base_url = f"http://127.0.0.1:{stack.config.service_port(service)}"
    document = httpx.get(f"{base_url}/openapi.json", trust_env=False).json()
    schema = schemathesis.openapi.from_dict(document).exclude(path_regex=r"/stream$")
    session = requests.Session()
    session.trust_env = False
    headers = world.tokens["admin"]
    real = {name: values for name, values in world.ids.items() if values}
    valid = valid_bodies(real)
    calls: dict[str, int] = {}

    class Sequences(schema.as_state_machine()):  # type: ignore[misc]
        def before_call(self, case: Any) -> None:
            make = valid.get((case.method.upper(), case.path))
            if make is not None and random.random() < 0.5:
                case.body = make()
            # A chain's first step has no id from an earlier answer: sometimes a real one.
            for name in case.path_parameters or {}:
                if real.get(name) and random.random() < 0.3:
                    case.path_parameters[name] = random.choice(real[name])

        def get_call_kwargs(self, case: Any) -> dict[str, Any]:
            return {"base_url": base_url, "session": session, "headers": headers}

        def after_call(self, response: Any, case: Any) -> None:
            status = f"{response.status_code // 100}xx"
            calls[status] = calls.get(status, 0) + 1

        def validate_response(self, response: Any, case: Any, **kwargs: Any) -> None:
            case.validate_response(response, checks=CHECKS, headers=headers)

    random.seed(20261203)
    Sequences.run(
        settings=settings(
            derandomize=True,  # the same sequences every run
            max_examples=SEQUENCES,
            stateful_step_count=STEPS,
            deadline=None,
            database=None,
            phases=[Phase.explicit, Phase.generate],  # no shrinking against a live platform
            suppress_health_check=list(HealthCheck),
        )
    )
    with capsys.disabled():
        answers = ", ".join(f"{k} {v}" for k, v in sorted(calls.items()))
        print(f"\n{service}: {sum(calls.values())} calls in sequences ({answers})")
    assert sum(calls.values()) > 0
