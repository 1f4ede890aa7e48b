"""The runner's command line: a taken port is one clear line, tokens verify, config from env."""

from __future__ import annotations

import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import jwt
import pytest

from blueprint_stack import Stack, StackConfig
from blueprint_stack.cli import _parser, config_from_args, obs_from_args
from blueprint_stack.config import REPO_ROOT, SERVICES
from blueprint_stack.keys import DEV_AUDIENCE, DEV_ISSUER, DEV_ORG_ID, DEV_USER_ID
from blueprint_stack.observability import ObsConfig
from blueprint_stack.testing import default_ports, listening_on
from servicekit.devstack import PortInUse


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "blueprint_stack", *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )


@pytest.fixture
def taken_port() -> Iterator[int]:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


@pytest.fixture
def default_ports_taken() -> Iterator[None]:
    """As when a `make run` stack is running on this machine: every default port is taken."""
    with listening_on(default_ports()):
        yield


def test_a_taken_port_is_one_clear_line(
    tmp_path: Path, taken_port: int, default_ports_taken: None
) -> None:
    config = StackConfig.for_tests(tmp_path / "var", gateway_port=taken_port)
    result = run_cli("run", "--no-install", *config.run_args())
    assert result.returncode == 1
    assert "Traceback" not in result.stderr + result.stdout
    assert result.stderr.strip().splitlines() == [
        f"blueprint: port {taken_port} (wanted for the gateway) is already in use; stop whatever "
        f"listens there or choose another port (--gateway-port or BLUEPRINT_GATEWAY_PORT)"
    ]
    # Nothing was started or created.
    assert not config.var_dir.exists()


@pytest.mark.parametrize("what", ["PostgreSQL", "Redis", "task-svc", "qc-svc-events metrics"])
def test_a_taken_port_names_the_flag_and_variable_that_move_it(
    tmp_path: Path, taken_port: int, what: str
) -> None:
    config = StackConfig.for_tests(tmp_path / "var")
    [setting] = [s for s in config.ports() if s.what == what]
    args = config.run_args()
    args[args.index(setting.flag) + 1] = str(taken_port)
    result = run_cli("run", "--no-install", *args)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"blueprint: port {taken_port} (wanted for {setting.what}) is already in use; stop "
        f"whatever listens there or choose another port ({setting.flag} or {setting.env})"
    ]


def test_a_test_stack_needs_none_of_the_default_ports(tmp_path: Path) -> None:
    config = StackConfig.for_tests(tmp_path / "var")
    ports = [setting.port for setting in config.ports()]
    assert len(set(ports)) == len(ports)
    assert not set(ports) & set(default_ports())
    # The flags a test passes to `run` set every port; none is left on its default.
    parsed = config_from_args(_parser().parse_args(["run", *config.run_args()]))
    assert parsed.ports() == config.ports()


def test_the_library_refuses_a_taken_port_before_starting_anything(
    tmp_path: Path, taken_port: int
) -> None:
    config = StackConfig.for_tests(
        tmp_path / "var", service_ports={s.name: taken_port for s in SERVICES}
    )
    stack = Stack(config)
    with pytest.raises(PortInUse, match=f"port {taken_port} .*template-svc"):
        stack.start()
    assert stack.processes == {}


def test_token_is_signed_with_the_stack_key(tmp_path: Path) -> None:
    var_dir = tmp_path / "var"
    result = run_cli("token", "--var-dir", str(var_dir), "--roles", "planner,operator")
    assert result.returncode == 0, result.stderr
    token = result.stdout.strip().splitlines()[-1]
    claims = jwt.decode(
        token,
        (var_dir / "keys" / "public.pem").read_bytes(),
        algorithms=["RS256"],
        audience=DEV_AUDIENCE,
        issuer=DEV_ISSUER,
    )
    assert claims["roles"] == ["planner", "operator"]
    assert claims["org_id"] == str(DEV_ORG_ID)
    assert claims["sub"] == str(DEV_USER_ID)


def test_token_takes_org_user_and_ttl_and_reuses_the_key(tmp_path: Path) -> None:
    var_dir = tmp_path / "var"
    org, user = uuid.uuid4(), uuid.uuid4()
    first = run_cli("token", "--var-dir", str(var_dir), "--roles", "viewer")
    public = (var_dir / "keys" / "public.pem").read_bytes()
    second = run_cli(
        "token", "--var-dir", str(var_dir), "--roles", "admin",
        "--org", str(org), "--user-id", str(user), "--ttl", "60",
    )  # fmt: skip
    assert first.returncode == 0 and second.returncode == 0, second.stderr
    assert (var_dir / "keys" / "public.pem").read_bytes() == public
    claims = jwt.decode(
        second.stdout.split()[-1], public, algorithms=["RS256"], audience=DEV_AUDIENCE
    )
    assert (claims["org_id"], claims["sub"], claims["roles"]) == (str(org), str(user), ["admin"])
    assert claims["exp"] - claims["iat"] == 60


def test_token_refuses_an_unknown_role(tmp_path: Path) -> None:
    result = run_cli("token", "--var-dir", str(tmp_path / "var"), "--roles", "planner,boss")
    assert result.returncode == 2
    assert "unknown role(s) boss" in result.stderr
    assert "Traceback" not in result.stderr


def test_config_reads_ports_and_limits_from_the_environment(tmp_path: Path) -> None:
    config = StackConfig.from_env(
        {
            "BLUEPRINT_VAR_DIR": str(tmp_path),
            "BLUEPRINT_GATEWAY_PORT": "9080",
            "BLUEPRINT_TASK_SVC_PORT": "9102",
            "BLUEPRINT_WRITE_RATE": "5r/s",
            "BLUEPRINT_QC_SVC_EVENTS_PORT": "9203",
        }
    )
    assert config.var_dir == tmp_path.resolve()
    assert config.gateway_port == 9080
    assert config.service_port("task-svc") == 9102
    assert config.service_port("qc-svc") == 8103
    assert config.events_metrics_ports["qc-svc"] == 9203
    assert config.events_metrics_ports["task-svc"] == 8202
    assert config.write_rate == "5r/s"
    assert config.postgres_port == 55432


def test_a_bad_port_in_the_environment_is_a_message(tmp_path: Path) -> None:
    result = run_cli(
        "token", "--var-dir", str(tmp_path), env={"BLUEPRINT_GATEWAY_PORT": "eighty", "PATH": ""}
    )
    assert result.returncode == 2
    assert "BLUEPRINT_GATEWAY_PORT must be a port number, not 'eighty'" in result.stderr


def test_obs_ports_come_from_flags_and_a_taken_one_is_one_clear_line(
    tmp_path: Path, taken_port: int
) -> None:
    config = StackConfig.for_tests(tmp_path / "var")
    obs = ObsConfig.for_tests()
    args = [*config.run_args(), "--obs", "--prometheus-port", str(taken_port),
            "--alertmanager-port", str(obs.alertmanager_port),
            "--gateway-exporter-port", str(obs.nginx_exporter_port),
            "--gateway-log-exporter-port", str(obs.gateway_log_exporter_port)]  # fmt: skip
    parsed = obs_from_args(_parser().parse_args(["run", *args]))
    assert parsed is not None
    assert (parsed.prometheus_port, parsed.alertmanager_port) == (
        taken_port,
        obs.alertmanager_port,
    )
    assert obs_from_args(_parser().parse_args(["run", *config.run_args()])) is None
    result = run_cli("run", "--no-install", *args)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"blueprint: port {taken_port} (wanted for Prometheus) is already in use; stop "
        "whatever listens there or choose another port (--prometheus-port)"
    ]
    assert not config.var_dir.exists()
