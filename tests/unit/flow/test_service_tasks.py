"""The GitLab, Jira, Zulip, n8n and Odoo tasks as flows: every Kestra property validates, a
typo or an impossible choice is refused by name (the calls: tests/integration/
test_issue_trackers.py, test_workflow_webhooks.py, test_odoo_query.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from executor.errors import FlowValidationError
from executor.flow.loader import load_flow_text

HTTP_OPTIONS = (
    "    options:\n"
    "      timeout: {connectTimeout: PT5S, readIdleTimeout: PT30S}\n"
    "      auth: {type: BASIC, username: u, password: p}\n"
    "      proxy: {type: HTTP, address: proxy.local, port: 3128}\n"
    "      ssl: {insecureTrustAllCertificates: false}\n"
    "      followRedirects: true\n"
    "      allowFailed: false\n"
    "      defaultCharset: UTF-8\n"
)
EVERY_PROPERTY = {
    "io.kestra.plugin.gitlab.issues.Create": (
        "    url: https://gitlab.local\n    token: t\n    projectId: 7\n"
        "    apiPath: /api/v4/projects\n    title: x\n    issueDescription: y\n"
        "    labels: [a, b]\n"
    ),
    "io.kestra.plugin.gitlab.issues.Search": (
        "    token: t\n    projectId: '7'\n    search: bug\n    state: all\n    labels: [a]\n"
    ),
    "io.kestra.plugin.gitlab.mergerequests.Create": (
        "    token: t\n    projectId: '7'\n    title: x\n    sourceBranch: f\n"
        "    targetBranch: main\n    mergeRequestDescription: d\n"
    ),
    "io.kestra.plugin.gitlab.MergeRequest": (
        "    token: t\n    projectId: '7'\n    title: x\n    sourceBranch: f\n"
        "    targetBranch: main\n"
    ),
    "io.kestra.plugin.jira.issues.Create": (
        "    baseUrl: https://jira.local\n    username: u\n    password: p\n"
        "    accessToken: a\n    projectKey: OPS\n    summary: s\n    description: d\n"
        "    labels: [a]\n    issueTypeId: '10001'\n    payload: ''\n" + HTTP_OPTIONS
    ),
    "io.kestra.plugin.jira.issues.CreateComment": (
        "    baseUrl: https://jira.local\n    accessToken: a\n    issueIdOrKey: OPS-1\n"
        "    body: hi\n    projectKey: OPS\n    summary: ignored\n"
    ),
    "io.kestra.plugin.jira.issues.UpdateFields": (
        "    baseUrl: https://jira.local\n    accessToken: a\n    issueIdOrKey: OPS-1\n"
        "    fields: {summary: s, customfield_10005: 3}\n"
    ),
    "io.kestra.plugin.zulip.ZulipIncomingWebhook": (
        "    url: https://zulip.local/api/v1/external/slack_incoming?api_key=k\n"
        '    payload: \'{"text": "hi"}\'\n'
        "    options: {connectTimeout: PT5S, readTimeout: PT10S, headers: {X-A: b}}\n"
    ),
    "io.kestra.plugin.n8n.TriggerWorkflow": (
        "    uri: https://n8n.local/webhook/x\n    method: post\n    body: {a: 1}\n"
        "    queryParameters: {q: 1}\n    headers: {X-A: b}\n    contentType: JSON\n"
        "    wait: false\n" + HTTP_OPTIONS
    ),
    "io.kestra.plugin.n8n.webhook.TriggerWorkflow": (
        "    uri: https://n8n.local/webhook/x\n    method: POST\n"
        "    from: kestra:///f/x.csv\n    contentType: BINARY\n"
    ),
    "io.kestra.plugin.odoo.Query": (
        "    url: https://odoo.local\n    db: d\n    username: u\n    password: p\n"
        "    model: res.partner\n    operation: search_read\n"
        "    filters: [[is_company, '=', true]]\n    fields: [name]\n    values: {a: 1}\n"
        "    ids: [1, 2]\n    limit: 10\n    offset: 0\n    fetchType: FETCH\n"
    ),
}


def _flow(task_type: str, props: str) -> str:
    return f"id: f\nnamespace: n\ntasks:\n  - id: t\n    type: {task_type}\n{props}"


@pytest.mark.parametrize(("task_type", "props"), list(EVERY_PROPERTY.items()))
def test_every_kestra_property_validates(task_type: str, props: str) -> None:
    loaded = load_flow_text(_flow(task_type, props), Path("f.yaml"))
    assert loaded.flow.tasks[0].type == task_type


@pytest.mark.parametrize(
    ("task_type", "props", "message"),
    [
        (
            "io.kestra.plugin.gitlab.issues.Create",
            "    token: t\n    projectID: 7\n    title: x\n",
            "projectID",
        ),
        (
            "io.kestra.plugin.jira.issues.Create",
            "    baseUrl: https://j\n    accessToken: a\n",
            "projectKey",
        ),
        (
            "io.kestra.plugin.odoo.Query",
            "    url: u\n    db: d\n    username: u\n    password: p\n    model: m\n"
            "    operation: SEARCH_REED\n",
            "'operation' must be one of SEARCH_READ, READ, CREATE",
        ),
        (
            "io.kestra.plugin.odoo.Query",
            "    url: u\n    db: d\n    username: u\n    password: p\n    model: m\n"
            "    operation: SEARCH\n    fetchType: ALL\n",
            "'fetchType' must be one of FETCH, FETCH_ONE, STORE, NONE",
        ),
        (
            "io.kestra.plugin.n8n.TriggerWorkflow",
            "    uri: u\n    method: FETCH\n",
            "'method' must be one of GET, POST",
        ),
    ],
)
def test_typos_and_impossible_choices_are_refused(task_type: str, props: str, message: str) -> None:
    with pytest.raises(FlowValidationError) as caught:
        load_flow_text(_flow(task_type, props), Path("f.yaml"))
    assert message in str(caught.value)
    assert "does not run" not in str(caught.value)
