"""A private PostgreSQL cluster in a directory of ours, on a port of ours.

PostgreSQL refuses to run as root: when we are root the server runs as the `postgres` user
(`setpriv`), and the data directory belongs to that user.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import subprocess
import time
from pathlib import Path

from servicekit.devstack.ports import ensure_port_free, wait_for_port


def pg_bindir() -> Path:
    """The directory of the newest installed PostgreSQL server binaries."""
    env = os.environ.get("PG_BINDIR")
    if env:
        return Path(env)
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(Path(p).parent.name)
    )
    for cand in reversed(candidates):
        if (Path(cand) / "initdb").exists():
            return Path(cand)
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    raise RuntimeError(
        "PostgreSQL server binaries (initdb, postgres) were not found; install postgresql"
    )


def _run_as_prefix() -> list[str]:
    if os.geteuid() != 0:
        return []
    pwd.getpwnam("postgres")  # raises KeyError with a clear name when missing
    return ["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups"]


def make_reachable(path: Path) -> None:
    """As root: let the postgres user own `path` and traverse every parent directory."""
    if os.geteuid() != 0:
        return
    pg = pwd.getpwnam("postgres")
    path.mkdir(parents=True, exist_ok=True)
    os.chown(path, pg.pw_uid, pg.pw_gid)
    for parent in path.resolve().parents:
        mode = parent.stat().st_mode
        if not mode & 0o001:
            os.chmod(parent, mode | 0o001)


class PostgresCluster:
    def __init__(self, base_dir: Path, port: int, *, name: str = "postgres") -> None:
        self.base_dir = Path(base_dir).resolve()
        self.data_dir = self.base_dir / "data"
        self.socket_dir = self.base_dir / "run"
        self.log_file = self.base_dir / "postgres.log"
        self.port = port
        self.name = name
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def admin_dsn(self) -> str:
        """A superuser DSN over the unix socket (trust auth; TCP needs passwords)."""
        return f"postgresql://postgres@/postgres?host={self.socket_dir}&port={self.port}"

    def url_for(self, role: str, password: str, database: str) -> str:
        return f"postgresql+asyncpg://{role}:{password}@127.0.0.1:{self.port}/{database}"

    def init(self) -> None:
        if (self.data_dir / "PG_VERSION").exists():
            return
        make_reachable(self.base_dir)
        make_reachable(self.socket_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        make_reachable(self.data_dir)
        cmd = [
            *_run_as_prefix(),
            str(pg_bindir() / "initdb"),
            "-D",
            str(self.data_dir),
            "-U",
            "postgres",
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
            "-E",
            "UTF8",
            "--locale=C",
        ]
        result = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise RuntimeError(f"initdb failed:\n{result.stdout}\n{result.stderr}")

    def command(self) -> list[str]:
        return [
            *_run_as_prefix(),
            str(pg_bindir() / "postgres"),
            "-D",
            str(self.data_dir),
            "-p",
            str(self.port),
            "-c",
            "listen_addresses=127.0.0.1",
            "-c",
            f"unix_socket_directories={self.socket_dir}",
            "-c",
            "shared_preload_libraries=pg_stat_statements",
            "-c",
            "pg_stat_statements.track=all",
            "-c",
            "max_connections=200",
            "-c",
            "logging_collector=off",
        ]

    def start(self, timeout: float = 30.0) -> None:
        """Start in the background (tests); the stack runner supervises `command()` itself."""
        self.init()
        ensure_port_free(self.port, f"PostgreSQL ({self.name})")
        make_reachable(self.socket_dir)
        log = open(self.log_file, "ab")  # noqa: SIM115 - the child keeps it open
        self.process = subprocess.Popen(
            self.command(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        log.close()
        self.wait_ready(timeout)

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        if not wait_for_port(self.port, timeout):
            raise RuntimeError(self._failure("did not open its port"))
        isready = str(pg_bindir() / "pg_isready")
        while time.monotonic() < deadline:
            res = subprocess.run(
                [isready, "-h", str(self.socket_dir), "-p", str(self.port), "-U", "postgres"],
                capture_output=True,
                check=False,
            )
            if res.returncode == 0:
                return
            if self.process is not None and self.process.poll() is not None:
                break
            time.sleep(0.1)
        raise RuntimeError(self._failure("is not accepting connections"))

    def _failure(self, what: str) -> str:
        tail = ""
        if self.log_file.exists():
            tail = self.log_file.read_text(errors="replace")[-2000:]
        return f"PostgreSQL on port {self.port} {what}; its log ends with:\n{tail}"

    def stop(self, timeout: float = 20.0) -> None:
        proc = self.process
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGINT)  # fast shutdown
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        self.process = None
