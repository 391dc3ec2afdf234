"""The worker's side of the server's ``/api/v1/worker`` API (and nothing else of it).

Bodies sent and answers read are the models of :mod:`executor.worker.protocol` (``ask``),
the server's own. Calls are retried with backoff while the server is away (``patience``, 5
minutes by default), so a server restarted under running executions gets their records when it
is back: the recorder's one writer waits, lines keep their order.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any, TypeVar
from urllib.parse import quote

import requests
from pydantic import BaseModel, ValidationError
from tenacity import Retrying, retry_if_exception_type, stop_after_delay, wait_exponential

from executor.errors import ServerError
from executor.worker.protocol import (
    ClaimAnswer,
    ClaimRequest,
    FlowSource,
    Heartbeat,
    HeartbeatAnswer,
    PartAnswer,
    RecordsAnswer,
    WorkerEntry,
)

M = TypeVar("M", bound=BaseModel)

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
        self.url = url.rstrip("/")
        self.token = token
        self.base = self.url + "/api/v1/worker"
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
                f"{self.base}{path}: {answer.status_code}: {message}",
                status=answer.status_code,
                detail=str(message),
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

    def ask(
        self,
        method: str,
        route: str,
        answer: type[M],
        body: BaseModel | bytes | IO[bytes] | None = None,
        **params: Any,
    ) -> M:
        """One call of the protocol: ``body`` (a model, or raw bytes) sent, the answer read as
        the model ``answer``.

        Raises:
            Refused: 409, the worker no longer holds the execution.
            ServerError: any other failure, or an answer that is not an ``answer``.
        """
        kw: dict[str, Any] = {"params": params or None}
        if isinstance(body, BaseModel):
            kw["data"] = body.model_dump_json().encode()
            kw["headers"] = {"Content-Type": "application/json"}
        elif body is not None:
            kw["data"] = body
        response = self.call(method, route, **kw)
        try:
            return answer.model_validate_json(response.content)
        except ValidationError as exc:
            raise ServerError(
                f"{self.base}{route}: the server's answer is not what this worker reads"
                f" (a server of another version?): {exc.errors()[0].get('msg', exc)}"
            ) from None

    def heartbeat(self, beat: Heartbeat) -> HeartbeatAnswer:
        return self.ask("POST", "/heartbeat", HeartbeatAnswer, beat)

    def claim(self, execution_id: str, worker: str) -> ClaimAnswer:
        return self.ask(
            "POST", f"/executions/{execution_id}/claim", ClaimAnswer, ClaimRequest(worker=worker)
        )

    def workers(self) -> list[WorkerEntry]:
        rows = self.call("GET", "/workers").json()
        return [WorkerEntry.model_validate(row) for row in rows]

    def flow(self, namespace: str, flow_id: str, revision: int | None) -> FlowSource:
        path = f"/flows/{quote(namespace, safe='')}/{quote(flow_id, safe='')}"
        params: dict[str, Any] = {} if revision is None else {"revision": revision}
        return self.ask("GET", path, FlowSource, **params)

    def post_records(self, execution_id: str, body: bytes, **params: Any) -> RecordsAnswer:
        """POST a batch of records already encoded as JSON (``store.wire``)."""
        headers = {"Content-Type": "application/json"}
        path = f"/executions/{execution_id}/records"
        response = self.call("POST", path, data=body, headers=headers, params=params or None)
        return RecordsAnswer.model_validate_json(response.content)

    def download(self, route: str, dest: Path, **params: Any) -> bool:
        """Stream ``route`` into ``dest``; ``False`` on 404."""
        try:
            answer = self.call("GET", route, stream=True, params=params or None)
        except ServerError as exc:
            if getattr(exc, "status", None) == 404:
                return False
            raise
        dest.parent.mkdir(parents=True, exist_ok=True)
        with answer, dest.open("wb") as out:
            for chunk in answer.iter_content(1024 * 1024):
                out.write(chunk)
        return True

    def upload(self, route: str, data: bytes | IO[bytes], **params: Any) -> PartAnswer:
        """``data`` as the body of a PUT (sent again while the server is away when bytes)."""
        return self.ask("PUT", route, PartAnswer, data, **params)
