"""``plugin-gitlab``: issues and merge requests through a GitLab server's REST API (v4).

Property names are Kestra's (``AbstractGitLabTask``): ``url`` (``https://gitlab.com``, or a
self-hosted GitLab), ``token`` (sent as ``PRIVATE-TOKEN``), ``projectId``, ``apiPath``
(``/api/v4/projects``).
"""

from __future__ import annotations

from typing import Literal

from executor.flow.base import TaskBase

_G = "io.kestra.plugin.gitlab"
ISSUE_CREATE_TYPES = (f"{_G}.issues.Create",)
ISSUE_SEARCH_TYPES = (f"{_G}.issues.Search",)
MERGE_REQUEST_CREATE_TYPES = (f"{_G}.mergerequests.Create", f"{_G}.MergeRequest")
GITLAB_TYPES = ISSUE_CREATE_TYPES + ISSUE_SEARCH_TYPES + MERGE_REQUEST_CREATE_TYPES

Labels = list[str] | str  # a list, or an expression rendered to one (JSON text)


class GitLabTask(TaskBase):
    """What every GitLab task has: where the server is and how to reach the project."""

    url: str = "https://gitlab.com"
    token: str
    projectId: str | int
    apiPath: str = "/api/v4/projects"


class GitLabIssueCreate(GitLabTask):
    """``issues.Create``: ``POST .../issues``; ``issueId``, ``issueIid``, ``webUrl``..."""

    type: Literal[ISSUE_CREATE_TYPES]  # type: ignore[valid-type]
    title: str
    issueDescription: str | None = None
    labels: Labels | None = None


class GitLabIssueSearch(GitLabTask):
    """``issues.Search``: ``GET .../issues?state=...``; ``issues``, ``count``, ``statusCode``."""

    type: Literal[ISSUE_SEARCH_TYPES]  # type: ignore[valid-type]
    search: str | None = None
    state: str = "opened"
    labels: Labels | None = None


class GitLabMergeRequestCreate(GitLabTask):
    """``mergerequests.Create``: ``POST .../merge_requests``; ``mergeReqID``, ``webUrl``."""

    type: Literal[MERGE_REQUEST_CREATE_TYPES]  # type: ignore[valid-type]
    title: str
    sourceBranch: str
    targetBranch: str
    mergeRequestDescription: str | None = None
