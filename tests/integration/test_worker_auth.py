"""Who may act as a worker, and on what: a real server with ``--broker`` (a real Redis) on
loopback with no API user configured (so its API is open to local tools), whose workers' routes
still take only a worker token; and a worker that holds one execution writing records for
another, refused whole."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from executor.host import Owner
from executor.model import Level, LogLine
from executor.store.records import ExecutionRecord, TaskRunRecord, ts
from executor.store.wire import encode
from tests.integration.helpers import until
from tests.integration.server_helpers import LiveServer, logs_of, push_flow, wait_state
from tests.integration.workers_helpers import WORKER_AUTH, WORKER_TOKEN, Cluster, start_redis

pytestmark = pytest.mark.integration

# routed to a queue no real worker takes: the tests claim its executions themselves
FLOW = """
id: held
namespace: auth.workers
tasks:
  - id: say
    type: io.kestra.plugin.core.log.Log
    message: hi
    workerGroup: {key: nobody}
"""
API_TOKEN = "an-api-token"


@pytest.fixture(scope="module")
def redis_port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    process, port = start_redis(tmp_path_factory.mktemp("redis"), ["127.0.0.1"])
    try:
        yield port
    finally:
        process.stop()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, redis_port: int) -> Iterator[LiveServer]:
    """Loopback, no API user: the API is open; nothing consumes the broker's queue."""
    live = LiveServer(
        tmp_path_factory.mktemp("server"),
        workers=None,
        env={"EXECUTOR_SERVER_WORKER_TOKENS": WORKER_TOKEN},
        args=["--broker", f"redis://127.0.0.1:{redis_port}/0"],
    )
    with live:
        yield live


def heartbeat(name: str) -> dict[str, Any]:
    return {
        "name": name,
        "host": "h",
        "engine_id": "e",
        "queues": ["default"],
        "labels": [],
        "slots": 1,
        "running": [],
        "started": ts(datetime.now(UTC)),
    }


def test_the_workers_routes_take_a_worker_token_and_nothing_else(server: LiveServer) -> None:
    beat = heartbeat("intruder")
    with httpx.Client(base_url=server.url, timeout=30) as client:
        # the API is open on loopback, but acting as a worker is not
        assert client.get("/api/v1/flows/search").status_code == 200
        for prefix in ("/api/v1", "/api/v1/main"):
            for headers in ({}, {"Authorization": f"Bearer {API_TOKEN}"}):
                answer = client.post(f"{prefix}/worker/heartbeat", json=beat, headers=headers)
                assert answer.status_code == 401, answer.text
                assert "worker token" in answer.json()["message"]
        for path in ("/executions/x/claim", "/executions/x/records", "/artifacts?uri=kestra:///a"):
            assert client.post(f"/api/v1/worker{path}", json={}).status_code in (401, 405)
        refused = client.get("/api/v1/worker/artifacts", params={"uri": "kestra:///a/b"})
        assert refused.status_code == 401
        assert "intruder" not in [w["name"] for w in client.get("/api/v1/worker/workers").json()]
        # with the worker token
        assert client.post("/api/v1/worker/heartbeat", json=beat, headers=WORKER_AUTH).is_success
        assert "intruder" in [w["name"] for w in client.get("/api/v1/worker/workers").json()]


def test_a_worker_token_is_not_an_api_credential(tmp_path: Path) -> None:
    env = {"EXECUTOR_SERVER_TOKENS": API_TOKEN, "EXECUTOR_SERVER_WORKER_TOKENS": WORKER_TOKEN}
    api = {"Authorization": f"Bearer {API_TOKEN}"}
    with (
        LiveServer(tmp_path, env=env, headers=api) as live,
        httpx.Client(base_url=live.url, timeout=30) as client,
    ):
        assert client.get("/api/v1/flows/search", headers=WORKER_AUTH).status_code == 401
        assert client.get("/api/v1/worker/workers", headers=WORKER_AUTH).status_code == 401
        assert client.get("/api/v1/worker/workers", headers=api).status_code == 200
        beat = client.post("/api/v1/worker/heartbeat", json=heartbeat("w"), headers=api)
        assert beat.status_code == 401


def _claim(client: httpx.Client, execution_id: str, worker: str) -> dict[str, Any]:
    """Claim once the server dispatched the execution (its dispatcher runs every few seconds)."""

    def claimed() -> dict[str, Any] | None:
        answer = client.post(
            f"/api/v1/worker/executions/{execution_id}/claim",
            json={"worker": worker},
            headers=WORKER_AUTH,
        ).json()
        return answer if answer["action"] == "run" else None

    return until(claimed, 60, f"the claim of {execution_id}")


def _task_run(execution_id: str, run_id: str, state: str) -> TaskRunRecord:
    now = ts(datetime.now(UTC))
    return TaskRunRecord(
        id=run_id,
        execution_id=execution_id,
        position=0,
        task_id="say",
        task_type="io.kestra.plugin.scripts.shell.Commands",
        parent_id=None,
        state=state,
        start_date=now,
        end_date=None,
        duration=None,
        histories=f'[["{state}", "{now}"]]',
        outputs="{}",
        metrics="{}",
        output_files="{}",
        image_id=None,
        reason=None,
        stderr_tail="[]",
    )


def _snapshot(execution_id: str, parent: str) -> ExecutionRecord:
    now = ts(datetime.now(UTC))
    return ExecutionRecord(
        id=execution_id,
        namespace="auth.workers",
        flow_id="held",
        state="SUCCESS",
        start_date=now,
        end_date=now,
        inputs="{}",
        histories=f'[["SUCCESS", "{now}"]]',
        images="{}",
        labels="{}",
        reason=None,
        owner=Owner(0, "", "worker:wa"),
        extra=json.dumps({"parentId": parent}),
    )


def _line(execution_id: str, message: str, run_id: str | None = None) -> LogLine:
    task = "say" if run_id else None
    return LogLine(
        datetime.now(UTC), execution_id, task, run_id, None, "stdout", Level.INFO, message
    )


def test_records_for_an_execution_the_worker_does_not_hold_are_refused_whole(
    server: LiveServer,
) -> None:
    with httpx.Client(base_url=server.url, timeout=30) as client:
        push_flow(client, FLOW)
        held, other = (
            client.post("/api/v1/executions/auth.workers/held").json()["id"] for _ in range(2)
        )
        for name in ("wa", "wb"):
            client.post("/api/v1/worker/heartbeat", json=heartbeat(name), headers=WORKER_AUTH)
        _claim(client, held, "wa")
        _claim(client, other, "wb")

        def send(worker: str, execution_id: str, writes: list[Any]) -> httpx.Response:
            return client.post(
                f"/api/v1/worker/executions/{execution_id}/records",
                json=encode(writes),
                params={"worker": worker, "attempt": 1},
                headers=WORKER_AUTH,
            )

        # wb reports on the execution it holds: its task run and a line
        assert send("wb", other, [_task_run(other, "run-of-other", "RUNNING")]).is_success
        assert send("wb", other, [_line(other, "genuine", "run-of-other")]).is_success
        forged = [
            # a line that names the other execution
            [_line(held, "fine"), _line(other, "forged line")],
            # a line of its own execution, pinned to the other's task run
            [_line(held, "forged line", "run-of-other")],
            # the other's task run, overwritten through an upsert under its own execution id
            [_line(held, "fine"), _task_run(held, "run-of-other", "FAILED")],
            # a task run that names the other execution
            [_task_run(other, "a-new-run", "SUCCESS")],
            # the other execution itself, passed off as a subflow of its own
            [_snapshot(other, parent=held)],
        ]
        for batch in forged:
            answer = send("wa", held, batch)
            assert answer.status_code == 409, answer.text
            assert other in answer.json()["message"]
        # nothing of the refused batches was written, to either execution
        mine = client.get(f"/api/v1/logs/{held}").json()
        assert not [line for line in mine if line["message"] in ("fine", "forged line")]
        theirs = client.get(f"/api/v1/logs/{other}").json()
        assert isinstance(theirs, list), theirs
        assert [line["message"] for line in theirs if line.get("taskRunId")] == ["genuine"]
        found = client.get(f"/api/v1/executions/{other}").json()
        assert found["state"]["current"] != "SUCCESS" and found["parentId"] is None
        runs = found["taskRunList"]
        assert [(r["id"], r["state"]["current"]) for r in runs] == [("run-of-other", "RUNNING")]
        # its own records still go through
        assert send("wa", held, [_line(held, "fine")]).is_success


def _cli(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if "TOKEN" not in k}
    return subprocess.run(
        [sys.executable, "-m", "executor", *args],
        env={**env, "EXECUTOR_HOME": str(home)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_a_broker_without_a_worker_token_refuses_to_start_and_a_worker_without_one_too(
    tmp_path: Path, redis_port: int
) -> None:
    broker = f"redis://127.0.0.1:{redis_port}/0"
    server = _cli(tmp_path / "s", "server", "--port", "0", "--broker", broker)
    assert server.returncode == 6, server.stderr
    assert "EXECUTOR_SERVER_WORKER_TOKENS" in server.stderr
    worker = _cli(tmp_path / "w", "worker", "--broker", broker, "--server", "http://127.0.0.1:1")
    assert worker.returncode == 2, worker.stderr
    assert "--token" in worker.stderr
    assert "Traceback" not in server.stderr + worker.stderr


PRODUCE = """
id: produce
namespace: auth.owner
tasks:
  - id: write
    type: io.kestra.plugin.core.storage.Write
    content: made on the worker
"""

TAKE = """
id: take
namespace: {namespace}
inputs:
  - id: uri
    type: STRING
tasks:
  - id: all
    type: io.kestra.plugin.core.flow.Parallel
    onChildFailure: CONTINUE
    tasks:
      - id: read
        type: io.kestra.plugin.core.debug.Return
        format: "{{{{ read(inputs.uri) }}}}"
      - id: size
        type: io.kestra.plugin.core.storage.Size
        uri: "{{{{ inputs.uri }}}}"
"""

PARKED = """
id: parked
namespace: {namespace}
tasks:
  - id: say
    type: io.kestra.plugin.core.log.Log
    message: hi
    workerGroup: {{key: nobody}}
"""


def test_a_worker_reads_only_what_the_execution_it_holds_may_read(
    tmp_path: Path, server: LiveServer, redis_port: int
) -> None:
    cluster = Cluster(tmp_path, "127.0.0.1", f"redis://127.0.0.1:{redis_port}/0", port=server.port)
    ended = {"SUCCESS", "FAILED", "KILLED", "WARNING"}
    try:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            for text in (
                PRODUCE,
                TAKE.format(namespace="auth.owner"),
                TAKE.format(namespace="auth.stranger"),
                PARKED.format(namespace="auth.owner"),
                PARKED.format(namespace="auth.stranger"),
            ):
                push_flow(client, text)
            cluster.start_worker("w1")
            made = client.post("/api/v1/executions/auth.owner/produce").json()["id"]
            done = wait_state(client, made, ended, 120)
            uri = done["taskRunList"][0]["outputs"]["uri"]
            # on the worker (which kept no copy of the file): its namespace's file, from the
            # server; another namespace's, refused there as it is locally
            runs = {}
            for namespace in ("auth.owner", "auth.stranger"):
                started = client.post(
                    f"/api/v1/executions/{namespace}/take", files={"uri": (None, uri)}
                ).json()["id"]
                runs[namespace] = wait_state(client, started, ended, 120)
            owner = {t["taskId"]: t for t in runs["auth.owner"]["taskRunList"]}
            assert owner["read"]["outputs"]["value"] == "made on the worker", logs_of(
                client, runs["auth.owner"]["id"]
            )
            assert owner["size"]["outputs"]["size"] == len("made on the worker")
            stranger = {t["taskId"]: t for t in runs["auth.stranger"]["taskRunList"]}
            said = client.get(f"/api/v1/logs/{runs['auth.stranger']['id']}").json()
            for task_id in ("read", "size"):
                assert stranger[task_id]["state"]["current"] == "FAILED"
                reasons = [line["message"] for line in said if line.get("taskId") == task_id]
                assert any(f"{uri} is not a file of execution" in m for m in reasons), reasons

            # the route itself: for the execution the worker holds, under the same rule
            def fetch(held: str, worker: str, attempt: int, **more: str) -> httpx.Response:
                params = {"uri": uri, "execution": held, "worker": worker, "attempt": attempt}
                return client.get(
                    "/api/v1/worker/artifacts", params={**params, **more}, headers=WORKER_AUTH
                )

            client.post("/api/v1/worker/heartbeat", json=heartbeat("wf"), headers=WORKER_AUTH)
            mine, theirs = (
                client.post(f"/api/v1/executions/{ns}/parked").json()["id"]
                for ns in ("auth.owner", "auth.stranger")
            )
            _claim(client, mine, "wf")
            _claim(client, theirs, "wf")
            assert fetch(mine, "wf", 1).content == b"made on the worker"
            refused = fetch(theirs, "wf", 1)
            assert refused.status_code == 422, refused.text
            assert "is not a file of execution" in refused.json()["message"]
            assert fetch(mine, "wf", 2).status_code == 409  # not the attempt it holds
            assert fetch(mine, "intruder", 1).status_code == 409  # not the worker that holds it
            assert fetch(mine, "wf", 1, reader=made).status_code == 409  # not one of its own
    finally:
        cluster.stop()


ELSEWHERE = FLOW.replace("namespace: auth.workers", "namespace: auth.elsewhere")


def _zip(files: dict[str, bytes]) -> bytes:
    import io
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return buffer.getvalue()


def test_a_held_runs_stores_answer_its_worker_within_its_namespace(server: LiveServer) -> None:
    """The KV, log and namespace-file routes a worker's run uses: for the execution it holds
    (409 for another's, or as an execution that is not its own), within its flow's namespace
    and those below it (403 beyond), with the namespace-file API's checks on what it writes."""
    with httpx.Client(base_url=server.url, timeout=30) as client:
        push_flow(client, FLOW)
        push_flow(client, ELSEWHERE)
        held, other = (
            client.post("/api/v1/executions/auth.workers/held").json()["id"] for _ in range(2)
        )
        stranger = client.post("/api/v1/executions/auth.elsewhere/held").json()["id"]
        for name in ("ka", "kb"):
            client.post("/api/v1/worker/heartbeat", json=heartbeat(name), headers=WORKER_AUTH)
        _claim(client, held, "ka")
        _claim(client, other, "kb")
        as_ka = {"worker": "ka", "attempt": 1}

        def call(method: str, path: str, **kw: Any) -> httpx.Response:
            params = {**as_ka, **kw.pop("params", {})}
            return client.request(
                method,
                f"/api/v1/worker/executions/{held}{path}",
                params=params,
                headers=WORKER_AUTH,
                **kw,
            )

        put = {"type": "NUMBER", "value": 42}
        assert call("PUT", "/kv/auth.workers/answer", json=put).json()["written"] is True
        assert call("PUT", "/kv/auth.workers.sub/below", json=put).json()["written"] is True
        assert call("GET", "/kv/auth.workers/answer").json()["entry"]["value"] == 42
        again = call("PUT", "/kv/auth.workers/answer", json={**put, "overwrite": False}).json()
        assert again["written"] is False and "already exists" in again["message"]
        for path in ("/kv/auth.other/answer", "/kv/auth/answer"):  # a sibling, a parent
            refused = call("PUT", path, json=put)
            assert refused.status_code == 403, refused.text
            assert "may not use the KV store of namespace" in refused.json()["message"]
        # not the execution the worker holds, nor one of its own as the asking execution
        not_held = client.get(
            f"/api/v1/worker/executions/{other}/kv/auth.workers/answer",
            params=as_ka,
            headers=WORKER_AUTH,
        )
        assert not_held.status_code == 409, not_held.text
        assert call("GET", "/kv/auth.workers/answer", params={"reader": other}).status_code == 409
        # log lines: its namespace's executions, not another namespace's
        assert call("GET", "/logs", params={"of": other}).status_code == 200
        assert call("GET", "/logs", params={"of": stranger}).status_code == 403
        assert call("GET", "/logs", params={"of": "no-such-execution"}).json()["lines"] == []
        # namespace files: written as a zip, checked as the API checks one
        zipped = _zip({"conf/app.txt": b"one", "conf/more.txt": b"two"})
        assert call("PUT", "/namespaces/auth.workers/files", content=zipped).is_success
        listed = call("GET", "/namespaces/auth.workers/paths").json()
        assert listed == {"exists": True, "paths": ["conf/app.txt", "conf/more.txt"]}
        assert call(
            "GET", "/namespaces/auth.workers/file", params={"path": "conf/app.txt"}
        ).content == (b"one")
        escaping = call("PUT", "/namespaces/auth.workers/files", content=_zip({"../x": b"x"}))
        assert escaping.status_code == 422, escaping.text
        beyond = call("PUT", "/namespaces/auth.other/files", content=zipped)
        assert beyond.status_code == 403, beyond.text
        gone = call("DELETE", "/namespaces/auth.workers/files", params={"path": "conf/more.txt"})
        assert gone.json() == {"removed": 1}
        assert call("GET", "/namespaces/auth.workers/paths").json()["paths"] == ["conf/app.txt"]
        assert call("GET", "/namespaces", params={}).json() == {"namespaces": ["auth.workers"]}
    answer = _cli(server.home, "kv", "get", "auth.workers", "answer")
    assert answer.stdout.strip() == "42", answer.stderr
    assert _cli(server.home, "kv", "get", "auth.other", "answer").returncode != 0
