"""The worker's side of the server's ``/api/v1/worker`` API (and nothing else of it).

Calls are retried with backoff while the server is away (``patience``, 5 minutes by default),
so a server restarted under running executions gets their records when it is back: the
recorder's one writer waits, lines keep their order.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

import requests
from tenacity import Retrying, retry_if_exception_type, stop_after_delay, wait_exponential

from executor.errors import ServerError

TIMEOUT = 60
# backoff while the server is away: 0.5 s, 1 s, 2 s, then every 5 s (below the server's
# default lapse of 30 s, so a restarted server hears every worker within its grace)
RETRY_SECONDS = 0.25
RETRY_MAX_SECONDS = 5.0


class _Away(Exception):
    """The server cannot be reached, or a proxy says it is restarting (502-504)."""


class Refused(ServerError):
    """The server answered 409: this worker does not (or no longer) run that execution."""


class WorkerClient:
    """The server at ``url``.

    Args:
        url: ``http://host:port``.
        token: the worker token (what ``executor worker`` sends: the workers' routes take
            nothing else). Without it, an API client's credentials as Kestra's clients take
            them (``executor workers`` reads the list of workers so).
        patience: seconds a call keeps retrying while the server cannot be reached.
    """

    def __init__(
        self,
        url: str,
        env: Mapping[str, str] | None = None,
        patience: float = 300.0,
        token: str | None = None,
    ) -> None:
        env = os.environ if env is None else env
        self.base = url.rstrip("/") + "/api/v1/worker"
        self.patience = patience
        self.session = requests.Session()
        if token:
            self.session.headers["Authorization"] = f"Bearer {token}"
        elif env.get("KESTRA_API_TOKEN"):
            self.session.headers["Authorization"] = f"Bearer {env['KESTRA_API_TOKEN']}"
        elif env.get("KESTRA_USER"):
            self.session.auth = (env["KESTRA_USER"], env.get("KESTRA_PASSWORD", ""))

    def call(self, method: str, path: str, *, patience: float | None = None, **kw: Any) -> Any:
        """One call, retried with backoff while the server is unreachable or restarting
        (connection refused, 502-504), for up to ``patience`` seconds."""
        kw.setdefault("timeout", TIMEOUT)
        url = self.base + path
        once = not isinstance(
            kw.get("data", b""), bytes
        )  # a stream is read once; bytes can be sent again
        retrying = Retrying(
            retry=retry_if_exception_type(_Away),
            stop=stop_after_delay(0 if once else (self.patience if patience is None else patience)),
            wait=wait_exponential(multiplier=RETRY_SECONDS, max=RETRY_MAX_SECONDS),
            reraise=True,
        )
        try:
            answer = retrying(self._request, method, url, **kw)
        except _Away as exc:
            raise ServerError(f"cannot reach the server at {self.base}: {exc}") from None
        if answer.status_code >= 400:
            try:
                message = answer.json().get("message") or answer.text
            except ValueError:
                message = answer.text.strip() or answer.reason
            kind = Refused if answer.status_code == 409 else ServerError
            raise kind(
                f"{self.base}{path}: {answer.status_code}: {message}", status=answer.status_code
            )
        return answer

    def _request(self, method: str, url: str, **kw: Any) -> requests.Response:
        try:
            answer = self.session.request(method, url, **kw)
        except requests.ConnectionError as exc:
            raise _Away(str(exc)) from None
        except requests.RequestException as exc:
            raise ServerError(f"{url}: {exc}") from None
        if answer.status_code in (502, 503, 504):
            raise _Away(f"{answer.status_code} {answer.reason}")
        return answer

    def get(self, path: str, **params: Any) -> Any:
        return self.call("GET", path, params=params or None).json()

    def post(self, path: str, body: Any, **params: Any) -> Any:
        return self.call("POST", path, json=body, params=params or None).json()

    def post_json(self, path: str, body: bytes, **params: Any) -> Any:
        """POST a body already encoded as JSON."""
        headers = {"Content-Type": "application/json"}
        return self.call("POST", path, data=body, headers=headers, params=params or None).json()

    def download(self, path: str, dest: Path, **params: Any) -> bool:
        """Stream ``path`` into ``dest``; ``False`` on 404."""
        try:
            answer = self.call("GET", path, stream=True, params=params or None)
        except ServerError as exc:
            if getattr(exc, "status", None) == 404:
                return False
            raise
        dest.parent.mkdir(parents=True, exist_ok=True)
        with answer, dest.open("wb") as out:
            for chunk in answer.iter_content(1024 * 1024):
                out.write(chunk)
        return True

    def upload(self, path: str, data: bytes | IO[bytes], **params: Any) -> Any:
        """``data`` as the body of a PUT (sent again while the server is away when bytes)."""
        return self.call("PUT", path, data=data, params=params).json()
