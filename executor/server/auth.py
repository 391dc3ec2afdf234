"""Authentication: basic auth users and bearer tokens, checked on every request when configured.

Kestra's clients send ``Authorization: Basic`` from ``KESTRA_USER``/``KESTRA_PASSWORD`` or
``Authorization: Bearer`` from ``KESTRA_API_TOKEN``. With neither configured the server only
ever listens on loopback (``ServerConfig.check_bind``), so nothing here lets a request through
that an open bind would expose.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import re

from starlette.types import ASGIApp, Receive, Scope, Send

from executor.server.config import ServerConfig
from executor.server.errors import error_body


def authorized(config: ServerConfig, header: str | None) -> bool:
    """Whether an ``Authorization`` header names a configured user or token."""
    if not config.auth_required:
        return True
    if not header:
        return False
    scheme, _, value = header.partition(" ")
    value = value.strip()
    if scheme.lower() == "bearer":
        return any(hmac.compare_digest(value.encode(), t.encode()) for t in config.tokens)
    if scheme.lower() == "basic":
        try:
            user, sep, password = base64.b64decode(value, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return False
        expected = config.users.get(user)
        return (
            bool(sep)
            and expected is not None
            and hmac.compare_digest(password.encode(), expected.encode())
        )
    return False


# Webhook URLs are open, as in Kestra (its basic auth's open URLs): their key is the secret.
# Only the exact route: a flow or an execution named "webhook" is no way around credentials.
_WEBHOOK_ROUTE = re.compile(r"^/api/v1(?:/main)?/executions/webhook/[^/]+/[^/]+/[^/]+$")
_WEBHOOK_METHODS = frozenset({"GET", "POST", "PUT"})


def is_webhook_route(method: str, path: str) -> bool:
    """Whether a request is a call of Kestra's webhook route (``webhooks.py``), both prefixes:
    ``GET|POST|PUT /executions/webhook/{namespace}/{flowId}/{key}``."""
    return method.upper() in _WEBHOOK_METHODS and _WEBHOOK_ROUTE.match(path) is not None


def _open(scope: Scope) -> bool:
    return is_webhook_route(str(scope.get("method", "")), str(scope.get("path", "")))


class AuthMiddleware:
    """Answer 401 (Kestra's error shape) to any HTTP request without valid credentials."""

    def __init__(self, app: ASGIApp, config: ServerConfig) -> None:
        self.app = app
        self.config = config

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.config.auth_required or _open(scope):
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        header = headers.get(b"authorization")
        if authorized(self.config, header.decode("latin-1") if header else None):
            await self.app(scope, receive, send)
            return
        body = json.dumps(error_body("Unauthorized", scope.get("path", ""))).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 401,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"www-authenticate", b'Basic realm="executor"'),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
