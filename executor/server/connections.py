"""Connections that cannot pile up: a deadline for a request's headers and a cap on how many.

uvicorn times out an idle keep-alive connection, but not one that never finishes its headers:
a client may open thousands of connections, send half a request line on each and keep them
open forever (slow loris), holding a file descriptor and a place among uvicorn's connections
each. :func:`guarded_http` gives uvicorn an HTTP protocol (its own httptools one, extended) that

- closes a connection whose request headers are not complete ``header_timeout`` seconds after
  it opened or after its previous response (``408``, then close), and
- answers ``503`` at once to a connection past ``max_connections`` open ones, and closes it
  after :data:`REFUSED_LINGER_SECONDS`, reading and dropping what the client sends meanwhile
  (closing a socket with unread data resets it, and the client would lose the answer).

A request whose headers are complete is the application's, with its own limits (body size,
parse time, event streams).
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


def _closing_answer(status: str, text: str) -> bytes:
    body = text.encode()
    head = (
        f"HTTP/1.1 {status}\r\ncontent-type: text/plain; charset=utf-8\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
    )
    return head.encode() + body


REFUSED_LINGER_SECONDS = 1.0
_TIMED_OUT = _closing_answer("408 Request Timeout", "the request headers did not come in time")
_FULL = _closing_answer("503 Service Unavailable", "too many connections are open")


def guarded_http(header_timeout: float, max_connections: int) -> type[asyncio.Protocol]:
    """uvicorn's httptools protocol with a header deadline and a connection cap."""

    class GuardedHttp(HttpToolsProtocol):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._header_deadline: asyncio.TimerHandle | None = None
            self._refused = False

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            if len(self.connections) > max_connections:
                self._refused = True
                transport.write(_FULL)
                transport.write_eof()
                self.loop.call_later(REFUSED_LINGER_SECONDS, transport.close)
                return
            self._await_headers()

        def data_received(self, data: bytes) -> None:
            if not self._refused:  # a refused connection's request is read and dropped
                super().data_received(data)

        def on_message_begin(self) -> None:
            super().on_message_begin()
            self._await_headers()  # the first bytes of a request on a kept-alive connection

        def on_headers_complete(self) -> None:
            self._headers_came()
            super().on_headers_complete()

        def connection_lost(self, exc: Exception | None) -> None:
            self._headers_came()
            super().connection_lost(exc)

        def _await_headers(self) -> None:
            if self._header_deadline is None:
                self._header_deadline = self.loop.call_later(header_timeout, self._too_late)

        def _headers_came(self) -> None:
            if self._header_deadline is not None:
                self._header_deadline.cancel()
                self._header_deadline = None

        def _too_late(self) -> None:
            self._header_deadline = None
            if not self.transport.is_closing():
                self.transport.write(_TIMED_OUT)
                self.transport.close()

    return GuardedHttp
