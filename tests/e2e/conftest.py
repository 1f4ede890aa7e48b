"""The real platform for end-to-end tests: started once per session by the stack runner, in a
temporary var directory on free ports, and stopped (leaving no process behind) at the end."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import httpx
import pytest

from blueprint_stack import Stack, StackConfig
from blueprint_stack.testing import processes_mentioning, temp_var_dir


@pytest.fixture(scope="session")
def stack() -> Iterator[Stack]:
    var_dir = temp_var_dir("blueprint-e2e-")
    platform = Stack(StackConfig.for_tests(var_dir))
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
