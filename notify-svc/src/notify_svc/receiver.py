"""A webhook receiver for tests, benchmarks and trying webhooks out on the local stack.

    python -m notify_svc.receiver --port 9999      # prints what it receives

It records every request (headers, body, arrival time) and answers what its `answer` function
says (200 by default), in a thread of its own: a real HTTP server on a real port.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float

    @property
    def webhook_id(self) -> str:
        return self.headers.get("webhook-id", "")

    def json(self) -> Any:
        return json.loads(self.body)


Answer = tuple[int, dict[str, str], bytes]
Responder = Callable[[Received], Answer]


def always(status: int = 200) -> Responder:
    return lambda _request: (status, {}, b"ok")


def sequence(*statuses: int, then: int = 200) -> Responder:
    """Answer these statuses in turn, then `then` forever."""
    remaining = list(statuses)
    lock = threading.Lock()

    def answer(_request: Received) -> Answer:
        with lock:
            status = remaining.pop(0) if remaining else then
        return status, {}, b"scripted"

    return answer


class _Server(ThreadingHTTPServer):
    request_queue_size = 128  # many senders connecting at once (the default backlog is 5)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A sender that went away mid-request (a killed worker, a timed-out attempt) is
        normal for a webhook receiver: say nothing. Anything else is printed as usual."""
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


class Receiver:
    def __init__(self, answer: Responder | None = None, host: str = "127.0.0.1", port: int = 0):
        self.answer: Responder = answer or always(200)
        self.received: list[Received] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body leave in separate writes: without this, Nagle's algorithm and
            # the client's delayed ACK hold every answer back ~40 ms.
            disable_nagle_algorithm = True

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length)
                if len(body) < length:  # the sender died mid-request: nothing was received
                    self.close_connection = True
                    return
                request = Received(
                    self.path, {k.lower(): v for k, v in self.headers.items()}, body, time.time()
                )
                with receiver._lock:
                    receiver.received.append(request)
                status, headers, body = receiver.answer(request)
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.server = _Server((host, port), Handler)
        self.server.daemon_threads = True
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def start(self) -> Receiver:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> Receiver:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    def requests(self) -> list[Received]:
        with self._lock:
            return list(self.received)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=9999)
    parser.add_argument("--status", type=int, default=200)
    args = parser.parse_args()

    def answer(request: Received) -> Answer:
        print(json.dumps({"headers": request.headers, "body": request.body.decode()}), flush=True)
        return args.status, {}, b"ok"

    receiver = Receiver(answer, port=args.port).start()
    print(f"receiving on {receiver.url}", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        receiver.stop()


if __name__ == "__main__":
    main()
