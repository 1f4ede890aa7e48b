"""A local SMTP server that keeps every mail it receives as an .eml file (the stack's mail sink),
and `MailCatcher`, an SMTP server in this process for tests that can refuse on purpose.

    python -m blueprint_stack.smtp_sink --port 8025 --dir var/mail

Each accepted mail becomes `<time>-<n>.eml` in the directory: the message as received, with a
`X-Blueprint-Envelope-To` header naming the envelope recipients. Nothing leaves the machine.
"""

from __future__ import annotations

import argparse
import email
import email.message
import email.policy
import itertools
import logging
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from servicekit.devstack import free_port

# aiosmtpd logs every SMTP command at INFO: a line per command of every mail. Refusals, errors
# and the mails themselves (files, or MailCatcher.messages) say what matters.
logging.getLogger("mail.log").setLevel(logging.WARNING)


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


class MailCatcher:
    """A real SMTP server on a free local port that keeps what it accepts in memory.

    `refuse` answers the next that many mails with a temporary refusal (451); `refuse_always`
    refuses every mail until it is set back to False. Use as a context manager.
    """

    def __init__(self, port: int | None = None, *, refuse: int = 0) -> None:
        self.port = port or free_port()
        self.refuse = refuse
        self.refuse_always = False
        self.refused = 0
        self._messages: list[email.message.EmailMessage] = []
        self._lock = threading.Lock()
        self._controller = Controller(self, hostname="127.0.0.1", port=self.port)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        with self._lock:
            if self.refuse_always or self.refuse > 0:
                self.refuse = max(0, self.refuse - 1)
                self.refused += 1
                return "451 4.3.0 try again later"
            message = email.message_from_bytes(
                envelope.original_content or b"", policy=email.policy.default
            )
            assert isinstance(message, email.message.EmailMessage)
            self._messages.append(message)
        return "250 Message accepted for delivery"

    def messages(self) -> list[email.message.EmailMessage]:
        with self._lock:
            return list(self._messages)

    def start(self) -> MailCatcher:
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop()

    def __enter__(self) -> MailCatcher:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()


def read_mail_dir(directory: Path) -> list[email.message.EmailMessage]:
    """Every mail the sink kept in `directory`, oldest first."""
    out = []
    for path in sorted(directory.glob("*.eml")) if directory.exists() else []:
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        assert isinstance(message, email.message.EmailMessage)
        out.append(message)
    return out


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
