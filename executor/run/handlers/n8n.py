"""n8n's ``TriggerWorkflow``: one call of a workflow's webhook URL, from the host.

The request is Kestra's: ``queryParameters`` appended to ``uri`` (URL-encoded), ``headers`` as
given, ``body`` sent as JSON, or the stored file ``from`` as the body in ``contentType``'s media
type. Only a 200 answer is success, as in Kestra. With ``wait`` (the default) the answer is
``body``: parsed when n8n says it is JSON, else text; without, ``body`` is null.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

from executor.errors import ExecutorError
from executor.flow.tasks_n8n import N8N_CONTENT_TYPES, N8N_METHODS, N8nTriggerWorkflow
from executor.model import Level, State
from executor.run.handlers.attempts import AttemptFn, AttemptResult, Handler, with_attempts
from executor.run.handlers.host import HostJob, TaskInputError, host_attempt
from executor.run.handlers.service_api import checked, service_call, status_line

SERVICE = "n8n"


def _mapping(value: Any, job: HostJob, name: str) -> dict[str, Any]:
    """A map property (or an expression rendered to a JSON object), rendered."""
    rendered = job.render(value)
    if isinstance(rendered, str):
        try:
            rendered = json.loads(rendered) if rendered.strip() else {}
        except ValueError:
            raise TaskInputError(f"'{name}' is not a map: {rendered!r}") from None
    if not isinstance(rendered, dict):
        raise TaskInputError(f"'{name}' is not a map: {rendered!r}")
    return {str(k): v for k, v in rendered.items()}


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value) if isinstance(value, dict | list) else str(value)


def _with_query(url: str, params: dict[str, Any]) -> str:
    if not params:
        return url
    parts = urlsplit(url)
    extra = urlencode({k: _text(v) for k, v in params.items()})
    query = f"{parts.query}&{extra}" if parts.query else extra
    return urlunsplit(parts._replace(query=query))


def _choice(value: str, job: HostJob, name: str, choices: tuple[str, ...]) -> str:
    chosen = job.text(value).strip().upper()
    if chosen not in choices:
        raise TaskInputError(f"'{name}' must be one of {', '.join(choices)}, got {chosen!r}")
    return chosen


def _stored(uri: str, job: HostJob) -> bytes:
    try:
        with job.artifacts().open(uri) as fh:
            return fh.read()
    except ExecutorError as exc:
        raise TaskInputError(f"'from': {exc.message}") from None


def _trigger(task: N8nTriggerWorkflow, job: HostJob) -> AttemptResult:
    url = job.text(task.uri).strip()
    if not url:
        raise TaskInputError("'uri' is empty")
    method = _choice(task.method, job, "method", N8N_METHODS)
    content_type = _choice(task.contentType, job, "contentType", tuple(N8N_CONTENT_TYPES))
    body = _mapping(task.body, job, "body") if task.body is not None else {}
    params = _mapping(task.queryParameters, job, "queryParameters") if task.queryParameters else {}
    headers = {
        k: _text(v)
        for k, v in (_mapping(task.headers, job, "headers") if task.headers else {}).items()
    }
    source = job.text(task.from_).strip() if task.from_ is not None else ""
    if source and body:
        raise TaskInputError("You cannot set both 'from' and 'body' properties at the same time")
    data: bytes | None = None
    if body:
        data = json.dumps(body).encode("utf-8")
        headers.setdefault("Content-Type", "application/json")
    elif source:
        data = _stored(source, job)
        headers.setdefault("Content-Type", N8N_CONTENT_TYPES[content_type])
    target = _with_query(url, params)
    call = service_call(job, method, target, headers, data, task.options)
    response = checked(job, call, SERVICE, ok=range(200, 201))
    job.log(Level.INFO, f"{method} {target} -> {status_line(response.code)}")
    answer: Any = None
    if job.flag(task.wait, "wait", True):
        answer = _parsed(response.body, _content_type(response.headers))
    return AttemptResult(State.SUCCESS, outputs={"statusCode": response.code, "body": answer})


def _content_type(headers: dict[str, list[str]]) -> str:
    for name, values in headers.items():
        if name.lower() == "content-type" and values:
            return values[0]
    return ""


def _parsed(body: bytes, content_type: str) -> Any:
    text = body.decode("utf-8", errors="replace")
    if "application/json" in content_type.lower() and text.strip():
        try:
            return json.loads(text)
        except ValueError:
            raise TaskInputError(
                f"{SERVICE} said its answer is JSON but it is not: {' '.join(text[:200].split())}"
            ) from None
    return text


N8N_ATTEMPTS: dict[type[Any], AttemptFn[Any]] = {N8nTriggerWorkflow: host_attempt(_trigger)}


HANDLES: dict[type[Any], Handler[Any]] = {
    **{kind: with_attempts(attempt) for kind, attempt in N8N_ATTEMPTS.items()},
}
"""What this module runs, by task model (``run.handlers`` collects it)."""
