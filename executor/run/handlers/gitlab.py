"""GitLab's issues and merge requests, from the host, as Kestra's plugin-gitlab sends them.

Every call goes to ``{url}{apiPath}/{projectId}/<resource>`` with the token in ``PRIVATE-TOKEN``
and ``Content-Type: application/json``; the project id is used as given (a path must be
URL-encoded, ``group%2Fproject``, as GitLab documents). ``Search`` reads the one page GitLab
answers (20 issues unless the server is set otherwise), as Kestra does.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

from executor.flow.tasks_gitlab import (
    GitLabIssueCreate,
    GitLabIssueSearch,
    GitLabMergeRequestCreate,
    GitLabTask,
)
from executor.model import Level, State
from executor.run.handlers.attempts import AttemptFn, AttemptResult, Handler, with_attempts
from executor.run.handlers.host import HostJob, TaskInputError, host_attempt
from executor.run.handlers.service_api import (
    checked,
    json_answer,
    optional_text,
    service_call,
    status_line,
)

SERVICE = "GitLab"


def _endpoint(task: GitLabTask, job: HostJob, resource: str) -> str:
    base = job.text(task.url).strip() or "https://gitlab.com"
    api_path = job.text(task.apiPath).strip() or "/api/v4/projects"
    project = job.text(task.projectId).strip()
    if not project:
        raise TaskInputError("'projectId' is empty")
    return f"{base}{api_path}/{project}/{resource}"


def _headers(task: GitLabTask, job: HostJob) -> dict[str, str]:
    token = job.text(task.token).strip()
    if not token:
        raise TaskInputError("'token' is empty")
    job.ctx.secrets.remember(token)
    return {"PRIVATE-TOKEN": token, "Content-Type": "application/json"}


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


def _post(
    job: HostJob, task: GitLabTask, resource: str, body: dict[str, Any]
) -> tuple[int, dict[str, Any]]:
    url = _endpoint(task, job, resource)
    call = service_call(job, "POST", url, _headers(task, job), json.dumps(body).encode())
    response = checked(job, call, SERVICE)
    job.log(Level.INFO, f"POST {url} -> {status_line(response.code)}")
    created = json_answer(response, SERVICE)
    if not isinstance(created, dict) or created.get("id") is None:
        raise TaskInputError(f"{SERVICE} answered {response.code} without an 'id'")
    return response.code, created


def _create_issue(task: GitLabIssueCreate, job: HostJob) -> AttemptResult:
    body: dict[str, Any] = {"title": job.text(task.title)}
    if task.issueDescription is not None:
        body["description"] = job.text(task.issueDescription)
    if task.labels is not None:
        body["labels"] = _labels(task.labels, job)
    code, issue = _post(job, task, "issues", body)
    iid = issue.get("iid")
    return AttemptResult(
        State.SUCCESS,
        outputs={
            "issueId": str(issue["id"]),
            "issueIid": int(iid) if iid is not None else None,
            "webUrl": optional_text(issue.get("web_url")),
            "statusCode": code,
        },
    )


def _search_issues(task: GitLabIssueSearch, job: HostJob) -> AttemptResult:
    params = []
    if task.search is not None:
        params.append("search=" + quote(job.text(task.search), safe=""))
    params.append("state=" + (job.text(task.state) or "opened"))
    if task.labels is not None:
        params.append("labels=" + quote(",".join(_labels(task.labels, job)), safe=""))
    url = _endpoint(task, job, "issues") + "?" + "&".join(params)
    call = service_call(job, "GET", url, _headers(task, job), None)
    response = checked(job, call, SERVICE)
    issues = json_answer(response, SERVICE)
    if not isinstance(issues, list):
        raise TaskInputError(f"{SERVICE} answered {response.code} with no list of issues")
    job.log(Level.INFO, f"GET {url} -> {status_line(response.code)}: {len(issues)} issue(s)")
    return AttemptResult(
        State.SUCCESS,
        outputs={"issues": issues, "count": len(issues), "statusCode": response.code},
    )


def _create_merge_request(task: GitLabMergeRequestCreate, job: HostJob) -> AttemptResult:
    body: dict[str, Any] = {
        "title": job.text(task.title),
        "source_branch": job.text(task.sourceBranch),
        "target_branch": job.text(task.targetBranch),
    }
    if task.mergeRequestDescription is not None:
        body["description"] = job.text(task.mergeRequestDescription)
    code, created = _post(job, task, "merge_requests", body)
    return AttemptResult(
        State.SUCCESS,
        outputs={
            "mergeReqID": str(created["id"]),
            "webUrl": optional_text(created.get("web_url")),
            "statusCode": code,
        },
    )


GITLAB_ATTEMPTS: dict[type[Any], AttemptFn[Any]] = {
    GitLabIssueCreate: host_attempt(_create_issue),
    GitLabIssueSearch: host_attempt(_search_issues),
    GitLabMergeRequestCreate: host_attempt(_create_merge_request),
}


HANDLES: dict[type[Any], Handler[Any]] = {
    **{kind: with_attempts(attempt) for kind, attempt in GITLAB_ATTEMPTS.items()},
}
"""What this module runs, by task model (``run.handlers`` collects it)."""
