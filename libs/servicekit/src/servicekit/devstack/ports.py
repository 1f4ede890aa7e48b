"""Finding free TCP ports and refusing taken ones with a clear message."""

from __future__ import annotations

import socket
import time


class PortInUse(RuntimeError):
    def __init__(self, port: int, what: str) -> None:
        super().__init__(
            f"port {port} (wanted for {what}) is already in use; stop whatever listens there "
            f"or choose another port"
        )
        self.port = port
        self.what = what


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def ensure_port_free(port: int, what: str) -> None:
    if not port_is_free(port):
        raise PortInUse(port, what)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_for_port(port: int, timeout: float, host: str = "127.0.0.1") -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.settimeout(0.5)
            if s.connect_ex((host, port)) == 0:
                return True
        time.sleep(0.05)
    return False
