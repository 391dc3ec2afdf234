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
from pathlib import Path
from typing import Any


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


# ----- SMTP


@dataclass
class Mail:
    envelope_from: str
    recipients: list[str]
    content: bytes
    user: str | None


class SmtpReceiver:
    """An aiosmtpd server on 127.0.0.1 that keeps every message it accepts."""

    def __init__(self, port: int, user: str, password: str) -> None:
        self.port = port
        self.mails: list[Mail] = []
        self.user, self.password = user, password


def self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    """A certificate and key for 127.0.0.1, made with openssl (as a test server's)."""
    import subprocess

    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
            "-keyout", str(key), "-out", str(cert),
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def smtp_receiver(
    directory: Path, *, implicit_tls: bool = False, user: str = "mailer", password: str = "s3cret"
) -> Iterator[SmtpReceiver]:
    """STARTTLS (required, with login) or implicit TLS (SMTPS), a self-signed certificate."""
    import ssl

    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult, LoginPassword

    cert, key = self_signed_certificate(directory)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    receiver = SmtpReceiver(_free_port(), user, password)

    def authenticate(server: object, session: object, envelope: object, mechanism: str,
                     auth_data: object) -> AuthResult:  # fmt: skip
        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login.decode() == user
            and auth_data.password.decode() == password
        )
        return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)

    class Handler:
        async def handle_DATA(self, server: object, session: Any, envelope: Any) -> str:
            login = session.auth_data.login.decode() if session.auth_data else None
            receiver.mails.append(
                Mail(envelope.mail_from, list(envelope.rcpt_tos), envelope.content, login)
            )
            return "250 Message accepted for delivery"

    if implicit_tls:  # the whole session is TLS, which aiosmtpd's AUTH check cannot see
        controller = Controller(
            Handler(), hostname="127.0.0.1", port=receiver.port, ssl_context=context,
            authenticator=authenticate, auth_require_tls=False,
        )  # fmt: skip
    else:
        controller = Controller(
            Handler(), hostname="127.0.0.1", port=receiver.port, tls_context=context,
            require_starttls=True, authenticator=authenticate, auth_require_tls=True,
        )  # fmt: skip
    controller.start()
    try:
        yield receiver
    finally:
        controller.stop()
