"""promtool's own checks on the Prometheus configs and rules, and the rules' unit tests.

- `promtool check config` on the compose config and on the one `make run OBS=1` renders;
- `promtool check rules` on every rule file;
- `promtool test rules` on every `*_test.yaml` beside the rules, and every alert has a test;
- every alert's runbook_url points at a section of docs/runbooks.md.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from blueprint_stack.config import StackConfig
from blueprint_stack.observability import ObsConfig, write_configs
from blueprint_stack.testing import temp_var_dir

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "infra" / "prometheus" / "rules"
RULE_FILES = sorted(RULES.glob("*.yml"))
RULE_TESTS = sorted(RULES.glob("*_test.yaml"))
RUNBOOKS = ROOT / "docs" / "runbooks.md"


def _promtool(*args: str) -> subprocess.CompletedProcess[str]:
    promtool = shutil.which("promtool")
    assert promtool, "promtool is missing: `make setup OBS=1` installs Prometheus"
    return subprocess.run(
        [promtool, *args], capture_output=True, text=True, timeout=120, check=False
    )


def _alerts() -> list[dict[str, object]]:
    return [
        rule
        for path in RULE_FILES
        for group in yaml.safe_load(path.read_text())["groups"]
        for rule in group["rules"]
        if "alert" in rule
    ]


def test_promtool_accepts_the_rules() -> None:
    result = _promtool("check", "rules", *map(str, RULE_FILES))
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("test_file", RULE_TESTS, ids=lambda p: p.name)
def test_rule_unit_tests_pass(test_file: Path) -> None:
    result = subprocess.run(
        [shutil.which("promtool") or "promtool", "test", "rules", test_file.name],
        cwd=RULES, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    print(result.stdout)


def test_every_alert_has_a_unit_test_that_expects_it_to_fire() -> None:
    fired = set()
    for test_file in RULE_TESTS:
        for case in yaml.safe_load(test_file.read_text())["tests"]:
            for check in case.get("alert_rule_test", []):
                if check.get("exp_alerts"):
                    fired.add(check["alertname"])
    names = {str(rule["alert"]) for rule in _alerts()}
    assert names, "no alert rules found"
    assert not names - fired, f"alerts no unit test fires: {sorted(names - fired)}"


def test_every_runbook_link_has_its_section() -> None:
    text = RUNBOOKS.read_text()
    anchors = {
        re.sub(r"[^a-z0-9 -]", "", m.group(1).strip().lower()).replace(" ", "-")
        for m in re.finditer(r"^#+ (.+)$", text, re.MULTILINE)
    }
    for rule in _alerts():
        annotations = rule["annotations"]
        assert isinstance(annotations, dict)
        link = str(annotations["runbook_url"])
        assert link.split("#", 1)[1] in anchors, f"{rule['alert']}: {link} has no section"


def test_promtool_accepts_the_compose_config() -> None:
    result = _promtool("check", "config", "--syntax-only",
                       str(ROOT / "infra" / "prometheus" / "prometheus.yml"))  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("obs", [ObsConfig(), ObsConfig.for_tests()], ids=["run", "tests"])
def test_promtool_accepts_the_local_stack_config(obs: ObsConfig) -> None:
    var_dir = temp_var_dir("bp-promcfg-")
    try:
        prom, _ = write_configs(StackConfig.for_tests(var_dir), obs)
        result = _promtool("check", "config", str(prom))
        assert result.returncode == 0, result.stdout + result.stderr
        assert "SUCCESS" in result.stdout + result.stderr
    finally:
        shutil.rmtree(var_dir, ignore_errors=True)
