"""Workers on other hosts: a server with ``--broker`` (real Redis), one worker per Docker engine
(engine 2 in its own network namespace, reached over a veth link), nothing shared but the API."""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from executor.engine import labels as labelling
from tests.integration.server_helpers import (
    Process,
    logs_of,
    push_flow,
    shell_flow,
    wait_log,
    wait_state,
)
from tests.integration.workers_helpers import (
    Cluster,
    SecondEngine,
    resources_of,
    start_redis,
)

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(os.geteuid() != 0, reason="a second engine needs root"),
]

FLOW = """
id: upper
namespace: scale.workers
inputs:
  - id: data
    type: FILE
tasks:
  - id: wd
    type: io.kestra.plugin.core.flow.WorkingDirectory
    namespaceFiles:
      enabled: true
    inputFiles:
      in.txt: "{{ inputs.data }}"
    tasks:
      - id: work
        type: io.kestra.plugin.scripts.shell.Commands
        containerImage: executor/busybox:latest
        outputFiles: ["out.txt"]
        commands:
          - sleep 2
          - cat in.txt helper.txt | tr a-z A-Z > out.txt
"""

SLOW = shell_flow("slow", "scale.workers", "wait", ["echo started", "sleep 8", "echo done"])


@pytest.fixture(scope="module")
def engine2() -> Iterator[SecondEngine]:
    engine = SecondEngine.up()
    try:
        yield engine
    finally:
        engine.script("down")
    assert not Path(f"/run/docker-{engine.name}.sock").exists()


@pytest.fixture
def redis(tmp_path: Path, engine2: SecondEngine) -> Iterator[int]:
    process, port = start_redis(tmp_path, ["127.0.0.1", engine2.host_address])
    try:
        yield port
    finally:
        process.stop()


def cluster_for(tmp_path: Path, engine2: SecondEngine, port: int, **env: str) -> Cluster:
    return Cluster(
        tmp_path,
        engine2.host_address,
        f"redis://{engine2.host_address}:{port}/0",
        env=dict(env),
    )


def engine_of(log: list[str]) -> list[tuple[str, str]]:
    return re.findall(r"on worker (\S+) \(host \S+, engine (\S+)\)", "\n".join(log))


def test_executions_land_on_both_engines_with_files_both_ways(
    tmp_path: Path, engine2: SecondEngine, redis: int
) -> None:
    cluster = cluster_for(tmp_path, engine2, redis)
    ids: list[str] = []
    try:
        cluster.start_server()
        with cluster.client() as client:
            push_flow(client, FLOW)
            answer = client.post(
                "/api/v1/namespaces/scale.workers/files",
                params={"path": "/helper.txt"},
                files={"fileContent": ("helper.txt", b"from the namespace\n")},
            )
            assert answer.status_code < 300, answer.text
            cluster.start_worker("w1")
            cluster.start_worker("w2", netns=engine2.name, docker_host=engine2.socket)
            workers = {w["name"]: w for w in cluster.worker_list()}
            assert workers["w1"]["engineId"] != workers["w2"]["engineId"]
            for number in range(6):
                created = client.post(
                    "/api/v1/executions/scale.workers/upper",
                    files={"data": ("in.txt", f"input {number}\n".encode())},
                )
                assert created.status_code == 200, created.text
                ids.append(created.json()["id"])
            ran_on: dict[str, str] = {}
            for number, execution_id in enumerate(ids):
                done = wait_state(client, execution_id, {"SUCCESS", "FAILED", "KILLED"}, 180)
                log = logs_of(client, execution_id)
                assert done["state"]["current"] == "SUCCESS", log
                [(worker, engine_id)] = engine_of(log)
                assert engine_id == workers[worker]["engineId"]
                ran_on[execution_id] = worker
                [work] = [t for t in done["taskRunList"] if t["taskId"] == "work"]
                uri = work["outputs"]["outputFiles"]["out.txt"]
                body = client.get(f"/api/v1/executions/{execution_id}/file", params={"path": uri})
                assert body.text == f"INPUT {number}\nFROM THE NAMESPACE\n"
            assert set(ran_on.values()) == {"w1", "w2"}, ran_on
    finally:
        cluster.stop()
    for execution_id in ids:
        assert resources_of(None, execution_id) == []
        assert resources_of(engine2.socket, execution_id) == []
    # the workers kept no upload or artifact of the executions (only their mirror of the
    # namespace files); nor did the server keep the uploads once the executions ended
    for name in ("w1", "w2"):
        for kept in ("uploads", "artifacts"):
            assert not [p for p in (tmp_path / name / kept).rglob("*") if p.is_file()]
    assert not [p for p in (tmp_path / "server" / "uploads").rglob("*") if p.is_file()]


def test_a_worker_killed_mid_run_is_replaced_by_a_new_attempt_on_the_other(
    tmp_path: Path, engine2: SecondEngine, redis: int
) -> None:
    # the broker's visibility timeout stays at its default (an hour): the server sends the
    # lost run again itself, once the worker's heartbeat lapsed
    cluster = cluster_for(tmp_path, engine2, redis, EXECUTOR_WORKER_LAPSE="3")
    execution_id = ""
    try:
        cluster.start_server()
        with cluster.client() as client:
            push_flow(client, SLOW)
            first: Process = cluster.start_worker("w1")
            execution_id = client.post("/api/v1/executions/scale.workers/slow").json()["id"]
            wait_state(client, execution_id, {"RUNNING"}, 120)
            wait_log(client, execution_id, "started")
            first.proc.kill()  # SIGKILL: no goodbye, the message stays unacknowledged
            first.proc.wait()
            cluster.start_worker("w2", netns=engine2.name, docker_host=engine2.socket)
            done = wait_state(client, execution_id, {"SUCCESS", "KILLED"}, 180)
            log = logs_of(client, execution_id)
            assert done["state"]["current"] == "SUCCESS", log
            assert [w for w, _ in engine_of(log)] == ["w1", "w2"]
            joined = "\n".join(log)
            assert "worker lost: w1" in joined
            assert "attempt 2 on worker w2: attempt 1 ran on w1, which was lost" in joined
            history = [h["state"] for h in done["state"]["histories"]]
            assert history[-3:] == ["CREATED", "RUNNING", "SUCCESS"] and "FAILED" in history
            # attempt 1's task runs ended FAILED, none stays RUNNING
            states = {t["id"]: t["state"]["current"] for t in done["taskRunList"]}
            assert "RUNNING" not in states.values()
            workers = {w["name"]: w for w in cluster.worker_list()}
            assert not workers["w1"]["alive"] and workers["w2"]["alive"]
    finally:
        cluster.stop()
    assert resources_of(engine2.socket, execution_id) == []
    # host 1's gc reaps what the dead worker left: every leftover is owned by a gone process
    left = resources_of(None, execution_id)
    assert all(labelling.owner_is_gone(r.labels) for r in left), left
    if left:
        from executor.engine.docker.backend import DockerBackend
        from executor.engine.docker.client import connect

        engine = DockerBackend(connect(None))
        for res in sorted(left, key=lambda r: r.kind != "container"):
            engine.remove_resource(res)
    assert resources_of(None, execution_id) == []
    shutil.rmtree(tmp_path / "w1", ignore_errors=True)


def test_a_kill_reaches_the_worker_that_runs_the_execution(
    tmp_path: Path, engine2: SecondEngine, redis: int
) -> None:
    cluster = cluster_for(tmp_path, engine2, redis)
    execution_id = ""
    try:
        cluster.start_server()
        with cluster.client() as client:
            push_flow(client, SLOW)
            cluster.start_worker("w2", netns=engine2.name, docker_host=engine2.socket)
            execution_id = client.post("/api/v1/executions/scale.workers/slow").json()["id"]
            wait_log(client, execution_id, "started")
            assert client.delete(f"/api/v1/executions/{execution_id}/kill").status_code < 300
            done = wait_state(client, execution_id, {"SUCCESS", "KILLED", "FAILED"}, 60)
            assert done["state"]["current"] == "KILLED"
            assert "done" not in logs_of(client, execution_id)
            again = client.delete(f"/api/v1/executions/{execution_id}/kill")
            assert again.status_code == 409
    finally:
        cluster.stop()
    assert resources_of(engine2.socket, execution_id) == []
