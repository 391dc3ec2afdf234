"""The worker's side of the server's ``/api/v1/worker`` API (and nothing else of it).

Calls that report (records, heartbeats) are retried while the server is away, so a server
restarted under running executions gets their records when it is back.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

import requests

from executor.errors import ServerError

TIMEOUT = 60
RETRY_SECONDS = 1.0


class Refused(ServerError):
    """The server answered 409: this worker does not (or no longer) run that execution."""


class WorkerClient:
    """The server at ``url``; credentials as Kestra's clients take them.

    Args:
        url: ``http://host:port``.
        patience: seconds a call keeps retrying while the server cannot be reached.
    """

    def __init__(
        self, url: str, env: Mapping[str, str] | None = None, patience: float = 300.0
    ) -> None:
        env = os.environ if env is None else env
        self.base = url.rstrip("/") + "/api/v1/worker"
        self.patience = patience
        self.session = requests.Session()
        if env.get("KESTRA_API_TOKEN"):
            self.session.headers["Authorization"] = f"Bearer {env['KESTRA_API_TOKEN']}"
        elif env.get("KESTRA_USER"):
            self.session.auth = (env["KESTRA_USER"], env.get("KESTRA_PASSWORD", ""))

    def call(self, method: str, path: str, *, patience: float | None = None, **kw: Any) -> Any:
        """One call, retried while the server is unreachable or restarting (502-504)."""
        kw.setdefault("timeout", TIMEOUT)
        deadline = time.monotonic() + (self.patience if patience is None else patience)
        while True:
            try:
                answer = self.session.request(method, self.base + path, **kw)
                if answer.status_code not in (502, 503, 504):
                    break
                problem = f"{answer.status_code} {answer.reason}"
            except requests.ConnectionError as exc:
                problem = str(exc)
            except requests.RequestException as exc:
                raise ServerError(f"{self.base}{path}: {exc}") from None
            if time.monotonic() >= deadline or not isinstance(kw.get("data", b""), bytes):
                # a body stream is read once; bytes can be sent again
                raise ServerError(f"cannot reach the server at {self.base}: {problem}")
            time.sleep(RETRY_SECONDS)
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
