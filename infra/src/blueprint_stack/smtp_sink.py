"""A local SMTP server that keeps every mail it receives as an .eml file (the stack's mail sink).

    python -m blueprint_stack.smtp_sink --port 8025 --dir var/mail

Each accepted mail becomes `<time>-<n>.eml` in the directory: the message as received, with a
`X-Blueprint-Envelope-To` header naming the envelope recipients. Nothing leaves the machine.
"""

from __future__ import annotations

import argparse
import itertools
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session


class MaildirHandler:
    """aiosmtpd handler: each message's bytes into a file of its own (written, then renamed, so
    a reader never sees half a mail)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.directory.mkdir(parents=True, exist_ok=True)
        self._counter = itertools.count(1)
        self._lock = threading.Lock()

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        header = ("X-Blueprint-Envelope-To: " + ", ".join(envelope.rcpt_tos) + "\r\n").encode()
        with self._lock:
            name = f"{time.time_ns()}-{next(self._counter):06d}.eml"
        tmp = self.directory / f".{name}.tmp"
        tmp.write_bytes(header + content)
        os.replace(tmp, self.directory / name)
        return "250 Message accepted for delivery"


def serve(directory: Path, port: int, host: str = "127.0.0.1") -> Controller:
    controller = Controller(MaildirHandler(directory), hostname=host, port=port)
    controller.start()
    return controller


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=8025)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--dir", type=Path, required=True, help="where the .eml files go")
    args = parser.parse_args(argv)
    controller = serve(args.dir, args.port, args.host)
    stopped = threading.Event()

    def stop(*_: Any) -> None:
        stopped.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(f"SMTP sink on {args.host}:{args.port}, mails in {args.dir}", flush=True)
    stopped.wait()
    controller.stop()


if __name__ == "__main__":
    main()
