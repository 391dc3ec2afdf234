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


# An orchestrator's probes carry no credentials; readiness shows its details only to callers
# that do (server/health.py). Metrics stay behind authentication.
_OPEN_PATHS = frozenset({"/health", "/health/liveness", "/health/readiness"})


def _open(scope: Scope) -> bool:
    path = str(scope.get("path", ""))
    return path in _OPEN_PATHS or is_webhook_route(str(scope.get("method", "")), path)


# The workers' routes take a worker token and nothing else, whoever calls and wherever the server
# listens; an API user's credentials (or none) get 401 there. The list of workers is not one of
# them: the workers page and `executor workers` read it as API clients.
_WORKER_PREFIXES = ("/api/v1/worker/", "/api/v1/main/worker/")
_WORKER_LIST = ("/api/v1/worker/workers", "/api/v1/main/worker/workers")
WORKER_REFUSED = (
    "Unauthorized: the workers' routes take a worker token (the server's "
    "EXECUTOR_SERVER_WORKER_TOKENS; executor worker --token), never an API user's credentials"
)


def worker_route(path: str) -> bool:
    return path.startswith(_WORKER_PREFIXES) and path.rstrip("/") not in _WORKER_LIST


def worker_authorized(config: ServerConfig, header: str | None) -> bool:
    """Whether an ``Authorization`` header carries a configured worker token."""
    scheme, _, value = (header or "").partition(" ")
    value = value.strip()
    return scheme.lower() == "bearer" and any(
        hmac.compare_digest(value.encode(), t.encode()) for t in config.worker_tokens
    )


class AuthMiddleware:
    """Answer 401 (Kestra's error shape) to any HTTP request without valid credentials."""

    def __init__(self, app: ASGIApp, config: ServerConfig) -> None:
        self.app = app
        self.config = config

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and worker_route(str(scope.get("path", ""))):
            await self._as_worker(scope, receive, send)
            return
        if scope["type"] != "http" or not self.config.auth_required or _open(scope):
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        header = headers.get(b"authorization")
        if authorized(self.config, header.decode("latin-1") if header else None):
            await self.app(scope, receive, send)
            return
        await self._refuse(scope, send, "Unauthorized")

    async def _as_worker(self, scope: Scope, receive: Receive, send: Send) -> None:
        header = dict(scope.get("headers") or []).get(b"authorization")
        if worker_authorized(self.config, header.decode("latin-1") if header else None):
            await self.app(scope, receive, send)
        else:
            await self._refuse(scope, send, WORKER_REFUSED)

    async def _refuse(self, scope: Scope, send: Send, message: str) -> None:
        body = json.dumps(error_body(message, scope.get("path", ""))).encode()
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
