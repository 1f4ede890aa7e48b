"""A private Redis server in a directory of ours, on a port of ours."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

from servicekit.devstack.ports import ensure_port_free, wait_for_port


class RedisServer:
    def __init__(self, base_dir: Path, port: int, *, appendonly: bool = True) -> None:
        self.base_dir = Path(base_dir).resolve()
        self.port = port
        self.appendonly = appendonly
        self.log_file = self.base_dir / "redis.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def command(self) -> list[str]:
        binary = shutil.which("redis-server") or "/usr/bin/redis-server"
        return [
            binary,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(self.base_dir),
            "--appendonly",
            "yes" if self.appendonly else "no",
            "--save",
            "",
            # Celery's queue and the event streams are data: never evicted to make room.
            "--maxmemory-policy",
            "noeviction",
            "--daemonize",
            "no",
            "--protected-mode",
            "yes",
            "--logfile",
            "",
        ]

    def start(self, timeout: float = 15.0) -> None:
        self.base_dir.mkdir(parents=True, exist_ok=True)
        ensure_port_free(self.port, "Redis")
        log = open(self.log_file, "ab")  # noqa: SIM115 - the child keeps it open
        self.process = subprocess.Popen(
            self.command(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        log.close()
        if not wait_for_port(self.port, timeout):
            raise RuntimeError(f"Redis on port {self.port} did not start; see {self.log_file}")

    def stop(self, timeout: float = 10.0) -> None:
        proc = self.process
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        self.process = None

    def restart(self) -> None:
        self.stop()
        time.sleep(0.05)
        self.start()
