"""Server mode against a real server process, the real engine and Kestra's own Python client."""

from __future__ import annotations

import io
import json
import signal
import sqlite3
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.integration.helpers import our_resources
from tests.integration.server_helpers import (
    BUSYBOX,
    LiveServer,
    push_flow,
    shell_flow,
    sse_events,
    wait_log,
    wait_state,
)

pytestmark = pytest.mark.integration

HELLO = f"""
id: hello
namespace: company.team
inputs:
  - id: who
    type: STRING
    defaults: world
tasks:
  - id: wd
    type: io.kestra.plugin.core.flow.WorkingDirectory
    tasks:
      - id: greet
        type: io.kestra.plugin.scripts.shell.Commands
        containerImage: {BUSYBOX}
        commands:
          - echo "hello {{{{ inputs.who }}}}"
          - echo kept > out.txt
        outputFiles: [out.txt]
"""

SLEEPER = shell_flow("sleeper", "company.team", "nap", ["echo napping", "sleep 300"])


def test_kestra_client_runs_a_flow_on_both_prefixes(
    server: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Kestra's own client (PyPI ``kestra``) gets SUCCESS and the task's log, old and new paths."""
    from kestra import Flow

    with server.client() as client:
        push_flow(client, HELLO)
    monkeypatch.setenv("KESTRA_HOSTNAME", server.url)
    for tenant in (None, "main"):
        flow = Flow(tenant=tenant, poll_interval=1)
        result = flow.execute("company.team", "hello", {"who": f"kestra-{tenant}"})
        assert result.status == "SUCCESS"
        assert f"hello kestra-{tenant}" in (result.log or "")


def test_follow_streams_progress_then_end_in_the_id_field(server: LiveServer) -> None:
    """``/follow`` tags events in ``id:``: start, progress (full executions), end; then closes."""
    with server.client() as client:
        push_flow(client, HELLO)
        created = client.post("/api/v1/main/executions/company.team/hello").json()
        assert created["state"]["current"] == "QUEUED"
        assert created["url"] == f"/ui/main/executions/company.team/hello/{created['id']}"
        with client.stream("GET", f"/api/v1/executions/{created['id']}/follow") as stream:
            assert stream.headers["content-type"].startswith("text/event-stream")
            lines = list(stream.iter_lines())
    events = sse_events(lines)
    ids = [ident for ident, _ in events]
    assert ids[0] == "start" and ids[-1] == "end"
    assert set(ids[1:-1]) == {"progress"} and len(ids) >= 3
    final = json.loads(events[-1][1])
    assert final["id"] == created["id"] and final["state"]["current"] == "SUCCESS"
    progressed = [json.loads(data)["state"]["current"] for ident, data in events[1:-1]]
    assert "RUNNING" in progressed
    # a finished execution gives one `end` and nothing else
    with server.client() as client:
        again = client.get(f"/api/v1/executions/{created['id']}/follow").text
    assert [i for i, _ in sse_events(again.splitlines())] == ["end"]


def test_logs_list_download_and_output_file(server: LiveServer) -> None:
    """Logs filter by level and task; the output file downloads by its kestra:/// URI."""
    with server.client() as client:
        push_flow(client, HELLO)
        done = client.post(
            "/api/v1/executions/company.team/hello",
            params={"wait": "true", "labels": ["team:data", "env:test"]},
            files={"who": (None, "logs")},
        ).json()
        assert done["state"]["current"] == "SUCCESS"
        assert {"key": "team", "value": "data"} in done["labels"]
        eid = done["id"]
        lines = client.get(
            f"/api/v1/logs/{eid}", params={"taskId": "greet", "minLevel": "INFO"}
        ).json()
        assert next(e["message"] for e in lines) == "hello logs"
        assert {e["taskId"] for e in lines} == {"greet"} and {e["level"] for e in lines} == {"INFO"}
        assert lines[0]["executionId"] == eid and lines[0]["level"] == "INFO"
        errors_only = client.get(f"/api/v1/logs/{eid}", params={"minLevel": "ERROR"}).json()
        assert errors_only == []
        text = client.get(f"/api/v1/logs/{eid}/download").text
        assert "hello logs" in text
        greet = next(t for t in done["taskRunList"] if t["taskId"] == "greet")
        uri = greet["outputs"]["outputFiles"]["out.txt"]
        got = client.get(f"/api/v1/executions/{eid}/file", params={"path": uri})
        assert got.status_code == 200 and got.content == b"kept\n"
        other = client.get(
            f"/api/v1/executions/{eid}/file", params={"path": "kestra:///etc/passwd"}
        )
        assert other.status_code == 422
        found = client.get(
            "/api/v1/executions/search",
            params={"namespace": "company", "labels": "team:data", "state": "SUCCESS"},
        ).json()
        assert found["total"] == 1 and found["results"][0]["id"] == eid


def test_kill_stops_the_run_and_leaves_nothing(server: LiveServer) -> None:
    """DELETE kill answers 202, the run ends KILLED with its containers gone; again is 409."""
    with server.client() as client:
        push_flow(client, SLEEPER)
        eid = client.post("/api/v1/executions/company.team/sleeper").json()["id"]
        running = wait_state(client, eid, {"RUNNING"})
        assert running["state"]["current"] == "RUNNING"
        wait_log(client, eid, "napping")
        assert client.delete(f"/api/v1/executions/{eid}/kill").status_code == 202
        ended = wait_state(client, eid, {"KILLED", "FAILED", "SUCCESS"}, timeout=60)
        assert ended["state"]["current"] == "KILLED"
        assert our_resources(**{"executor.execution": eid}) == []
        again = client.delete(f"/api/v1/executions/{eid}/kill")
        assert again.status_code == 409 and "already ended" in again.json()["message"]
        assert client.delete(f"/api/v1/executions/{eid}").status_code == 204
        assert client.get(f"/api/v1/executions/{eid}").status_code == 404


def test_queued_work_survives_a_server_killed_mid_queue(
    home: Path, executions_leave_nothing: None
) -> None:
    """A server killed -9 with a run going and work queued: on restart the run is FAILED
    ("executor died") and the queued executions run to SUCCESS."""
    first = LiveServer(home, workers=1).start()
    with first.client() as client:
        push_flow(client, SLEEPER)
        push_flow(client, HELLO)
        long_id = client.post("/api/v1/executions/company.team/sleeper").json()["id"]
        wait_state(client, long_id, {"RUNNING"})
        queued = [
            client.post(
                "/api/v1/executions/company.team/hello", files={"who": (None, f"q{n}")}
            ).json()["id"]
            for n in range(2)
        ]
        assert {
            client.get(f"/api/v1/executions/{q}").json()["state"]["current"] for q in queued
        } == {"QUEUED"}
    first.stop(signal.SIGKILL)
    with LiveServer(home, workers=1) as second, second.client() as client:
        died = client.get(f"/api/v1/executions/{long_id}").json()
        assert died["state"]["current"] == "FAILED"
        assert died["reason"] == "executor died"
        for q in queued:
            assert wait_state(client, q, {"SUCCESS", "FAILED"})["state"]["current"] == "SUCCESS"


def test_ctrl_c_kills_running_keeps_queued(home: Path, executions_leave_nothing: None) -> None:
    """Ctrl-C: the running execution ends KILLED ("server stopped"), exit 0; queued stays."""
    live = LiveServer(home, workers=1).start()
    with live.client() as client:
        push_flow(client, SLEEPER)
        running = client.post("/api/v1/executions/company.team/sleeper").json()["id"]
        wait_state(client, running, {"RUNNING"})
        waiting = client.post("/api/v1/executions/company.team/sleeper").json()["id"]
    assert live.stop(signal.SIGINT) == 0
    with sqlite3.connect(home / "executor.db") as db:
        rows = dict(db.execute("SELECT id, state FROM executions").fetchall())
        reason = db.execute("SELECT reason FROM executions WHERE id = ?", (running,)).fetchone()
    assert rows == {running: "KILLED", waiting: "QUEUED"}
    assert reason == ("server stopped",)
    assert our_resources(**{"executor.execution": running}) == []


def test_errors_in_kestra_shape(server: LiveServer) -> None:
    """Unknown flow 404, invalid flow 422 (located), bad input 422 (named), disabled 409."""
    with server.client() as client:
        missing = client.post("/api/v1/executions/company.team/nope")
        assert missing.status_code == 404 and "nope" in missing.json()["message"]
        bad = client.post(
            "/api/v1/flows",
            content="id: x\nnamespace: company.team\ntasks:\n  - id: t\n    type: io.nope.Task\n",
            headers={"Content-Type": "application/x-yaml"},
        )
        assert bad.status_code == 422
        assert "flow:4:5" in bad.json()["message"] and "Traceback" not in bad.text
        assert "task 't'" in bad.json()["message"]
        push_flow(client, HELLO.replace("type: STRING", "type: INT"))
        typed = client.post(
            "/api/v1/executions/company.team/hello", files={"who": (None, "not-a-number")}
        )
        assert typed.status_code == 422 and "'who'" in typed.json()["message"]
        again = client.post(
            "/api/v1/flows", content=HELLO, headers={"Content-Type": "application/x-yaml"}
        )
        assert again.status_code == 422 and "already exists" in again.json()["message"]
        push_flow(client, SLEEPER + "disabled: true\n")
        disabled = client.post("/api/v1/executions/company.team/sleeper")
        assert disabled.status_code == 409
        bomb = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
            f"{c}: &{c} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n"
            for p, c in zip("abcdefgh", "bcdefghi", strict=True)
        )
        refused = client.post(
            "/api/v1/flows/validate", content=bomb, headers={"Content-Type": "application/x-yaml"}
        )
        assert refused.status_code == 200 and refused.json()[0]["constraints"]
        unknown = client.get("/api/v1/nothing/here")
        assert unknown.status_code == 404 and unknown.json()["message"] == "Not Found"


def test_flows_crud_bulk_and_revisions(server: LiveServer) -> None:
    """Flows: create, get with source, update (new revision), bulk update deletes the rest."""
    with server.client() as client:
        created = push_flow(client, HELLO)
        assert created["revision"] == 1
        got = client.get("/api/v1/main/flows/company.team/hello", params={"source": "true"})
        assert got.json()["source"].strip() == HELLO.strip()
        changed = push_flow(client, HELLO.replace("world", "earth"))
        assert changed["revision"] == 2
        bulk = client.post(
            "/api/v1/flows/company.team",
            content=SLEEPER + "\n---\n" + HELLO,
            headers={"Content-Type": "application/x-yaml"},
        )
        assert bulk.status_code == 200, bulk.text
        assert sorted(f["id"] for f in bulk.json()) == ["hello", "sleeper"]
        only = client.post(
            "/api/v1/flows/company.team",
            content=SLEEPER,
            headers={"Content-Type": "application/x-yaml"},
        )
        assert only.status_code == 200
        assert client.get("/api/v1/flows/company.team/hello").status_code == 404
        kept = client.post(
            "/api/v1/flows/company.team",
            params={"delete": "false"},
            content=HELLO,
            headers={"Content-Type": "application/x-yaml"},
        )
        assert kept.status_code == 200
        assert client.get("/api/v1/flows/company.team/sleeper").status_code == 200
        assert client.delete("/api/v1/flows/company.team/sleeper").status_code == 204
        assert client.delete("/api/v1/flows/company.team/sleeper").status_code == 404


def test_namespace_files_and_escapes(server: LiveServer, home: Path) -> None:
    """Upload, zip upload, list, move, download, delete; escaping paths are refused (422)."""
    base = "/api/v1/namespaces/company.team/files"
    with server.client() as client:
        up = client.post(
            base, params={"path": "/scripts/a.sh"}, files={"fileContent": ("a.sh", b"echo a\n")}
        )
        assert up.status_code == 200, up.text
        archive = io.BytesIO()
        with zipfile.ZipFile(archive, "w") as zf:
            zf.writestr("lib/b.py", "print('b')\n")
        zipped = client.post(
            base, params={"path": "/pkg"}, files={"fileContent": ("bundle.zip", archive.getvalue())}
        )
        assert zipped.status_code == 200, zipped.text
        listing = client.get(f"{base}/directory", params={"path": "/"}).json()
        assert {(e["fileName"], e["type"]) for e in listing} == {
            ("scripts", "Directory"),
            ("pkg", "Directory"),
        }
        assert client.get(base, params={"path": "/pkg/lib/b.py"}).content == b"print('b')\n"
        moved = client.put(base, params={"from": "/scripts/a.sh", "to": "/bin/a.sh"})
        assert moved.status_code == 200
        assert client.get(base, params={"path": "/bin/a.sh"}).content == b"echo a\n"
        assert client.get(base, params={"path": "/scripts/a.sh"}).status_code == 404
        assert client.delete(base, params={"path": "/pkg"}).status_code == 204
        assert client.get(base, params={"path": "/pkg/lib/b.py"}).status_code == 404
        for path in ("/../../etc/passwd", "/a/../../x"):
            escaped = client.post(base, params={"path": path}, files={"fileContent": ("x", b"x")})
            assert escaped.status_code == 422, (path, escaped.text)
            assert client.get(base, params={"path": path}).status_code == 422
        evil = io.BytesIO()
        with zipfile.ZipFile(evil, "w") as zf:
            zf.writestr("ok.txt", "fine")
            zf.writestr("../../evil.txt", "escaped")
        refused = client.post(
            base, params={"path": "/z"}, files={"fileContent": ("evil.zip", evil.getvalue())}
        )
        assert refused.status_code == 422
        assert client.get(base, params={"path": "/z/ok.txt"}).status_code == 404
    assert not list(home.rglob("evil.txt"))


def test_body_limit_is_413(home: Path) -> None:
    """A body over the configured limit is refused with 413 in Kestra's shape."""
    limited = LiveServer(home, env={"EXECUTOR_SERVER_MAX_BODY_BYTES": "2000"})
    with limited, limited.client() as client:
        big = client.post(
            "/api/v1/flows",
            content="# " + "x" * 5000 + "\n" + HELLO,
            headers={"Content-Type": "application/x-yaml"},
        )
        assert big.status_code == 413 and "2000" in big.json()["message"]

        def chunks() -> Iterator[bytes]:
            for _ in range(10):
                yield b"x" * 1000

        streamed = client.post(
            "/api/v1/flows/validate",
            content=chunks(),
            headers={"Content-Type": "application/x-yaml"},
        )
        assert streamed.status_code == 413


def test_open_bind_without_auth_is_refused(home: Path) -> None:
    """Binding 0.0.0.0 without users or tokens exits 6 and says why; nothing listens."""
    done = subprocess.run(
        [sys.executable, "-m", "executor", "server", "--host", "0.0.0.0", "--port", "0"],
        env={**__import__("os").environ, "EXECUTOR_HOME": str(home)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 6
    assert "refusing to listen on 0.0.0.0" in done.stderr and "Traceback" not in done.stderr


def test_auth_basic_and_token(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With users and tokens configured: no credentials 401; basic auth and bearer work,
    and Kestra's client authenticates with KESTRA_USER/KESTRA_PASSWORD."""
    users = {"EXECUTOR_SERVER_USERS": "alice:s3cret", "EXECUTOR_SERVER_TOKENS": "tok-123"}
    with LiveServer(home, env=users, auth=("alice", "s3cret")) as live:
        url = f"{live.url}/api/v1/configs"
        assert httpx.get(url).status_code == 401
        assert httpx.get(url, auth=("alice", "wrong")).status_code == 401
        assert httpx.get(url, auth=("alice", "s3cret")).status_code == 200
        assert httpx.get(url, headers={"Authorization": "Bearer tok-123"}).status_code == 200
        assert httpx.get(url, headers={"Authorization": "Bearer nope"}).status_code == 401
        with live.client() as client:
            push_flow(client, HELLO)
        from kestra import Flow

        monkeypatch.setenv("KESTRA_HOSTNAME", live.url)
        monkeypatch.setenv("KESTRA_USER", "alice")
        monkeypatch.setenv("KESTRA_PASSWORD", "s3cret")
        flow = Flow(poll_interval=1)
        flow.password = "s3cret"
        assert flow.execute("company.team", "hello").status == "SUCCESS"
