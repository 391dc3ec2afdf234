"""One run, wherever it runs: a flow that touches every store gives the same outputs and leaves
the same records on the server whether the server runs it in its own slots or a worker on
another host (its own home, its own Docker engine in its own network namespace) runs it.

The flow sets, reads, lists and deletes KV values (tasks and ``kv()``), reads namespace files
and a ``kestra:///`` file with ``read()``, writes, sizes and joins stored files, uploads,
downloads and deletes namespace files, seeds a WorkingDirectory with namespace files, sets
labels, starts a Subflow (which uses the KV store, a namespace file and its parent's file),
pauses until resumed through the API, and fetches its own log lines. Everything it changes
must be the server's: nothing lands in the worker's own home.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from executor.store.kv_sql import KvTable
from tests.integration.helpers import until
from tests.integration.server_helpers import LiveServer, logs_of, push_flow, wait_state
from tests.integration.test_workers import cluster_for, engine2, redis  # noqa: F401
from tests.integration.workers_helpers import Cluster, SecondEngine

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(os.geteuid() != 0, reason="a second engine needs root"),
]

ENDED = {"SUCCESS", "FAILED", "KILLED", "WARNING", "CANCELLED"}
NAMESPACE = "parity.team"

PARENT = """
id: parity
namespace: parity.team
tasks:
  - id: set
    type: io.kestra.plugin.core.kv.Set
    key: answer
    value: "42"
    kvType: NUMBER
  - id: get
    type: io.kestra.plugin.core.kv.Get
    key: answer
  - id: seeded
    type: io.kestra.plugin.core.kv.Get
    key: seeded
  - id: keys
    type: io.kestra.plugin.core.kv.GetKeys
  - id: said
    type: io.kestra.plugin.core.log.Log
    message: "kv={{ kv('answer') }} seeded={{ kv('seeded') }} file={{ read('conf/app.txt') }}"
  - id: write
    type: io.kestra.plugin.core.storage.Write
    content: "written {{ kv('answer') }}"
    extension: .txt
  - id: size
    type: io.kestra.plugin.core.storage.Size
    uri: "{{ outputs.write.uri }}"
  - id: concat
    type: io.kestra.plugin.core.storage.Concat
    files: ["{{ outputs.write.uri }}", "{{ outputs.write.uri }}"]
    separator: "|"
  - id: stored
    type: io.kestra.plugin.core.log.Log
    message: "stored={{ read(outputs.concat.uri) }}"
  - id: upload
    type: io.kestra.plugin.core.namespace.UploadFiles
    namespace: parity.team
    files: ["{{ outputs.write.uri }}"]
    destination: /uploaded
  - id: download
    type: io.kestra.plugin.core.namespace.DownloadFiles
    namespace: parity.team
    files: ["conf/**", "uploaded/**"]
  - id: downloaded
    type: io.kestra.plugin.core.log.Log
    message: "downloaded={{ read(outputs.download.files['/conf/app.txt']) }}"
  - id: prune
    type: io.kestra.plugin.core.namespace.DeleteFiles
    namespace: parity.team
    files: ["old/**"]
  - id: wd
    type: io.kestra.plugin.core.flow.WorkingDirectory
    namespaceFiles:
      enabled: true
      include: ["conf/**"]
    tasks:
      - id: cat
        type: io.kestra.plugin.scripts.shell.Commands
        containerImage: executor/busybox:latest
        commands: ["cat conf/app.txt"]
  - id: labels
    type: io.kestra.plugin.core.execution.Labels
    labels: {parity: "yes"}
  - id: child
    type: io.kestra.plugin.core.flow.Subflow
    namespace: parity.team
    flowId: parity-child
    wait: true
    inputs:
      n: "{{ kv('answer') }}"
      doc: "{{ outputs.write.uri }}"
  - id: pause
    type: io.kestra.plugin.core.flow.Pause
    onResume:
      - id: note
        type: STRING
  - id: resumed
    type: io.kestra.plugin.core.log.Log
    message: "resumed with {{ outputs.pause.onResume.note }}"
  - id: forget
    type: io.kestra.plugin.core.kv.Delete
    key: seeded
  - id: fetch
    type: io.kestra.plugin.core.log.Fetch
    tasksId: [said, stored, downloaded, resumed]
"""

CHILD = """
id: parity-child
namespace: parity.team
inputs:
  - id: n
    type: STRING
  - id: doc
    type: STRING
tasks:
  - id: keep
    type: io.kestra.plugin.core.kv.Set
    key: from-child
    value: "{{ inputs.n }}"
  - id: look
    type: io.kestra.plugin.core.log.Log
    message: >-
      child n={{ kv('from-child') }} file={{ read('conf/app.txt') }}
      doc={{ read(inputs.doc) }}
"""


def cli(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``executor ARGS`` on a server's home (its database)."""
    env = {**os.environ, "EXECUTOR_HOME": str(home)}
    return subprocess.run(
        [sys.executable, "-m", "executor", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


def upload(client: httpx.Client, path: str, data: bytes) -> None:
    answer = client.post(
        f"/api/v1/namespaces/{NAMESPACE}/files",
        params={"path": path},
        files={"fileContent": (Path(path).name, data)},
    )
    assert answer.status_code == 200, answer.text


def namespace_files(client: httpx.Client, path: str = "/") -> list[str]:
    """Every file of the namespace, from the server's API."""
    found: list[str] = []
    for entry in client.get(
        f"/api/v1/namespaces/{NAMESPACE}/files/directory", params={"path": path}
    ).json():
        child = f"{path.rstrip('/')}/{entry['fileName']}"
        found += namespace_files(client, child) if entry["type"] == "Directory" else [child]
    return sorted(found)


def seed(client: httpx.Client, home: Path) -> None:
    """The same state on both servers: the flows, two namespace files, one KV value."""
    push_flow(client, CHILD)
    push_flow(client, PARENT)
    upload(client, "/conf/app.txt", b"from the namespace")
    upload(client, "/old/stale.txt", b"to be deleted")
    done = cli(home, "kv", "set", NAMESPACE, "seeded", "planted")
    assert done.returncode == 0, done.stderr


def run(client: httpx.Client) -> str:
    """Run the flow, resume its pause through the API; the execution's id once it ended."""
    execution_id: str = client.post(f"/api/v1/executions/{NAMESPACE}/parity").json()["id"]
    paused = wait_state(client, execution_id, {"PAUSED", *ENDED}, 240)
    assert paused["state"]["current"] == "PAUSED", logs_of(client, execution_id)
    until(
        lambda: (
            client.post(
                f"/api/v1/executions/{execution_id}/resume", files={"note": (None, "go on")}
            ).status_code
            in (200, 204)
        ),
        60,
        lambda: "the resume to be taken",
    )
    done = wait_state(client, execution_id, ENDED, 240)
    assert done["state"]["current"] == "SUCCESS", logs_of(client, execution_id)
    return execution_id


def normalized(value: Any, ids: dict[str, str]) -> Any:
    """``value`` as JSON with every execution and task run id replaced by its role."""
    text = json.dumps(value, sort_keys=True)
    for found, role in ids.items():
        text = text.replace(found, role)
    return json.loads(text)


def record(client: httpx.Client, execution_id: str) -> dict[str, Any]:
    """What the server keeps of a run (and of its subflow), ids replaced by their roles."""
    parent = client.get(f"/api/v1/executions/{execution_id}").json()
    [child_run] = [t for t in parent["taskRunList"] if t["taskId"] == "child"]
    child_id = child_run["outputs"]["executionId"]
    child = client.get(f"/api/v1/executions/{child_id}").json()
    ids = {execution_id: "<parent>", child_id: "<child>"}
    for execution in (parent, child):
        for task_run in execution["taskRunList"]:
            ids[task_run["id"]] = f"<run of {task_run['taskId']}>"
    fetched = next(t for t in parent["taskRunList"] if t["taskId"] == "fetch")["outputs"]["uri"]
    ion = client.get(f"/api/v1/executions/{execution_id}/file", params={"path": fetched}).text
    return normalized(
        {
            "state": parent["state"]["current"],
            "labels": sorted(
                (label["key"], label["value"])
                for label in parent["labels"]
                if not label["key"].startswith("system.")
            ),
            "tasks": {
                t["taskId"]: {"state": t["state"]["current"], "outputs": t.get("outputs", {})}
                for t in parent["taskRunList"]
            },
            "child": {
                "state": child["state"]["current"],
                "tasks": {t["taskId"]: t.get("outputs", {}) for t in child["taskRunList"]},
                "said": [m for m in logs_of(client, child_id) if m.startswith("child ")],
            },
            "said": [
                m
                for m in logs_of(client, execution_id)
                if re.match(r"(kv|stored|downloaded|resumed)[= ]", m)
            ],
            "cat": [m for m in logs_of(client, execution_id) if m == "from the namespace"],
            "fetched": [
                (line["taskId"], line["message"]) for line in map(json.loads, ion.splitlines())
            ],
            "namespace files": namespace_files(client),
        },
        ids,
    )


def kv_of(home: Path) -> dict[str, str | None]:
    """The KV values the flow leaves, as ``executor kv get`` on the server's home shows them."""
    found: dict[str, str | None] = {}
    for key in ("answer", "from-child", "seeded"):
        done = cli(home, "kv", "get", NAMESPACE, key)
        found[key] = done.stdout.strip() if done.returncode == 0 else None
    return found


@pytest.fixture
def local(tmp_path: Path) -> Iterator[LiveServer]:
    """A server that runs executions in its own slots (the run is local to its stores)."""
    with LiveServer(tmp_path / "local", workers=1) as server:
        yield server


@pytest.fixture
def remote(
    tmp_path: Path,
    engine2: SecondEngine,  # noqa: F811
    redis: int,  # noqa: F811
) -> Iterator[Cluster]:
    """A server with --broker, and one worker on engine 2 with a home of its own."""
    cluster = cluster_for(tmp_path, engine2, redis)
    cluster.start_server()
    cluster.start_worker("w2", netns=engine2.name, docker_host=engine2.socket)
    try:
        yield cluster
    finally:
        cluster.stop()


def test_a_run_on_a_worker_is_the_run_it_would_be_on_the_server(
    tmp_path: Path, local: LiveServer, remote: Cluster
) -> None:
    """Same outputs, same logs, same KV values and namespace files on the server, both ways;
    and the worker keeps nothing of it in its own home."""
    with httpx.Client(base_url=local.url, timeout=60) as client:
        seed(client, local.home)
        here = record(client, run(client))
    assert remote.server is not None
    with remote.client() as client:
        seed(client, remote.server.home)
        there = record(client, run(client))
    assert here["tasks"]["get"]["outputs"] == {"value": 42}
    assert here["said"][0] == "kv=42 seeded=planted file=from the namespace"
    assert "child n=42 file=from the namespace doc=written 42" in here["child"]["said"]
    assert here["namespace files"] == ["/conf/app.txt", "/uploaded/write.txt"]

    assert there == here
    assert (
        kv_of(remote.server.home)
        == kv_of(local.home)
        == {
            "answer": "42",
            "from-child": "42",
            "seeded": None,
        }
    )
    worker_db = tmp_path / "w2" / "executor.db"
    if worker_db.exists():  # the worker's own database, if anything made one: no KV in it
        with KvTable(worker_db) as kv:
            assert kv.namespaces() == []
    assert not (tmp_path / "w2" / "namespaces" / NAMESPACE / "uploaded").exists()


GITOPS = """
id: gitops
namespace: parity.git
tasks:
  - id: push
    type: io.kestra.plugin.git.PushNamespaceFiles
    url: {url}
    files: "scripts/**"
  - id: sync
    type: io.kestra.plugin.git.SyncNamespaceFiles
    url: {url}
    namespace: parity.git.copy
    gitDirectory: _files
    delete: true
"""

ELSEWHERE = """
id: elsewhere
namespace: parity.git
tasks:
  - id: theirs
    type: io.kestra.plugin.core.kv.Set
    namespace: other.team
    key: taken
    value: "no"
"""


def test_git_namespace_file_tasks_and_the_namespace_rule_on_a_worker(
    tmp_path: Path,
    engine2: SecondEngine,  # noqa: F811
    redis: int,  # noqa: F811
) -> None:
    """PushNamespaceFiles reads and SyncNamespaceFiles writes the server's namespace files from
    a worker (on this host's engine, where the git server is); a KV write to a namespace that
    is not the flow's nor below it is refused by the server, and the task says why."""
    from tests.unit.workspace.gitserver import git, make_repo, serve

    root = tmp_path / "repos"
    root.mkdir()
    (tmp_path / "readme").mkdir()
    (tmp_path / "readme" / "README").write_text("readme\n")
    make_repo(tmp_path / "readme", root / "files.git")
    cluster = Cluster(tmp_path, "127.0.0.1", f"redis://127.0.0.1:{redis}/0")
    with serve(root) as gitserver:
        cluster.start_server()
        cluster.start_worker("w1")
        try:
            with cluster.client() as client:
                answer = client.post(
                    "/api/v1/namespaces/parity.git/files",
                    params={"path": "/scripts/etl.py"},
                    files={"fileContent": ("etl.py", b"print('etl')\n")},
                )
                assert answer.status_code == 200, answer.text
                push_flow(client, GITOPS.format(url=gitserver.url("files.git")))
                push_flow(client, ELSEWHERE)
                pushed = client.post("/api/v1/executions/parity.git/gitops").json()["id"]
                done = wait_state(client, pushed, ENDED, 240)
                assert done["state"]["current"] == "SUCCESS", logs_of(client, pushed)
                assert git(root / "files.git", "show", "main:_files/scripts/etl.py") == (
                    "print('etl')\n"
                )
                copied = client.get(
                    "/api/v1/namespaces/parity.git.copy/files", params={"path": "/scripts/etl.py"}
                )
                assert copied.status_code == 200 and copied.content == b"print('etl')\n"
                refused = client.post("/api/v1/executions/parity.git/elsewhere").json()["id"]
                done = wait_state(client, refused, ENDED, 240)
                assert done["state"]["current"] == "FAILED"
                said = "\n".join(logs_of(client, refused))
                assert "may not use the KV store of namespace other.team" in said, said
        finally:
            cluster.stop()
    assert cli(tmp_path / "server", "kv", "get", "other.team", "taken").returncode != 0
