"""Installing what the stack needs from the system's packages when it is missing."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

from blueprint_stack.supervisor import Console, StackError
from servicekit.devstack.postgres import pg_bindir


def nginx_binary() -> str | None:
    found = shutil.which("nginx")
    if found:
        return found
    return "/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None


def redis_binary() -> str | None:
    found = shutil.which("redis-server")
    if found:
        return found
    return "/usr/bin/redis-server" if Path("/usr/bin/redis-server").exists() else None


def _postgres_present() -> bool:
    try:
        bindir = pg_bindir()
    except RuntimeError:
        return False
    if not all((bindir / b).exists() for b in ("initdb", "postgres", "pg_isready")):
        return False
    if os.geteuid() == 0:
        # As root the server runs as the `postgres` user, which the package creates.
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return False
    return True


# apt package -> is it there?
REQUIREMENTS: dict[str, Callable[[], bool]] = {
    "postgresql": _postgres_present,
    "redis-server": lambda: redis_binary() is not None,
    "nginx-light": lambda: nginx_binary() is not None,
}


def missing_packages() -> list[str]:
    return [pkg for pkg, present in REQUIREMENTS.items() if not present()]


def ensure_installed(console: Console, *, allowed: bool = True) -> None:
    missing = missing_packages()
    if not missing:
        return
    command = f"apt-get install -y {' '.join(missing)}"
    if not allowed:
        raise StackError(f"not installed: {', '.join(missing)}; install with: sudo {command}")
    if os.geteuid() != 0:
        raise StackError(
            f"not installed: {', '.join(missing)}; installing needs root, run: sudo apt-get "
            f"update && sudo {command}"
        )
    if shutil.which("apt-get") is None:
        raise StackError(f"not installed: {', '.join(missing)}, and apt-get is not available")
    console.say(f"installing {', '.join(missing)} (apt-get)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for argv in (
        ["apt-get", "update"],
        ["apt-get", "install", "-y", "--no-install-recommends", *missing],
    ):
        result = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise StackError(
                f"`{' '.join(argv)}` failed (exit {result.returncode}):\n"
                f"{(result.stdout + result.stderr)[-3000:]}"
            )
    still = missing_packages()
    if still:
        raise StackError(f"still missing after apt-get install: {', '.join(still)}")
