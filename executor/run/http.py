"""One HTTP call from the host, bounded: timeouts, a deadline, a size cap, redirects, auth.

Tasks that talk HTTP (``Request``, ``Download``, the chat webhooks) describe the call as an
:class:`HttpCall` and get an :class:`HttpResponse` back, or an :class:`HttpFailure` whose message
says what happened in one line (it names the URL; callers log it through the secrets masker).
``requests`` is imported here only, and its errors are translated here.

The body is read in chunks, so a cap or the deadline stops a large or slow answer early, and a
body streamed to a file (``sink``) is never held in memory.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import requests
import requests.exceptions

CHUNK = 64 * 1024
DEFAULT_CONNECT_TIMEOUT = 30.0
DEFAULT_READ_TIMEOUT = 300.0  # Kestra's readIdleTimeout default: five minutes
MAX_REDIRECTS = 30


class HttpFailure(Exception):
    """The call did not get a usable answer; ``message`` is one line for the log."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class HttpCall:
    """What to send and the bounds to send it within.

    Attributes:
        method: ``GET``, ``POST``...
        url: an ``http://`` or ``https://`` URL.
        headers: request headers.
        data: a body (bytes), or a dict sent as a form (urlencoded).
        files: multipart parts (``requests``' ``files=``), for ``multipart/form-data``.
        auth: (username, password) for basic auth.
        connect_timeout: seconds to connect.
        read_timeout: seconds the server may stay silent.
        deadline: ``time.monotonic()`` value past which the call is abandoned, or ``None``.
        max_bytes: the most body bytes accepted, or ``None`` for no cap.
        follow_redirects: whether a 3xx is followed.
        verify: whether TLS certificates are checked.
        proxy: ``http://host:port`` for both schemes, or ``None``.
    """

    method: str
    url: str
    headers: dict[str, str] = field(default_factory=dict)
    data: bytes | dict[str, str] | None = None
    files: dict[str, Any] | None = None
    auth: tuple[str, str] | None = None
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT
    read_timeout: float = DEFAULT_READ_TIMEOUT
    deadline: float | None = None
    max_bytes: int | None = None
    follow_redirects: bool = True
    verify: bool = True
    proxy: str | None = None


@dataclass(frozen=True)
class HttpResponse:
    """The answer: status, headers (each name with its values), final URL, body or its size."""

    code: int
    headers: dict[str, list[str]]
    url: str
    body: bytes
    length: int


def send(call: HttpCall, sink: Callable[[Iterator[bytes]], None] | None = None) -> HttpResponse:
    """Make the call; the body is returned, or handed to ``sink`` chunk by chunk when given.

    Raises:
        HttpFailure: bad URL, no connection, a timeout, the deadline, too many redirects, a
            body over ``max_bytes`` or shorter than its ``Content-Length``.
    """
    if not call.url.lower().startswith(("http://", "https://")):
        raise HttpFailure(f"{call.url!r} is not an http:// or https:// URL")
    session = requests.Session()
    session.max_redirects = MAX_REDIRECTS
    if call.proxy:
        session.proxies = {"http": call.proxy, "https": call.proxy}
    try:
        with session:
            response = session.request(
                call.method,
                call.url,
                headers=call.headers,
                data=call.data,
                files=call.files,
                auth=call.auth,
                timeout=(_bounded(call.connect_timeout, call), _bounded(call.read_timeout, call)),
                allow_redirects=call.follow_redirects,
                verify=call.verify,
                stream=True,
            )
            with response:
                return _read(call, response, sink)
    except requests.exceptions.TooManyRedirects:
        raise HttpFailure(f"{call.url}: more than {MAX_REDIRECTS} redirects") from None
    except requests.exceptions.ConnectTimeout:
        raise HttpFailure(f"{call.url}: no connection within {call.connect_timeout:g}s") from None
    except (requests.exceptions.ReadTimeout, requests.exceptions.ConnectionError) as exc:
        if _timed_out(exc):
            raise HttpFailure(
                f"{call.url}: the server sent nothing for {call.read_timeout:g}s"
            ) from None
        raise HttpFailure(f"{call.url}: cannot connect ({_reason(exc)})") from None
    except requests.exceptions.InvalidURL as exc:
        raise HttpFailure(f"{call.url!r} is not a valid URL ({_reason(exc)})") from None
    except requests.exceptions.RequestException as exc:
        raise HttpFailure(f"{call.url}: {_reason(exc)}") from None


def _read(
    call: HttpCall, response: requests.Response, sink: Callable[[Iterator[bytes]], None] | None
) -> HttpResponse:
    headers: dict[str, list[str]] = {}
    for name, value in response.raw.headers.items():
        headers.setdefault(name, []).append(value)
    counted = [0]
    chunks = _chunks(call, response, counted)
    if sink is None:
        body = b"".join(chunks)
    else:
        sink(chunks)
        body = b""
    expected = response.headers.get("Content-Length")
    encoded = response.headers.get("Content-Encoding", "identity") != "identity"
    if expected and expected.isdigit() and not encoded and int(expected) != counted[0]:
        raise HttpFailure(
            f"{call.url}: the body ended after {counted[0]} of {expected} bytes (Content-Length)"
        )
    return HttpResponse(response.status_code, headers, response.url, body, counted[0])


def _chunks(call: HttpCall, response: requests.Response, counted: list[int]) -> Iterator[bytes]:
    for chunk in response.iter_content(CHUNK):
        counted[0] += len(chunk)
        if call.max_bytes is not None and counted[0] > call.max_bytes:
            raise HttpFailure(
                f"{call.url}: the response is larger than the limit of {call.max_bytes} bytes"
            )
        if call.deadline is not None and time.monotonic() > call.deadline:
            raise HttpFailure(f"{call.url}: the task's timeout passed while reading the answer")
        yield chunk


def _bounded(seconds: float, call: HttpCall) -> float:
    """``seconds``, or less when the deadline comes sooner (never below a tenth of a second)."""
    if call.deadline is None:
        return seconds
    return max(0.1, min(seconds, call.deadline - time.monotonic()))


def _timed_out(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, requests.exceptions.ReadTimeout | TimeoutError):
            return True
        if "timed out" in str(seen).lower():
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _reason(exc: BaseException) -> str:
    """The innermost cause in a few words (urllib3 wraps the socket error several times)."""
    text = str(exc)
    for marker in ("Errno", "Failed to resolve", "certificate verify failed"):
        at = text.find(marker)
        if at >= 0:
            return text[at:].split("'))")[0].split('")')[0].rstrip(")'\" ")[:200]
    return text[:200]
