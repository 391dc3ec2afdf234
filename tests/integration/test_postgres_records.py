"""Records in PostgreSQL (EXECUTOR_DATABASE_URL): a real flow on the real engine, and the server."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from executor.engine import labels
from executor.model import State
from executor.store.db import Store
from tests.integration.helpers import cli, our_resources, write_flow
from tests.integration.server_helpers import BUSYBOX, LiveServer, push_flow

pytestmark = pytest.mark.integration

LINES = 3000

LOUD = f"""
id: loud
namespace: tests.postgres
tasks:
  - id: wd
    type: io.kestra.plugin.core.flow.WorkingDirectory
    tasks:
      - id: count
        type: io.kestra.plugin.scripts.shell.Commands
        containerImage: {BUSYBOX}
        commands:
          - seq 1 {LINES}
          - echo "to stderr" >&2
      - id: fail
        type: io.kestra.plugin.scripts.shell.Commands
        containerImage: {BUSYBOX}
        allowFailure: true
        commands:
          - echo "about to fail"
          - exit 3
"""

HELLO = f"""
id: hello
namespace: tests.postgres
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
"""


def test_a_run_recorded_in_postgresql_reads_back_every_line(
    home: Path, tmp_path: Path, postgres_url: str
) -> None:
    """`executor run` with EXECUTOR_DATABASE_URL: execution, task runs and every log line are in
    PostgreSQL (nothing in the home's SQLite) and `executor show`/`logs` read them back."""
    env = {"EXECUTOR_DATABASE_URL": postgres_url}
    run = cli(home, "run", "--quiet", "--json", str(write_flow(tmp_path, LOUD)), env=env)
    assert run.returncode == 0, run.stderr
    execution_id = json.loads(run.stdout)["id"]
    assert not (home / "executor.db").exists()

    shown = json.loads(cli(home, "show", execution_id, "--json", env=env).stdout)
    assert shown["state"]["current"] == "WARNING"
    states = {t["taskId"]: t["state"]["current"] for t in shown["taskRunList"]}
    assert states == {"wd": "WARNING", "count": "SUCCESS", "fail": "WARNING"}  # allowFailure

    logged = cli(home, "logs", execution_id, "--json", env=env)
    assert logged.returncode == 0, logged.stderr
    entries = [json.loads(line) for line in logged.stdout.splitlines()]
    counted = [e["message"] for e in entries if e["taskId"] == "count" and e["stream"] == "stdout"]
    assert counted == [str(n) for n in range(1, LINES + 1)]
    assert any(e["message"] == "to stderr" and e["stream"] == "stderr" for e in entries)
    assert any(e["message"] == "about to fail" and e["taskId"] == "fail" for e in entries)

    with Store(postgres_url) as store:
        stored = store.get_execution(execution_id).execution
        assert stored.state.current == State.WARNING
        assert store.count_logs(execution_id) == len(entries)
        assert [r[0] for r in store.read("SELECT count(*) FROM log_lines")] == [len(entries)]
    assert our_resources(**{labels.EXECUTION: execution_id}) == []


def test_the_server_on_postgresql_runs_an_execution_through_the_api(
    home: Path, postgres_url: str
) -> None:
    """`executor server` with EXECUTOR_DATABASE_URL: flows, queue, execution and logs live in
    PostgreSQL, and the API reads them back from there."""
    server = LiveServer(home, workers=1, env={"EXECUTOR_DATABASE_URL": postgres_url}).start()
    try:
        with server.client() as client:
            push_flow(client, HELLO)
            done = client.post(
                "/api/v1/executions/tests.postgres/hello",
                params={"wait": "true"},
                files={"who": (None, "postgres")},
            ).json()
            assert done["state"]["current"] == "SUCCESS", done
            eid = done["id"]
            lines = client.get(f"/api/v1/logs/{eid}", params={"taskId": "greet"}).json()
            assert "hello postgres" in [e["message"] for e in lines]
            found = client.get(
                "/api/v1/executions/search", params={"namespace": "tests", "q": "hel"}
            ).json()
            assert [r["id"] for r in found["results"]] == [eid]
    finally:
        assert server.stop() == 0, server.output()
    assert not (home / "executor.db").exists()
    with Store(postgres_url) as store:
        assert store.execution_state(eid) == State.SUCCESS
        flows = store.read("SELECT id, revision FROM flows")
        assert flows == [("hello", 1)]
    assert our_resources(**{labels.EXECUTION: eid}) == []
