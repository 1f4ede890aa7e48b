"""Runs the Postman collection with Newman (pinned in the root package.json) against a gateway:

    uv run python tests/postman/run_newman.py --iterations 50          # `make newman ITER=50`

Tokens are minted with the stack's dev key (var/keys, as `make token` does) for one fresh
organisation per run, plus a planner of another organisation for the 404 case.

The gateway limits writes per client (GATEWAY_WRITE_RATE, 20r/s with a burst of 40 by
default): Newman waits `--delay-request` ms (default 60) between requests, which keeps a run
under that rate however many iterations it makes.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import uuid
from pathlib import Path

from blueprint_stack.config import REPO_ROOT, StackConfig
from blueprint_stack.keys import mint_dev_token

HERE = Path(__file__).resolve().parent
NEWMAN = REPO_ROOT / "node_modules" / ".bin" / "newman"
ROLES = ("planner", "operator", "inspector", "approver")


def environment(keys_dir: Path, base_url: str) -> dict[str, str]:
    """The environment's values: base_url, a token per role, the operator's user id."""
    org, other_org = uuid.uuid4(), uuid.uuid4()
    users = {role: uuid.uuid4() for role in ROLES}
    values = {"base_url": base_url.rstrip("/"), "operator_user_id": str(users["operator"])}
    for role in ROLES:
        values[f"token_{role}"] = mint_dev_token(
            keys_dir, roles=[role], org_id=org, user_id=users[role]
        )
    values["token_other_org"] = mint_dev_token(keys_dir, roles=["planner"], org_id=other_org)
    return values


def command(
    values: dict[str, str], *, iterations: int, delay_ms: int, report: Path | None
) -> list[str]:
    if not NEWMAN.exists():
        raise SystemExit("newman is missing: `make setup` runs `npm ci` at the repo root")
    args = [
        str(NEWMAN), "run", str(HERE / "blueprint.postman_collection.json"),
        "--environment", str(HERE / "blueprint.postman_environment.json"),
        "--iteration-count", str(iterations),
        "--delay-request", str(delay_ms),
        "--timeout-request", "30000",
        "--reporters", "cli,json" if report else "cli",
        "--color", "off",
    ]  # fmt: skip
    if report:
        args += ["--reporter-json-export", str(report)]
    for key, value in values.items():
        args += ["--env-var", f"{key}={value}"]
    return args


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    config = StackConfig.from_env()
    parser.add_argument("--base-url", default=f"http://127.0.0.1:{config.gateway_port}")
    parser.add_argument("--keys-dir", type=Path, default=config.keys_dir)
    parser.add_argument("--iterations", type=int, default=1)
    parser.add_argument("--delay-request", type=int, default=60, help="ms between requests")
    parser.add_argument("--report", type=Path, help="write Newman's JSON report here")
    args = parser.parse_args(argv)
    values = environment(args.keys_dir, args.base_url)
    cmd = command(
        values, iterations=args.iterations, delay_ms=args.delay_request, report=args.report
    )
    return subprocess.run(cmd, check=False).returncode


if __name__ == "__main__":
    sys.exit(main())
