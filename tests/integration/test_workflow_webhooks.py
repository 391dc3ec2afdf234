"""Zulip's incoming webhook and n8n's TriggerWorkflow against one local server speaking their
documented HTTP answers.

The server on 127.0.0.1 answers as a Zulip server's ``/api/v1/external/...`` endpoint does
(``{"result": "success"}``, or 401 ``{"result": "error", "msg": "Invalid API key"}``) and as an
n8n workflow's webhook (its JSON or text answer, 404 ``The requested webhook ... is not
registered``). It is not Zulip or n8n themselves.
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

ZULIP_KEY = "zUl1pK3yW9q2Xv7Lm4Nb"
N8N_PASSWORD = "n8n-basic-Pw-5Yt"
SECRETS = {
    "SECRET_ZULIP_WEBHOOK": "",  # filled per test with the server's URL
    "SECRET_N8N_PASSWORD": base64.b64encode(N8N_PASSWORD.encode()).decode(),
}
ROADMAP = [
    {"day": 1, "focus": "Pods", "topics": ["kubectl"], "practice": "kind", "outcome": "a pod"},
    {"day": 2, "focus": "Services", "topics": ["DNS"], "practice": "expose", "outcome": "a svc"},
]


def _json(status: int, value: object) -> Answer:
    return Answer(
        status=status,
        body=json.dumps(value).encode(),
        headers={"Content-Type": "application/json; charset=utf-8"},
    )


def _zulip(got: Received) -> Answer:
    if f"api_key={ZULIP_KEY}" not in got.path:
        return _json(401, {"result": "error", "msg": "Invalid API key", "code": "INVALID_API_KEY"})
    try:
        json.loads(got.body)
    except ValueError:
        return _json(400, {"result": "error", "msg": "Malformed JSON", "code": "BAD_REQUEST"})
    return _json(200, {"result": "success", "msg": ""})


def _n8n(got: Received) -> Answer:
    path = got.path.split("?")[0]
    if path == "/webhook/roadmap":
        expected = "Basic " + base64.b64encode(f"kestra:{N8N_PASSWORD}".encode()).decode()
        if got.headers.get("Authorization") != expected:
            return Answer(status=403, body=b"Authorization data is wrong!")
        return _json(200, ROADMAP)
    if path == "/webhook/ping":
        return Answer(body=b"pong", headers={"Content-Type": "text/plain; charset=utf-8"})
    if path == "/webhook/upload":
        return _json(200, {"message": "Workflow was started"})
    return _json(
        404,
        {
            "code": 404,
            "message": f'The requested webhook "{got.method} {path[9:]}" is not registered.',
            "hint": "Click the 'Execute workflow' button on the canvas, then try again.",
        },
    )


@pytest.fixture(scope="module")
def service() -> Iterator[HttpReceiver]:
    with http_receiver() as server:
        server.answers.update(
            {
                "/api/v1/external/slack_incoming": _zulip,
                "/webhook/roadmap": _n8n,
                "/webhook/ping": _n8n,
                "/webhook/upload": _n8n,
                "/webhook/missing": _n8n,
            }
        )
        yield server


def _secrets(service: HttpReceiver, key: str) -> dict[str, str]:
    url = f"{service.url}/api/v1/external/slack_incoming?api_key={key}&stream=deploys"
    return {**SECRETS, "SECRET_ZULIP_WEBHOOK": base64.b64encode(url.encode()).decode()}


def test_zulip_webhook_posts_the_payload(service: HttpReceiver, home: Path, tmp_path: Path) -> None:
    """The rendered payload is POSTed as JSON to the webhook URL; a wrong key fails the task
    with Zulip's words, and the key (in the URL) is never shown."""
    service.received.clear()
    proc, execution = run_json(
        home,
        tmp_path,
        """
        id: zulip_demo
        namespace: tests.services
        tasks:
          - id: announce
            type: io.kestra.plugin.zulip.ZulipIncomingWebhook
            url: "{{ secret('ZULIP_WEBHOOK') }}"
            payload: |
              {"text": {{ ('Deployment **succeeded** of ' ~ flow.id) | toJson }}}
        """,
        env=_secrets(service, ZULIP_KEY),
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (sent,) = service.received
    assert sent.method == "POST"
    assert sent.path == f"/api/v1/external/slack_incoming?api_key={ZULIP_KEY}&stream=deploys"
    assert sent.headers["Content-Type"] == "application/json"
    assert json.loads(sent.body) == {"text": "Deployment **succeeded** of zulip_demo"}
    assert ZULIP_KEY not in logs(home, execution)

    proc, execution = run_json(
        home,
        tmp_path,
        """
        id: zulip_bad_key
        namespace: tests.services
        tasks:
          - id: announce
            type: io.kestra.plugin.notifications.zulip.ZulipIncomingWebhook
            url: "{{ secret('ZULIP_WEBHOOK') }}"
            payload: '{"text": "hello"}'
        """,
        env=_secrets(service, "wrong-" + ZULIP_KEY),
    )
    assert proc.returncode == 1
    reason = task_run(execution, "announce")["reason"]
    assert "task 'announce'" in reason
    assert "the Zulip webhook answered 401" in reason and "Invalid API key" in reason
    assert ZULIP_KEY not in reason + logs(home, execution) + proc.stdout + proc.stderr


def test_n8n_trigger_workflow(service: HttpReceiver, home: Path, tmp_path: Path) -> None:
    """POST with a JSON body and basic auth gives n8n's JSON answer as ``body``; GET with query
    parameters and headers, ``wait: false``; a stored file sent as the body; an unregistered
    webhook fails the task with n8n's message."""
    service.received.clear()
    proc, execution = run_json(
        home,
        tmp_path,
        f"""
        id: n8n_demo
        namespace: tests.services
        inputs:
          - id: prompt
            type: STRING
            defaults: Kubernetes in 60 days
        tasks:
          - id: call_n8n
            type: io.kestra.plugin.n8n.TriggerWorkflow
            method: POST
            uri: "{service.url}/webhook/roadmap"
            body:
              prompt: "{{{{ inputs.prompt }}}}"
              days: 60
            options:
              auth:
                type: BASIC
                username: kestra
                password: "{{{{ secret('N8N_PASSWORD') }}}}"
          - id: first_day
            type: io.kestra.plugin.core.debug.Return
            format: "{{{{ outputs.call_n8n.body[0].focus }}}}"
          - id: ping
            type: io.kestra.plugin.n8n.webhook.TriggerWorkflow
            method: GET
            uri: "{service.url}/webhook/ping"
            queryParameters:
              source: kestra
              note: a b&c
            headers:
              X-Request-ID: "{{{{ taskrun.id }}}}"
          - id: fire_and_forget
            type: io.kestra.plugin.n8n.TriggerWorkflow
            method: GET
            uri: "{service.url}/webhook/ping"
            wait: false
          - id: report
            type: io.kestra.plugin.core.storage.Write
            content: "day,focus\\n1,Pods\\n"
            extension: .csv
          - id: upload
            type: io.kestra.plugin.n8n.TriggerWorkflow
            method: POST
            uri: "{service.url}/webhook/upload"
            from: "{{{{ outputs.report.uri }}}}"
            contentType: TEXT
          - id: missing
            type: io.kestra.plugin.n8n.TriggerWorkflow
            method: POST
            uri: "{service.url}/webhook/missing"
        """,
        env=SECRETS,
    )
    assert proc.returncode == 1
    roadmap, ping, forget, upload, missing = service.received
    assert (roadmap.method, roadmap.path) == ("POST", "/webhook/roadmap")
    assert roadmap.headers["Content-Type"] == "application/json"
    assert json.loads(roadmap.body) == {"prompt": "Kubernetes in 60 days", "days": 60}
    assert task_run(execution, "call_n8n")["outputs"] == {"statusCode": 200, "body": ROADMAP}
    assert task_run(execution, "first_day")["outputs"]["value"] == "Pods"
    assert ping.method == "GET" and ping.body == b""
    assert ping.path == "/webhook/ping?source=kestra&note=a+b%26c"
    assert ping.headers["X-Request-ID"] == task_run(execution, "ping")["id"]
    assert task_run(execution, "ping")["outputs"] == {"statusCode": 200, "body": "pong"}
    assert forget.path == "/webhook/ping"
    assert task_run(execution, "fire_and_forget")["outputs"] == {"statusCode": 200, "body": None}
    assert upload.body == b"day,focus\n1,Pods\n"
    assert upload.headers["Content-Type"] == "text/plain"
    assert task_run(execution, "upload")["outputs"]["body"] == {"message": "Workflow was started"}
    assert missing.path == "/webhook/missing"
    assert state_of(execution, "missing") == "FAILED"
    reason = task_run(execution, "missing")["reason"]
    assert "task 'missing'" in reason and "\n" not in reason
    assert (
        'n8n answered 404 Not Found: The requested webhook "POST missing" is not registered.'
        in (reason)
    )
    assert N8N_PASSWORD not in logs(home, execution) + proc.stdout + proc.stderr
