"""``plugin-jira``: create, comment on and edit issues through Jira's REST API v2.

Jira Data Center / Server and Jira Cloud answer the same ``/rest/api/2/issue`` routes. Property
names are Kestra's (``JiraClient``): ``baseUrl``, ``username`` + ``password`` (basic auth, an
API token as password), or ``accessToken`` (bearer), ``payload`` (a JSON body sent as is), and
``options`` (Kestra's HTTP client configuration).
"""

from __future__ import annotations

from typing import Any, Literal

from executor.flow.base import TaskBase
from executor.flow.tasks_http import HttpOptions

_J = "io.kestra.plugin.jira.issues"
JIRA_CREATE_TYPES = (f"{_J}.Create",)
JIRA_COMMENT_TYPES = (f"{_J}.CreateComment",)
JIRA_UPDATE_TYPES = (f"{_J}.UpdateFields",)
JIRA_TYPES = JIRA_CREATE_TYPES + JIRA_COMMENT_TYPES + JIRA_UPDATE_TYPES


class JiraTask(TaskBase):
    """The connection every Jira task has, and the issue fields Kestra declares on all three
    (``Create`` uses them; on the other two Kestra deprecated them and ignores them)."""

    baseUrl: str
    username: str | None = None
    password: str | None = None
    accessToken: str | None = None
    payload: str | None = None
    options: HttpOptions | None = None
    templateUri: str | None = None  # Kestra's hidden template choice: the task's own is used
    projectKey: str | None = None
    summary: str | None = None
    description: str | None = None
    labels: list[str] | str | None = None
    issueTypeId: str | int | None = None


class JiraCreate(JiraTask):
    """``Create``: ``POST /rest/api/2/issue/``; ``id``, ``key``, ``self``, ``url``."""

    type: Literal[JIRA_CREATE_TYPES]  # type: ignore[valid-type]
    projectKey: str


class JiraCreateComment(JiraTask):
    """``CreateComment``: ``POST /rest/api/2/issue/{key}/comment``; ``id``, ``url``, ``self``."""

    type: Literal[JIRA_COMMENT_TYPES]  # type: ignore[valid-type]
    issueIdOrKey: str
    body: str


class JiraUpdateFields(JiraTask):
    """``UpdateFields``: ``PUT /rest/api/2/issue/{key}`` with ``fields``; ``url``."""

    type: Literal[JIRA_UPDATE_TYPES]  # type: ignore[valid-type]
    issueIdOrKey: str
    fields: dict[str, Any] | str
