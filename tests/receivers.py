"""Real local servers for tests: an HTTP receiver on 127.0.0.1 (and an SMTP one in test_mail).

The HTTP receiver records every request (method, path, headers, body) and answers by path from a
table a test fills in; it runs in a thread of the test process and stops at the fixture's end.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Answer:
    """What the receiver sends back for one path."""

    status: int = 200
    body: bytes = b"ok"
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds to stay silent before answering
    chunks: int = 1  # send the body in this many writes, ``delay`` apart


class HttpReceiver:
    """A threaded HTTP server on 127.0.0.1 with an ephemeral port."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self.answers: dict[str, Answer | Callable[[Received], Answer]] = {}
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                got = Received(self.command, self.path, dict(self.headers.items()), body)
                receiver.received.append(got)
                plan = receiver.answers.get(self.path.split("?")[0], Answer())
                answer = plan(got) if callable(plan) else plan
                if answer.delay and answer.chunks == 1:
                    time.sleep(answer.delay)
                self.send_response(answer.status)
                headers = {"Content-Length": str(len(answer.body)), **answer.headers}
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                if self.command == "HEAD":
                    return
                step = max(1, len(answer.body) // answer.chunks)
                for start in range(0, len(answer.body), step):
                    self.wfile.write(answer.body[start : start + step])
                    self.wfile.flush()
                    if answer.chunks > 1:
                        time.sleep(answer.delay)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = _serve

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def paths(self) -> list[str]:
        return [r.path for r in self.received]


@contextmanager
def http_receiver() -> Iterator[HttpReceiver]:
    receiver = HttpReceiver()
    receiver._thread.start()
    try:
        yield receiver
    finally:
        receiver.server.shutdown()
        receiver.server.server_close()
        receiver._thread.join()
