"""Files across hosts, and Subflow and Pause on a worker: a server with ``--broker`` (real Redis)
and a worker on the second Docker engine (its own network namespace), nothing shared but the
server's API."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from tests.integration.server_helpers import logs_of, push_flow, wait_state
from tests.integration.test_workers import cluster_for, engine2, redis  # noqa: F401
from tests.integration.workers_helpers import Cluster, SecondEngine, resources_of

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(os.geteuid() != 0, reason="a second engine needs root"),
]

ENDED = {"SUCCESS", "FAILED", "KILLED", "WARNING", "CANCELLED"}

PRODUCE = """
id: produce
namespace: scale.files
tasks:
  - id: make
    type: io.kestra.plugin.scripts.shell.Commands
    containerImage: executor/busybox:latest
    outputFiles: ["out.txt", "big.bin"]
    commands:
      - printf 'made on host 2\\n' > out.txt
      - head -c 5242880 /dev/urandom > big.bin
      - sha256sum big.bin
"""

CONSUME = """
id: consume
namespace: scale.files
inputs:
  - id: data
    type: FILE
tasks:
  - id: said
    type: io.kestra.plugin.core.log.Log
    message: "read: {{ read(inputs.data) }}"
  - id: wd
    type: io.kestra.plugin.core.flow.WorkingDirectory
    inputFiles:
      in.txt: "{{ inputs.data }}"
    tasks:
      - id: upper
        type: io.kestra.plugin.scripts.shell.Commands
        containerImage: executor/busybox:latest
        commands:
          - tr a-z A-Z < in.txt
"""


def started_cluster(tmp_path: Path, engine: SecondEngine, port: int, **env: str) -> Cluster:
    """The server, and one worker on engine 2 (host 2): every execution runs there."""
    cluster = cluster_for(tmp_path, engine, port, **env)
    cluster.start_server()
    cluster.start_worker("w2", netns=engine.name, docker_host=engine.socket)
    return cluster


def worker_kept_nothing(tmp_path: Path) -> None:
    for kept in ("uploads", "artifacts"):
        assert not [p for p in (tmp_path / "w2" / kept).rglob("*") if p.is_file()]


def test_files_of_another_execution_and_larger_than_the_body_limit_cross_hosts(
    tmp_path: Path,
    engine2: SecondEngine,  # noqa: F811
    redis: int,  # noqa: F811
) -> None:
    cluster = started_cluster(
        tmp_path, engine2, redis, EXECUTOR_SERVER_MAX_BODY_BYTES=str(1024 * 1024)
    )
    ids: list[str] = []
    try:
        with cluster.client() as client:
            push_flow(client, PRODUCE)
            push_flow(client, CONSUME)
            first = client.post("/api/v1/executions/scale.files/produce").json()["id"]
            ids.append(first)
            done = wait_state(client, first, ENDED, 180)
            log = logs_of(client, first)
            assert done["state"]["current"] == "SUCCESS", log
            files = done["taskRunList"][0]["outputs"]["outputFiles"]
            # the 5 MiB file came back in parts under the 1 MiB limit, unchanged
            [made] = [line.split()[0] for line in log if line.endswith("big.bin")]
            body = client.get(f"/api/v1/executions/{first}/file", params={"path": files["big.bin"]})
            assert len(body.content) == 5 * 1024 * 1024
            assert hashlib.sha256(body.content).hexdigest() == made
            # the worker removed its copies as the execution ended: the next one on the same
            # worker can only get the file through the server
            worker_kept_nothing(tmp_path)
            second = client.post(
                "/api/v1/executions/scale.files/consume", files={"data": (None, files["out.txt"])}
            )
            assert second.status_code == 200, second.text
            ids.append(second.json()["id"])
            done = wait_state(client, ids[1], ENDED, 180)
            log = logs_of(client, ids[1])
            assert done["state"]["current"] == "SUCCESS", log
            assert done["inputs"]["data"] == files["out.txt"]
            assert "read: made on host 2\n" in log
            assert "MADE ON HOST 2" in log
            # a URI the server does not hold is refused at once, naming the input
            missing = files["out.txt"].replace("out.txt", "nothing.txt")
            refused = client.post(
                "/api/v1/executions/scale.files/consume", files={"data": (None, missing)}
            )
            assert refused.status_code == 422, refused.text
            assert "input 'data'" in refused.json()["message"]
    finally:
        cluster.stop()
    worker_kept_nothing(tmp_path)
    for execution_id in ids:
        assert resources_of(engine2.socket, execution_id) == []
    assert not [p for p in (tmp_path / "server" / "incoming").rglob("*") if p.is_file()]


CHILD = """
id: child
namespace: scale.files
inputs:
  - id: who
    type: STRING
  - id: note
    type: FILE
tasks:
  - id: breathe
    type: io.kestra.plugin.core.flow.Pause
    pauseDuration: PT1S
  - id: wd
    type: io.kestra.plugin.core.flow.WorkingDirectory
    inputFiles:
      note.txt: "{{ inputs.note }}"
    tasks:
      - id: greet
        type: io.kestra.plugin.scripts.shell.Commands
        containerImage: executor/busybox:latest
        outputFiles: ["greeting.txt"]
        commands:
          - |
            printf 'hello %s: %s\\n' '{{ inputs.who }}' "$(cat note.txt)" > greeting.txt
outputs:
  - id: greeting
    type: STRING
    value: "{{ outputs.greet.outputFiles['greeting.txt'] }}"
"""

PARENT = """
id: parent
namespace: scale.files
tasks:
  - id: make
    type: io.kestra.plugin.scripts.shell.Commands
    containerImage: executor/busybox:latest
    outputFiles: ["note.txt"]
    commands:
      - echo from the parent > note.txt
  - id: call
    type: io.kestra.plugin.core.flow.Subflow
    namespace: scale.files
    flowId: child
    wait: true
    inputs:
      who: waited
      note: "{{ outputs.make.outputFiles['note.txt'] }}"
  - id: fire
    type: io.kestra.plugin.core.flow.Subflow
    namespace: scale.files
    flowId: child
    wait: false
    inputs:
      who: detached
      note: "{{ outputs.make.outputFiles['note.txt'] }}"
  - id: approve
    type: io.kestra.plugin.core.flow.Pause
    onResume:
      - id: approved
        type: BOOLEAN
  - id: echo
    type: io.kestra.plugin.core.debug.Return
    format: >-
      {{ read(outputs.call.outputs.greeting) }}
      approved={{ outputs.approve.onResume.approved }}
"""


def test_subflow_and_pause_run_on_a_worker_and_resume_through_the_server(
    tmp_path: Path,
    engine2: SecondEngine,  # noqa: F811
    redis: int,  # noqa: F811
) -> None:
    cluster = started_cluster(tmp_path, engine2, redis)
    ids: list[str] = []
    try:
        with cluster.client() as client:
            push_flow(client, CHILD)
            push_flow(client, PARENT)
            parent = client.post("/api/v1/executions/scale.files/parent").json()["id"]
            ids.append(parent)
            paused = wait_state(client, parent, {"PAUSED", *ENDED}, 180)
            assert paused["state"]["current"] == "PAUSED", logs_of(client, parent)
            # the subflows' executions are recorded on the server, linked to their parent
            runs = {r["taskId"]: r for r in paused["taskRunList"]}
            waited = runs["call"]["outputs"]["executionId"]
            detached = runs["fire"]["outputs"]["executionId"]
            ids += [waited, detached]
            for child_id, who in ((waited, "waited"), (detached, "detached")):
                child = wait_state(client, child_id, ENDED, 120)
                assert child["state"]["current"] == "SUCCESS", logs_of(client, child_id)
                assert child["parentId"] == parent and child["flowId"] == "child"
                assert "paused for 1s" in logs_of(client, child_id)
                # the child's output file came back into the server's store
                uri = child["outputs"]["greeting"]
                body = client.get(f"/api/v1/executions/{child_id}/file", params={"path": uri})
                assert body.text == f"hello {who}: from the parent\n"
            assert runs["call"]["outputs"]["state"] == "SUCCESS"
            resumed = client.post(
                f"/api/v1/executions/{parent}/resume", files={"approved": (None, "true")}
            )
            assert resumed.status_code == 204, resumed.text
            done = wait_state(client, parent, ENDED, 120)
            log = logs_of(client, parent)
            assert done["state"]["current"] == "SUCCESS", log
            [echo] = [r for r in done["taskRunList"] if r["taskId"] == "echo"]
            assert echo["outputs"]["value"] == "hello waited: from the parent\n approved=true"
            assert any("on worker w2" in line for line in log)
    finally:
        cluster.stop()
    worker_kept_nothing(tmp_path)
    for execution_id in ids:
        assert resources_of(engine2.socket, execution_id) == []
