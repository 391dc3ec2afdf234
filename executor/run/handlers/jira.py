"""Jira issues, from the host, as Kestra's plugin-jira sends them (REST API v2).

``Create`` posts ``{"fields": {project, summary, description, issuetype, labels}}`` (the
``kestra-bot`` label first, as Kestra adds it) unless ``payload`` gives the body;
``CreateComment`` posts ``{"body": ...}``; ``UpdateFields`` puts ``{"fields": {...}}`` with each
value as text, as Kestra's template writes it. Authentication is basic (``username`` and
``password``, which may be an API token) or a bearer ``accessToken``.
"""

from __future__ import annotations

import base64
import json
from typing import Any
from urllib.parse import quote

from executor.flow.tasks_jira import JiraCreate, JiraCreateComment, JiraTask, JiraUpdateFields
from executor.model import Level, State
from executor.run.handlers.attempts import AttemptFn, AttemptResult, Handler, with_attempts
from executor.run.handlers.host import HostJob, TaskInputError, host_attempt
from executor.run.handlers.service_api import (
    allow_failed,
    checked,
    optional_text,
    service_call,
    status_line,
)
from executor.run.http import HttpResponse

SERVICE = "Jira"
ISSUE_ROUTE = "/rest/api/2/issue/"
BROWSE_ROUTE = "/browse/"
_EXCERPT = 500  # Kestra's JiraUtil keeps 500 characters of an unexpected answer


def _root(task: JiraTask, job: HostJob) -> str:
    """``baseUrl`` rendered, without a trailing slash (the REST and browse roots)."""
    root = job.text(task.baseUrl).strip()
    if not root:
        raise TaskInputError("'baseUrl' is empty")
    return root[:-1] if root.endswith("/") else root


def _segment(value: str) -> str:
    """An issue key or id as one path segment (``PROJ-1`` unchanged, a space as ``%20``)."""
    return quote(value, safe="")


def _send(task: JiraTask, job: HostJob, method: str, url: str, body: str) -> HttpResponse:
    headers = {"Content-Type": "application/json"}
    user = job.text(task.username) if task.username is not None else None
    password = job.text(task.password) if task.password is not None else None
    if user is not None and password is not None:
        job.ctx.secrets.remember(password)
        pair = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
        headers["Authorization"] = f"Basic {pair}"
    elif task.accessToken is not None:
        token = job.text(task.accessToken)
        job.ctx.secrets.remember(token)
        headers["Authorization"] = f"Bearer {token}"
    else:
        raise TaskInputError(
            "Missing required authentication fields: give 'username' and 'password', "
            "or 'accessToken'"
        )
    call = service_call(job, method, url, headers, body.encode("utf-8"), task.options)
    response = checked(job, call, SERVICE, allow=allow_failed(job, task.options))
    job.log(Level.INFO, f"{method} {url} -> {status_line(response.code)}")
    return response


def _answer(response: HttpResponse, field: str, what: str) -> dict[str, Any]:
    """The answer's JSON object, which must hold ``field`` (Kestra's ``requireField``)."""
    text = response.body.decode("utf-8", errors="replace")
    try:
        parsed = json.loads(text) if text.strip() else None
    except ValueError:
        parsed = None
    if not isinstance(parsed, dict) or parsed.get(field) is None:
        excerpt = text[:_EXCERPT] + ("..." if len(text) > _EXCERPT else "")
        raise TaskInputError(
            f"{SERVICE} returned HTTP {response.code} without {what}; response: "
            + " ".join(excerpt.split())
        )
    return parsed


def _labels(value: Any, job: HostJob) -> list[str]:
    rendered = job.render(value)
    if isinstance(rendered, str):
        try:
            rendered = json.loads(rendered)
        except ValueError:
            raise TaskInputError(f"'labels' is not a list: {rendered!r}") from None
    if not isinstance(rendered, list):
        raise TaskInputError(f"'labels' is not a list: {rendered!r}")
    return [v if isinstance(v, str) else json.dumps(v) for v in rendered]


def _create_body(task: JiraCreate, job: HostJob) -> str:
    if task.payload is not None:
        payload = job.text(task.payload)
        if payload.strip():
            return payload
    fields: dict[str, Any] = {"project": {"key": job.text(task.projectKey)}}
    if task.summary is not None:
        fields["summary"] = job.text(task.summary)
    if task.description is not None:
        description = job.text(task.description)
        if description.strip():
            fields["description"] = description
    if task.issueTypeId is not None:
        fields["issuetype"] = {"id": job.text(task.issueTypeId)}
    fields["labels"] = ["kestra-bot", *(_labels(task.labels, job) if task.labels else [])]
    return json.dumps({"fields": fields})


def _create(task: JiraCreate, job: HostJob) -> AttemptResult:
    root = _root(task, job)
    response = _send(task, job, "POST", root + ISSUE_ROUTE, _create_body(task, job))
    issue = _answer(response, "key", "an issue key")
    key = str(issue["key"])
    job.log(Level.INFO, f"created {key}")
    return AttemptResult(
        State.SUCCESS,
        outputs={
            "id": optional_text(issue.get("id")),
            "key": key,
            "self": optional_text(issue.get("self")),
            "url": root + BROWSE_ROUTE + _segment(key),
        },
    )


def _comment(task: JiraCreateComment, job: HostJob) -> AttemptResult:
    root = _root(task, job)
    issue = job.text(task.issueIdOrKey).strip()
    if not issue:
        raise TaskInputError("'issueIdOrKey' is empty")
    url = root + ISSUE_ROUTE + _segment(issue) + "/comment"
    response = _send(task, job, "POST", url, json.dumps({"body": job.text(task.body)}))
    comment = _answer(response, "id", "a comment id")
    return AttemptResult(
        State.SUCCESS,
        outputs={
            "id": str(comment["id"]),
            "issueIdOrKey": issue,
            "self": optional_text(comment.get("self")),
            "url": f"{root}{BROWSE_ROUTE}{_segment(issue)}?focusedCommentId={comment['id']}",
        },
    )


def _update(task: JiraUpdateFields, job: HostJob) -> AttemptResult:
    root = _root(task, job)
    issue = job.text(task.issueIdOrKey).strip()
    if not issue:
        raise TaskInputError("'issueIdOrKey' is empty")
    fields = job.render(task.fields)
    if isinstance(fields, str):
        try:
            fields = json.loads(fields)
        except ValueError:
            raise TaskInputError(f"'fields' is not a map: {fields!r}") from None
    if not isinstance(fields, dict):
        raise TaskInputError(f"'fields' is not a map: {fields!r}")
    body = json.dumps({"fields": {str(k): _as_text(v) for k, v in fields.items()}})
    _send(task, job, "PUT", root + ISSUE_ROUTE + _segment(issue), body)
    return AttemptResult(
        State.SUCCESS,
        outputs={"issueIdOrKey": issue, "url": root + BROWSE_ROUTE + _segment(issue)},
    )


def _as_text(value: Any) -> str:
    """A field value as Kestra's template prints it inside quotes."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    if isinstance(value, int | float):
        return str(value)
    return json.dumps(value)


JIRA_ATTEMPTS: dict[type[Any], AttemptFn[Any]] = {
    JiraCreate: host_attempt(_create),
    JiraCreateComment: host_attempt(_comment),
    JiraUpdateFields: host_attempt(_update),
}


HANDLES: dict[type[Any], Handler[Any]] = {
    **{kind: with_attempts(attempt) for kind, attempt in JIRA_ATTEMPTS.items()},
}
"""What this module runs, by task model (``run.handlers`` collects it)."""
