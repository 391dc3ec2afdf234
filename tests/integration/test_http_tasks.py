"""HTTP Request and Download on the host, against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from tests.integration.host_flows import logs, run_json, state_of, task_run
from tests.receivers import Answer, http_receiver

pytestmark = pytest.mark.integration

SECRET_ENV = {"SECRET_API_PASSWORD": base64.b64encode(b"pa55-w0rd-xyz").decode()}


def test_request_and_download_outputs_auth_and_masking(home: Path, tmp_path: Path) -> None:
    """Request gives code/headers/body/uri, Download lands in the store; no password shown."""
    with http_receiver() as server:
        server.answers["/api"] = Answer(
            body=b'{"ok": true}', headers={"Content-Type": "application/json", "X-Id": "7"}
        )
        server.answers["/files/orders.csv"] = Answer(body=b"id,total\n1,10\n2,20\n")
        proc, execution = run_json(
            home,
            tmp_path,
            f"""
            id: http_demo
            namespace: tests.http
            tasks:
              - id: call
                type: io.kestra.plugin.core.http.Request
                uri: "{server.url}/api?q=1"
                method: POST
                contentType: application/json
                body: '{{{{ {{"n": 2}} | toJson }}}}'
                headers:
                  X-Trace: abc
                options:
                  auth:
                    type: BASIC
                    username: robot
                    password: "{{{{ secret('API_PASSWORD') }}}}"
              - id: fetch
                type: io.kestra.plugin.core.http.Download
                uri: "{server.url}/files/orders.csv"
              - id: echo
                type: io.kestra.plugin.core.log.Log
                message: "auth was robot:{{{{ secret('API_PASSWORD') }}}}"
            """,
            env=SECRET_ENV,
        )
        assert proc.returncode == 0, proc.stderr
        call = task_run(execution, "call")["outputs"]
        assert call["code"] == 200
        assert call["body"] == '{"ok": true}'
        assert call["headers"]["X-Id"] == ["7"]
        assert call["uri"] == f"{server.url}/api?q=1"
        sent = server.received[0]
        assert (sent.method, sent.body) == ("POST", b'{"n":2}')
        assert sent.headers["X-Trace"] == "abc"
        assert sent.headers["Authorization"] == "Basic " + base64.b64encode(
            b"robot:pa55-w0rd-xyz"
        ).decode("ascii")
        fetched = task_run(execution, "fetch")["outputs"]
        assert fetched["length"] == 19 and fetched["code"] == 200
        assert fetched["uri"].startswith("kestra:///tests/http/http_demo/executions/")
        assert fetched["uri"].endswith("/orders.csv")
    stored = home / "artifacts" / fetched["uri"].removeprefix("kestra:///")
    assert stored.read_bytes() == b"id,total\n1,10\n2,20\n"
    text = logs(home, execution)
    assert "pa55-w0rd-xyz" not in text and "pa55-w0rd-xyz" not in proc.stdout + proc.stderr
    assert "auth was robot:******" in text


def test_error_status_fails_the_task_unless_allowed(home: Path, tmp_path: Path) -> None:
    """A 404 fails the Request, naming the URL and code; options.allowFailed keeps it SUCCESS."""
    with http_receiver() as server:
        server.answers["/missing"] = Answer(status=404, body=b"no such thing")
        proc, execution = run_json(
            home,
            tmp_path,
            f"""
            id: http_fail
            namespace: tests.http
            tasks:
              - id: tolerated
                type: io.kestra.plugin.core.http.Request
                uri: "{server.url}/missing"
                options:
                  allowFailed: true
              - id: strict
                type: io.kestra.plugin.core.http.Request
                uri: "{server.url}/missing"
            """,
        )
    assert proc.returncode == 1
    assert state_of(execution, "tolerated") == "SUCCESS"
    assert task_run(execution, "tolerated")["outputs"]["code"] == 404
    assert state_of(execution, "strict") == "FAILED"
    reason = task_run(execution, "strict")["reason"]
    assert "task 'strict'" in reason and "response code 404" in reason
    assert "no such thing" in reason


def test_download_over_the_size_limit_leaves_no_file(home: Path, tmp_path: Path) -> None:
    """options.maxContentLength stops a Download; nothing (not even a .part) stays in the store."""
    with http_receiver() as server:
        server.answers["/big.bin"] = Answer(body=b"x" * 300_000, chunks=5)
        proc, execution = run_json(
            home,
            tmp_path,
            f"""
            id: http_big
            namespace: tests.http
            tasks:
              - id: big
                type: io.kestra.plugin.core.http.Download
                uri: "{server.url}/big.bin"
                options:
                  maxContentLength: 100000
            """,
        )
    assert proc.returncode == 1
    assert "larger than the limit of 100000 bytes" in task_run(execution, "big")["reason"]
    artifacts = home / "artifacts"
    left = [p for p in artifacts.rglob("*") if p.is_file()] if artifacts.exists() else []
    assert left == []


def test_task_timeout_bounds_a_silent_server(home: Path, tmp_path: Path) -> None:
    """A server that never answers in time: the task's timeout ends it FAILED with a reason."""
    with http_receiver() as server:
        server.answers["/slow"] = Answer(delay=8)
        proc, execution = run_json(
            home,
            tmp_path,
            f"""
            id: http_slow
            namespace: tests.http
            tasks:
              - id: slow
                type: io.kestra.plugin.core.http.Request
                uri: "{server.url}/slow"
                timeout: PT1S
            """,
        )
    assert proc.returncode == 1
    assert "the server sent nothing" in task_run(execution, "slow")["reason"]


def test_redirects_followed_or_not(home: Path, tmp_path: Path) -> None:
    """A 302 is followed by default; with followRedirects: false the 302 is the answer."""
    with http_receiver() as server:
        server.answers["/old"] = Answer(status=302, body=b"", headers={"Location": "/new"})
        server.answers["/new"] = Answer(body=b"moved here")
        proc, execution = run_json(
            home,
            tmp_path,
            f"""
            id: http_redirect
            namespace: tests.http
            tasks:
              - id: follow
                type: io.kestra.plugin.core.http.Request
                uri: "{server.url}/old"
              - id: stay
                type: io.kestra.plugin.core.http.Request
                uri: "{server.url}/old"
                options:
                  followRedirects: false
            """,
        )
    assert proc.returncode == 0, proc.stderr
    assert task_run(execution, "follow")["outputs"]["body"] == "moved here"
    assert task_run(execution, "stay")["outputs"]["code"] == 302


def test_unreachable_server_is_one_clear_reason(home: Path, tmp_path: Path) -> None:
    """Nothing listens on the port: FAILED, 'cannot connect', no traceback."""
    with http_receiver() as server:
        url = server.url
    proc, execution = run_json(
        home,
        tmp_path,
        f"""
        id: http_down
        namespace: tests.http
        tasks:
          - id: down
            type: io.kestra.plugin.core.http.Request
            uri: "{url}/x"
        """,
    )
    assert proc.returncode == 1
    assert "cannot connect" in task_run(execution, "down")["reason"]


def test_multipart_form_sends_a_stored_file(home: Path, tmp_path: Path) -> None:
    """formData with multipart/form-data: a kestra:/// URI goes up as a file, text as a field."""
    with http_receiver() as server:
        server.answers["/data.csv"] = Answer(body=b"a,b\n1,2\n")
        proc, execution = run_json(
            home,
            tmp_path,
            f"""
            id: http_upload
            namespace: tests.http
            tasks:
              - id: fetch
                type: io.kestra.plugin.core.http.Download
                uri: "{server.url}/data.csv"
              - id: upload
                type: io.kestra.plugin.core.http.Request
                uri: "{server.url}/upload"
                method: POST
                contentType: multipart/form-data
                formData:
                  user: alice
                  file: "{{{{ outputs.fetch.uri }}}}"
            """,
        )
        assert proc.returncode == 0, proc.stderr
        sent = server.received[-1]
    assert sent.headers["Content-Type"].startswith("multipart/form-data; boundary=")
    assert b'name="user"\r\n\r\nalice' in sent.body
    assert b'name="file"; filename="data.csv"' in sent.body
    assert b"a,b\n1,2\n" in sent.body
    assert state_of(execution, "upload") == "SUCCESS"


def test_download_feeds_a_script_in_a_working_directory(
    home: Path, tmp_path: Path, executions_leave_nothing: None
) -> None:
    """A Download child's uri seeds the next child's inputFiles in the shared container."""
    with http_receiver() as server:
        server.answers["/rows.csv"] = Answer(body=b"x,y\n3,4\n")
        proc, execution = run_json(
            home,
            tmp_path,
            f"""
            id: http_wd
            namespace: tests.http
            tasks:
              - id: wd
                type: io.kestra.plugin.core.flow.WorkingDirectory
                tasks:
                  - id: fetch
                    type: io.kestra.plugin.core.http.Download
                    uri: "{server.url}/rows.csv"
                  - id: count
                    type: io.kestra.plugin.scripts.shell.Commands
                    containerImage: busybox
                    inputFiles:
                      rows.csv: "{{{{ outputs.fetch.uri }}}}"
                    commands:
                      - wc -l < rows.csv
            """,
        )
    assert proc.returncode == 0, proc.stderr
    assert state_of(execution, "count") == "SUCCESS"
    assert "2" in [
        line.split()[-1] for line in logs(home, execution).splitlines() if " count " in line
    ]
