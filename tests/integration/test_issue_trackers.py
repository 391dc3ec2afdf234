"""GitLab's and Jira's issue tasks against one local server speaking their documented REST APIs.

The server on 127.0.0.1 answers as GitLab (``/api/v4/projects/:id/issues``, ``PRIVATE-TOKEN``)
and Jira (``/rest/api/2/issue``, basic auth with an API token) document it: their status codes
and JSON shapes, and their error bodies when the token is wrong or the project or issue is
missing. It is not GitLab or Jira themselves.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.host_flows import logs, run_json, state_of, task_run
from tests.receivers import Answer, HttpReceiver, Received, http_receiver

pytestmark = pytest.mark.integration

GITLAB_TOKEN = "glpat-Zq8r2WxT5uVbN3mK9pLs"
JIRA_TOKEN = "ATATT3xFfGF0-jira-token-7Hq"
SECRETS = {
    "SECRET_GITLAB_TOKEN": base64.b64encode(GITLAB_TOKEN.encode()).decode(),
    "SECRET_JIRA_TOKEN": base64.b64encode(JIRA_TOKEN.encode()).decode(),
}
OPEN_ISSUES = [
    {
        "id": 501,
        "iid": 3,
        "project_id": 42,
        "title": "Flaky deploy",
        "state": "opened",
        "labels": ["ci"],
        "updated_at": "2024-01-02T10:00:00.000Z",
        "web_url": "https://gitlab.example/group/app/-/issues/3",
    },
    {
        "id": 502,
        "iid": 4,
        "project_id": 42,
        "title": "Docs typo",
        "state": "opened",
        "labels": [],
        "updated_at": "2024-03-04T10:00:00.000Z",
        "web_url": "https://gitlab.example/group/app/-/issues/4",
    },
]


def _json(status: int, value: object) -> Answer:
    return Answer(
        status=status, body=json.dumps(value).encode(), headers={"Content-Type": "application/json"}
    )


def _gitlab(got: Received) -> Answer:
    if got.headers.get("PRIVATE-TOKEN") != GITLAB_TOKEN:
        return _json(401, {"message": "401 Unauthorized"})
    if not got.path.startswith("/api/v4/projects/42/"):
        return _json(404, {"message": "404 Project Not Found"})
    if got.method == "GET":
        return _json(200, OPEN_ISSUES)
    sent = json.loads(got.body)
    if not sent.get("title"):
        return _json(400, {"message": {"title": ["can't be blank"]}})
    return _json(
        201,
        {
            "id": 9001,
            "iid": 12,
            "project_id": 42,
            "title": sent["title"],
            "web_url": "https://gitlab.example/group/app/-/issues/12",
        },
    )


def _jira(server: HttpReceiver, got: Received) -> Answer:
    expected = "Basic " + base64.b64encode(f"robot@example.com:{JIRA_TOKEN}".encode()).decode()
    if got.headers.get("Authorization") != expected:
        return _json(
            401,
            {
                "errorMessages": [
                    "You are not authenticated. Authentication required to perform this operation."
                ],
                "errors": {},
            },
        )
    path = got.path
    if "NOPE-9" in path:
        return _json(
            404,
            {
                "errorMessages": ["Issue does not exist or you do not have permission to see it."],
                "errors": {},
            },
        )
    if got.method == "POST" and path == "/rest/api/2/issue/":
        return _json(
            201, {"id": "10000", "key": "OPS-1", "self": f"{server.url}/rest/api/2/issue/10000"}
        )
    if got.method == "POST" and path == "/rest/api/2/issue/OPS-1/comment":
        return _json(
            201,
            {
                "id": "20000",
                "self": f"{server.url}/rest/api/2/issue/10000/comment/20000",
                "body": json.loads(got.body)["body"],
            },
        )
    if got.method == "PUT" and path == "/rest/api/2/issue/OPS-1":
        return Answer(status=204, body=b"")
    return _json(404, {"errorMessages": [f"no route {got.method} {path}"], "errors": {}})


@pytest.fixture(scope="module")
def service() -> Iterator[HttpReceiver]:
    """One server for the module: GitLab under /api/v4, Jira under /rest/api/2."""
    with http_receiver() as server:
        server.answers.update(
            {
                "/api/v4/projects/42/issues": _gitlab,
                "/api/v4/projects/404/issues": _gitlab,
                "/rest/api/2/issue/": lambda got: _jira(server, got),
                "/rest/api/2/issue/OPS-1/comment": lambda got: _jira(server, got),
                "/rest/api/2/issue/OPS-1": lambda got: _jira(server, got),
                "/rest/api/2/issue/NOPE-9": lambda got: _jira(server, got),
            }
        )
        yield server


def _logged_nowhere(secret: str, home: Path, execution: dict[str, object], *texts: str) -> None:
    text = logs(home, execution)
    assert secret not in text, text
    for other in texts:
        assert secret not in other


def test_gitlab_search_then_create_issue(service: HttpReceiver, home: Path, tmp_path: Path) -> None:
    """Search sends state/labels/search with PRIVATE-TOKEN; Create posts title, description,
    labels; both give Kestra's outputs. The token is masked everywhere."""
    service.received.clear()
    proc, execution = run_json(
        home,
        tmp_path,
        f"""
        id: gitlab_demo
        namespace: tests.services
        tasks:
          - id: search
            type: io.kestra.plugin.gitlab.issues.Search
            url: "{service.url}"
            token: "{{{{ secret('GITLAB_TOKEN') }}}}"
            projectId: "42"
            search: "deploy fails"
            labels: [ci, "p 1"]
          - id: create
            type: io.kestra.plugin.gitlab.issues.Create
            url: "{service.url}"
            token: "{{{{ secret('GITLAB_TOKEN') }}}}"
            projectId: 42
            title: "[Triage] {{{{ outputs.search.count }}}} open issues"
            issueDescription: "First: {{{{ outputs.search.issues[0].title }}}}"
            labels:
              - triage
              - "{{{{ outputs.search.issues[0].labels[0] }}}}"
        """,
        env=SECRETS,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    search, create = service.received
    assert search.method == "GET"
    assert search.path == (
        "/api/v4/projects/42/issues?search=deploy%20fails&state=opened&labels=ci%2Cp%201"
    )
    assert search.headers["PRIVATE-TOKEN"] == GITLAB_TOKEN
    found = task_run(execution, "search")["outputs"]
    assert found["count"] == 2 and found["statusCode"] == 200
    assert found["issues"][1]["web_url"] == OPEN_ISSUES[1]["web_url"]
    assert (create.method, create.path) == ("POST", "/api/v4/projects/42/issues")
    assert create.headers["PRIVATE-TOKEN"] == GITLAB_TOKEN
    assert create.headers["Content-Type"] == "application/json"
    assert json.loads(create.body) == {
        "title": "[Triage] 2 open issues",
        "description": "First: Flaky deploy",
        "labels": ["triage", "ci"],
    }
    assert task_run(execution, "create")["outputs"] == {
        "issueId": "9001",
        "issueIid": 12,
        "webUrl": "https://gitlab.example/group/app/-/issues/12",
        "statusCode": 201,
    }
    _logged_nowhere(GITLAB_TOKEN, home, execution, proc.stdout, proc.stderr)


def test_jira_create_comment_update(service: HttpReceiver, home: Path, tmp_path: Path) -> None:
    """Create posts the fields Kestra builds (kestra-bot label first, issuetype by id), its key
    feeds CreateComment and UpdateFields (PUT); outputs are Kestra's, the API token masked."""
    service.received.clear()
    proc, execution = run_json(
        home,
        tmp_path,
        f"""
        id: jira_demo
        namespace: tests.services
        tasks:
          - id: ticket
            type: io.kestra.plugin.jira.issues.Create
            baseUrl: "{service.url}/"
            username: robot@example.com
            password: "{{{{ secret('JIRA_TOKEN') }}}}"
            projectKey: OPS
            summary: "[P2] Incident: payment-api"
            description: |
              *Service:* payment-api
              Errors "above" 10%
            issueTypeId: "10001"
            labels: [incident, p2-high]
          - id: comment
            type: io.kestra.plugin.jira.issues.CreateComment
            baseUrl: "{service.url}"
            username: robot@example.com
            password: "{{{{ secret('JIRA_TOKEN') }}}}"
            issueIdOrKey: "{{{{ outputs.ticket.key }}}}"
            body: "Paged on-call for {{{{ outputs.ticket.key }}}}"
          - id: update
            type: io.kestra.plugin.jira.issues.UpdateFields
            baseUrl: "{service.url}"
            username: robot@example.com
            password: "{{{{ secret('JIRA_TOKEN') }}}}"
            issueIdOrKey: "{{{{ outputs.ticket.key }}}}"
            fields:
              summary: "[P2] Resolved: payment-api"
              customfield_10005: 3
        """,
        env=SECRETS,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    create, comment, update = service.received
    auth = "Basic " + base64.b64encode(f"robot@example.com:{JIRA_TOKEN}".encode()).decode()
    assert (create.method, create.path) == ("POST", "/rest/api/2/issue/")
    assert create.headers["Authorization"] == auth
    assert create.headers["Content-Type"] == "application/json"
    assert json.loads(create.body) == {
        "fields": {
            "project": {"key": "OPS"},
            "summary": "[P2] Incident: payment-api",
            "description": '*Service:* payment-api\nErrors "above" 10%\n',
            "issuetype": {"id": "10001"},
            "labels": ["kestra-bot", "incident", "p2-high"],
        }
    }
    assert task_run(execution, "ticket")["outputs"] == {
        "id": "10000",
        "key": "OPS-1",
        "self": f"{service.url}/rest/api/2/issue/10000",
        "url": f"{service.url}/browse/OPS-1",
    }
    assert (comment.method, comment.path) == ("POST", "/rest/api/2/issue/OPS-1/comment")
    assert json.loads(comment.body) == {"body": "Paged on-call for OPS-1"}
    assert task_run(execution, "comment")["outputs"] == {
        "id": "20000",
        "issueIdOrKey": "OPS-1",
        "self": f"{service.url}/rest/api/2/issue/10000/comment/20000",
        "url": f"{service.url}/browse/OPS-1?focusedCommentId=20000",
    }
    assert (update.method, update.path) == ("PUT", "/rest/api/2/issue/OPS-1")
    assert json.loads(update.body) == {
        "fields": {"summary": "[P2] Resolved: payment-api", "customfield_10005": "3"}
    }
    assert update.headers["Authorization"] == auth
    assert task_run(execution, "update")["outputs"] == {
        "issueIdOrKey": "OPS-1",
        "url": f"{service.url}/browse/OPS-1",
    }
    _logged_nowhere(JIRA_TOKEN, home, execution, proc.stdout, proc.stderr)


def test_error_answers_fail_with_the_services_words(
    service: HttpReceiver, home: Path, tmp_path: Path
) -> None:
    """401 and 404 from GitLab and Jira fail the task with one line naming it and quoting the
    service; no token shows in the reasons or logs."""
    proc, execution = run_json(
        home,
        tmp_path,
        f"""
        id: tracker_errors
        namespace: tests.services
        tasks:
          - id: bad_token
            type: io.kestra.plugin.gitlab.issues.Create
            url: "{service.url}"
            token: "glpat-wrong-{{{{ secret('GITLAB_TOKEN') }}}}"
            projectId: "42"
            title: x
            allowFailure: true
          - id: no_project
            type: io.kestra.plugin.gitlab.issues.Search
            url: "{service.url}"
            token: "{{{{ secret('GITLAB_TOKEN') }}}}"
            projectId: "404"
            allowFailure: true
          - id: jira_wrong_token
            type: io.kestra.plugin.jira.issues.Create
            baseUrl: "{service.url}"
            username: robot@example.com
            password: "not-{{{{ secret('JIRA_TOKEN') }}}}"
            projectKey: OPS
            allowFailure: true
          - id: no_issue
            type: io.kestra.plugin.jira.issues.UpdateFields
            baseUrl: "{service.url}"
            username: robot@example.com
            password: "{{{{ secret('JIRA_TOKEN') }}}}"
            issueIdOrKey: NOPE-9
            fields:
              summary: x
        """,
        env=SECRETS,
    )
    assert proc.returncode == 1
    reasons = {
        t: task_run(execution, t)["reason"]
        for t in ("bad_token", "no_project", "jira_wrong_token", "no_issue")
    }
    for task_id, reason in reasons.items():
        assert f"task '{task_id}'" in reason and "\n" not in reason, reason
    assert state_of(execution, "bad_token") == "WARNING"
    assert "GitLab answered 401 Unauthorized: 401 Unauthorized" in reasons["bad_token"]
    assert "GitLab answered 404 Not Found: 404 Project Not Found" in reasons["no_project"]
    assert (
        "Jira answered 401 Unauthorized: You are not authenticated." in reasons["jira_wrong_token"]
    )
    assert state_of(execution, "no_issue") == "FAILED"
    assert "Jira answered 404 Not Found: Issue does not exist" in reasons["no_issue"]
    every = json.dumps(reasons) + logs(home, execution) + proc.stdout + proc.stderr
    assert GITLAB_TOKEN not in every and JIRA_TOKEN not in every
