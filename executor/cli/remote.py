"""Talking to an ``executor server`` (or Kestra) from the CLI: ``run --server``, ``flows push``.

Credentials come from the same variables as Kestra's clients: ``KESTRA_API_TOKEN``, or
``KESTRA_USER`` and ``KESTRA_PASSWORD``. The server's JSON comes back into our model objects,
so ``run --server`` shows the run with the same view and summary as a local run.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import requests

from executor.errors import ServerError
from executor.model import Level, LogLine
from executor.model.from_json import when_from_json

TIMEOUT = 60


class RemoteServer:
    """A server's API at ``url`` (``http://host:port``, with or without ``/api/v1...``)."""

    def __init__(self, url: str, env: Mapping[str, str] | None = None) -> None:
        env = os.environ if env is None else env
        self.base = url.rstrip("/")
        if "/api/v1" not in self.base:
            self.base += "/api/v1"
        self.session = requests.Session()
        if env.get("KESTRA_API_TOKEN"):
            self.session.headers["Authorization"] = f"Bearer {env['KESTRA_API_TOKEN']}"
        elif env.get("KESTRA_USER"):
            self.session.auth = (env["KESTRA_USER"], env.get("KESTRA_PASSWORD", ""))

    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """One call; an error answer or no answer becomes ServerError with the server's message."""
        kwargs.setdefault("timeout", TIMEOUT)
        try:
            answer = self.session.request(method, self.base + path, **kwargs)
        except requests.RequestException as exc:
            raise ServerError(f"cannot reach the server at {self.base}: {exc}") from None
        if answer.status_code >= 400:
            try:
                message = answer.json().get("message") or answer.text
            except ValueError:
                message = answer.text.strip() or answer.reason
            error = ServerError(f"{self.base}{path}: {answer.status_code}: {message}")
            error.status = answer.status_code
            error.exit_code = 2 if answer.status_code in (401, 403, 404, 409, 413, 422) else 1
            raise error
        return answer

    def push_flow(self, text: str, namespace: str, flow_id: str) -> dict[str, Any]:
        """Create the flow, or update it when it exists; the stored flow."""
        yaml_body = {"data": text.encode(), "headers": {"Content-Type": "application/x-yaml"}}
        exists = self.session.get(f"{self.base}/flows/{namespace}/{flow_id}", timeout=TIMEOUT)
        if exists.status_code == 200:
            answer = self.request("PUT", f"/flows/{namespace}/{flow_id}", **yaml_body)
        else:
            answer = self.request("POST", "/flows", **yaml_body)
        result: dict[str, Any] = answer.json()
        return result

    def update_namespace(self, namespace: str, texts: list[str], delete: bool) -> list[Any]:
        """Kestra's ``flow namespace update``: the namespace's flows become ``texts``."""
        answer = self.request(
            "POST",
            f"/flows/{namespace}",
            params={"delete": str(delete).lower()},
            data="---\n".join(t if t.endswith("\n") else t + "\n" for t in texts).encode(),
            headers={"Content-Type": "application/x-yaml"},
        )
        result: list[Any] = answer.json()
        return result

    def submit(
        self, namespace: str, flow_id: str, inputs: Mapping[str, str], files: Mapping[str, Path]
    ) -> dict[str, Any]:
        """Queue an execution: text inputs as form fields, FILE inputs as file parts."""
        handles = {name: path.open("rb") for name, path in files.items()}
        try:
            parts: dict[str, Any] = {k: (None, v) for k, v in inputs.items()}
            parts.update({k: (Path(files[k]).name, fh) for k, fh in handles.items()})
            answer = self.request("POST", f"/executions/{namespace}/{flow_id}", files=parts or None)
        finally:
            for fh in handles.values():
                fh.close()
        result: dict[str, Any] = answer.json()
        return result

    def execution(self, execution_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self.request("GET", f"/executions/{execution_id}").json()
        return result

    def logs(self, execution_id: str) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.request("GET", f"/logs/{execution_id}").json()
        return result

    def follow_logs(self, execution_id: str) -> Iterator[dict[str, Any]]:
        """Log entries as the server streams them (until the caller stops reading)."""
        answer = self.request(
            "GET", f"/logs/{execution_id}/follow", stream=True, timeout=(TIMEOUT, None)
        )
        with answer:
            ident: str | None = None
            for raw in answer.iter_lines(decode_unicode=True):
                line = raw or ""
                if line.startswith("id:"):
                    ident = line[3:].strip()
                elif line.startswith("data:") and ident == "progress":
                    yield json.loads(line[5:].strip())

    def kill(self, execution_id: str) -> None:
        self.request("DELETE", f"/executions/{execution_id}/kill")


# ----- Kestra's JSON back into our model


def log_from_json(entry: Mapping[str, Any]) -> LogLine:
    return LogLine(
        when_from_json(entry.get("timestamp")),
        entry["executionId"],
        entry.get("taskId"),
        entry.get("taskRunId"),
        entry.get("attemptNumber"),
        entry.get("thread") or "stdout",
        Level(entry.get("level") or "INFO"),
        entry.get("message") or "",
    )
