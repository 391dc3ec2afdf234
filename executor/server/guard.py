"""The server's trust boundary against web pages: ``Host``, ``Origin``/``Referer``, flow bodies.

A server on loopback without credentials can be reached by every web page its operator's
browser opens. A page may send a "simple" cross-site request (a form, or ``fetch`` with
``text/plain`` and ``mode: "no-cors"``) without any preflight, and, after rebinding its own name
to 127.0.0.1 (DNS rebinding), read the answers too. Local tools (curl, Kestra's clients, the
executor's CLI) send no ``Origin``; browsers send one on every POST, PUT and DELETE. So, before
anything else reads a request:

* **Host** must name this server: ``localhost``, any IP address (an address cannot be rebound),
  the bind address and the configured ``allowedHosts`` (``*``: any). A rebound page sends its
  own name and gets 421 (Misdirected Request, RFC 9110: this server does not serve that
  authority), so it never reads an answer.
* **Origin** of a request that can change something (any method but GET, HEAD, OPTIONS) must be
  the server's own (``scheme://`` + its ``Host``) or a configured ``allowedOrigins`` entry: else
  403. Without an Origin the ``Referer``'s origin is checked the same way; with neither, a
  browser's ``Sec-Fetch-Site: cross-site``/``same-site`` is refused, and anything else is a
  local tool and passes. The exact webhook route is exempt: its key is its secret, and
  Kestra's webhooks are called from anywhere.
* A **flow body** (POST ``/flows``, ``/flows/validate``, ``/flows/{namespace}``, PUT
  ``/flows/{namespace}/{id}``) must be YAML, JSON or multipart: a "simple" request's
  ``text/plain`` or form cannot carry one (415).

The request also carries the server's host-options rule to the flow parser
(:data:`executor.server.stored_flows.HOST_OPTIONS_ALLOWED`).
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Iterable
from urllib.parse import urlsplit

from starlette.types import ASGIApp, Receive, Scope, Send

from executor.server.auth import is_webhook_route
from executor.server.config import ServerConfig, origin_of, split_host
from executor.server.errors import error_body
from executor.server.stored_flows import HOST_OPTIONS_ALLOWED

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
LOOPBACK_NAMES = frozenset({"localhost"})
WILDCARD_BINDS = frozenset({"", "0.0.0.0", "[::]"})  # noqa: S104 (names, not a bind)
FLOW_BODY_TYPES = (
    "application/x-yaml",
    "application/yaml",
    "application/json",
    "multipart/form-data",
)
_API = r"/api/v1(?:/main)?"
_FLOW_BODY_ROUTES = {
    "POST": re.compile(rf"^{_API}/flows(?:/[^/]+)?/?$"),  # create, validate, a namespace's
    "PUT": re.compile(rf"^{_API}/flows/[^/]+/[^/]+/?$"),  # update
}

FOREIGN_ORIGIN = (
    "Forbidden: a page from another origin may not change this server (its own UI and "
    "local tools without an Origin header may; allowedOrigins adds an origin)"
)


def served_names(config: ServerConfig) -> frozenset[str]:
    """The ``Host`` names this server answers to (IP addresses are always accepted)."""
    names = set(LOOPBACK_NAMES | config.allowed_hosts)
    bind = split_host(config.host)[0] if config.host else ""
    if bind not in WILDCARD_BINDS:
        names.add(bind)
    return frozenset(names)


def _is_address(name: str) -> bool:
    try:
        ipaddress.ip_address(name.strip("[]"))
    except ValueError:
        return False
    return True


class GuardMiddleware:
    """Answer 421 to a foreign ``Host``, 403 to a foreign ``Origin``, 415 to a flow body of
    another type; pass everything else on (with the host-options rule set for the request)."""

    def __init__(self, app: ASGIApp, config: ServerConfig) -> None:
        self.app = app
        self.names = served_names(config)
        self.origins = config.allowed_origins
        self.allow_host_options = config.allow_host_options

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = _headers(scope.get("headers") or [])
        problem = self._problem(scope, headers)
        if problem is not None:
            status, message = problem
            await _refuse(send, status, message, str(scope.get("path", "")))
            return
        token = HOST_OPTIONS_ALLOWED.set(self.allow_host_options)
        try:
            await self.app(scope, receive, send)
        finally:
            HOST_OPTIONS_ALLOWED.reset(token)

    def _problem(self, scope: Scope, headers: dict[str, str]) -> tuple[int, str] | None:
        host = headers.get("host")
        if host is not None and not self._serves(host):
            return 421, (
                f"Misdirected request: {host!r} is not a name of this server "
                "(allowedHosts adds one)"
            )
        method = str(scope.get("method", "GET")).upper()
        path = str(scope.get("path", ""))
        if method in SAFE_METHODS:
            return None
        if not is_webhook_route(method, path) and not self._same_origin(scope, headers):
            return 403, FOREIGN_ORIGIN
        route = _FLOW_BODY_ROUTES.get(method)
        if route is not None and route.match(path):
            given = headers.get("content-type", "").partition(";")[0].strip().lower()
            if given not in FLOW_BODY_TYPES:
                return 415, (
                    f"Unsupported media type {given or '(none)'!r}: send a flow as "
                    "application/x-yaml (or application/json, multipart/form-data)"
                )
        return None

    def _serves(self, host: str) -> bool:
        try:
            name = split_host(host)[0]
        except ValueError:
            return False
        return "*" in self.names or name in self.names or _is_address(name)

    def _same_origin(self, scope: Scope, headers: dict[str, str]) -> bool:
        """Whether the request comes from this server's pages, an allowed origin, or no
        browser page at all."""
        claimed = headers.get("origin")
        if claimed is None and headers.get("referer"):
            parts = urlsplit(headers["referer"])
            claimed = f"{parts.scheme}://{parts.netloc}"
        if claimed is None:  # no browser said where it came from: a local tool, unless...
            return headers.get("sec-fetch-site") not in ("cross-site", "same-site")
        try:
            origin = origin_of(claimed)
        except ValueError:  # "null" (a sandboxed frame, a file:// page) and the like
            return False
        if origin in self.origins:
            return True
        host = headers.get("host")
        if host is None:
            return False
        try:
            own = origin_of(f"{scope.get('scheme', 'http')}://{host}")
        except ValueError:
            return False
        return origin == own


def _headers(raw: Iterable[tuple[bytes, bytes]]) -> dict[str, str]:
    """The first value of each header, by lower-case name."""
    found: dict[str, str] = {}
    for name, value in raw:
        found.setdefault(name.decode("latin-1").lower(), value.decode("latin-1"))
    return found


async def _refuse(send: Send, status: int, message: str, path: str) -> None:
    body = json.dumps(error_body(message, path)).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
