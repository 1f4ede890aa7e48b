"""The real platform for end-to-end tests: started once per session by the stack runner, in a
temporary var directory on free ports, and stopped (leaving no process behind) at the end.

It runs with Prometheus and Alertmanager (as `make run OBS=1`), and with tracing on, exported to
a receiver in this process: a request the test marks as sampled (a `traceparent` ending in `-01`)
is traced through every service and event; requests without one are not sampled, so the other
tests pay nothing for it."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import httpx
import pytest

from blueprint_stack import Stack, StackConfig
from blueprint_stack.config import ServiceDef
from blueprint_stack.observability import ObsConfig
from blueprint_stack.testing import processes_mentioning, temp_var_dir
from servicekit.testing.otlp import OtlpReceiver


class TracedStack(Stack):
    """The stack with every service process exporting sampled spans to `otlp_endpoint` and
    reading its database gauges every second; a webhook attempt held by a killed Celery worker
    comes back within seconds (the webhook chaos test kills it every 2 s)."""

    otlp_endpoint = ""

    def service_env(self, svc: ServiceDef) -> dict[str, str]:
        env = super().service_env(svc)
        env[f"{svc.env_prefix}OTLP_ENDPOINT"] = self.otlp_endpoint
        env[f"{svc.env_prefix}METRICS_SAMPLE_INTERVAL_SECONDS"] = "1"
        # Only what a caller asked to sample (the parent's flag); no trace starts by itself.
        env["OTEL_TRACES_SAMPLER"] = "parentbased_traceidratio"
        env["OTEL_TRACES_SAMPLER_ARG"] = "0"
        env["OTEL_BSP_SCHEDULE_DELAY"] = "200"
        if svc.name == "notify-svc":
            # A claim lasts the attempt's timeout + 3 s instead of + 30 s; a message lost with
            # Redis is enqueued again after 4 s. No test here waits on a receiver that long.
            env[f"{svc.env_prefix}WEBHOOK_TIMEOUT_SECONDS"] = "5"
            env[f"{svc.env_prefix}WEBHOOK_CLAIM_SECONDS"] = "8"
            env[f"{svc.env_prefix}WEBHOOK_REQUEUE_AFTER_SECONDS"] = "4"
        return env


@pytest.fixture(scope="session")
def otlp() -> Iterator[OtlpReceiver]:
    with OtlpReceiver() as receiver:
        yield receiver


@pytest.fixture(scope="session")
def stack(otlp: OtlpReceiver) -> Iterator[Stack]:
    var_dir = temp_var_dir("blueprint-e2e-")
    platform = TracedStack(StackConfig.for_tests(var_dir), obs=ObsConfig.for_tests())
    platform.otlp_endpoint = otlp.endpoint
    platform.start()
    try:
        yield platform
    finally:
        platform.stop()
        leftovers = processes_mentioning(str(var_dir))
        if not leftovers:
            shutil.rmtree(var_dir, ignore_errors=True)
        assert not leftovers, f"processes left behind after stop(): {leftovers}"


@pytest.fixture(scope="session")
def gateway(stack: Stack) -> Iterator[httpx.Client]:
    base_url = f"http://127.0.0.1:{stack.config.gateway_port}"
    with httpx.Client(base_url=base_url, timeout=10, trust_env=False) as client:
        yield client
