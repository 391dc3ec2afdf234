"""Keeping history in check, as a user does it: a flow with PurgeExecutions and PurgeLogs run
with `python -m executor run`, and a real server's retention purging on its schedule."""

from __future__ import annotations

import json
import os
import sys
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from executor.host import Owner
from executor.model import Execution, State
from executor.store.db import Store
from executor.store.files.artifacts import LocalArtifactStore
from tests.integration.helpers import cli, until
from tests.integration.server_helpers import LiveServer, start
from tests.unit.store.sample import ended_execution, record, running_execution

pytestmark = pytest.mark.integration

PRODUCER = """\
id: producer
namespace: {namespace}
tasks:
  - id: hello
    type: io.kestra.plugin.core.log.Log
    message: hello from {namespace}
  - id: file
    type: io.kestra.plugin.core.storage.Write
    content: some rows
    extension: .txt
"""

WAITER = """\
id: waiter
namespace: tests.purge.gone
tasks:
  - id: wait
    type: io.kestra.plugin.core.flow.Pause
  - id: after
    type: io.kestra.plugin.core.log.Log
    message: resumed
"""

PURGE = """\
id: purge
namespace: tests.admin
tasks:
  - id: logs
    type: io.kestra.plugin.core.log.PurgeLogs
    namespace: tests.purge.kept
    endDate: "{{ now() }}"
  - id: purge
    type: io.kestra.plugin.core.execution.PurgeExecutions
    namespace: tests.purge.gone
    endDate: "{{ now() }}"
    states: [SUCCESS, FAILED]
  - id: report
    type: io.kestra.plugin.core.log.Log
    message: "purged {{ outputs.purge.executionsCount }} executions"
"""


def _flow(tmp_path: Path, name: str, source: str) -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(textwrap.dedent(source))
    return path


def _executions(home: Path) -> dict[str, Execution]:
    with Store(home / "executor.db") as store:
        return {s.id: store.get_execution(s.id).execution for s in store.list_executions()}


def _files(home: Path, namespace: str) -> list[Path]:
    root = home / "artifacts" / Path(*namespace.split("."))
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


def test_a_flow_purges_ended_executions_of_a_namespace_and_nothing_else(tmp_path: Path) -> None:
    """PurgeExecutions: two ended runs of tests.purge.gone go with their lines and files; the
    paused one of that namespace, the run of tests.purge.kept, the purge's own run, KV and
    namespace files stay, and the paused run resumes and ends after it. PurgeLogs: the lines of
    tests.purge.kept go, its execution and file stay."""
    home = tmp_path / "home"
    for namespace in ("tests.purge.gone", "tests.purge.kept"):
        flow = _flow(tmp_path, namespace, PRODUCER.format(namespace=namespace))
        for _ in range(2 if namespace.endswith("gone") else 1):
            done = cli(home, "run", str(flow))
            assert done.returncode == 0, done.stderr
    assert cli(home, "kv", "set", "tests.purge.gone", "cursor", "42").returncode == 0
    source = tmp_path / "nsfiles"
    source.mkdir()
    (source / "query.sql").write_text("select 1")
    assert cli(home, "namespace", "push", "tests.purge.gone", str(source)).returncode == 0
    before = _executions(home)
    kept_ids = {e.id for e in before.values() if e.namespace == "tests.purge.kept"}
    assert len(_files(home, "tests.purge.gone")) == 2
    with Store(home / "executor.db") as store:
        kept_lines = sum(store.count_logs(e) for e in kept_ids)
    assert kept_lines > 0

    waiter = start(
        [sys.executable, "-m", "executor", "run", str(_flow(tmp_path, "waiter", WAITER))],
        tmp_path / "waiter.log",
        {**os.environ, "EXECUTOR_HOME": str(home)},
    )
    paused = until(
        lambda: next(
            (e for e in _executions(home).values() if e.state.current == State.PAUSED), None
        ),
        60,
        lambda: f"the waiter to pause: {waiter.output()}",
    )

    done = cli(home, "run", str(_flow(tmp_path, "purge", PURGE)), "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    outputs = {t["taskId"]: t.get("outputs") for t in report["taskRunList"]}
    assert outputs["purge"]["executionsCount"] == 2
    assert outputs["purge"]["storagesCount"] == 2
    assert outputs["purge"]["logsCount"] > 0
    # PurgeLogs took every line of the kept namespace's runs, and only those
    assert outputs["logs"]["count"] == outputs["logs"]["executionLogsCount"] == kept_lines

    after = _executions(home)
    assert {e.namespace for e in after.values()} == {
        "tests.purge.kept",
        "tests.purge.gone",  # the paused one
        "tests.admin",
    }
    assert kept_ids <= set(after) and paused.id in after
    assert after[report["id"]].state.current == State.SUCCESS  # it did not purge itself
    assert _files(home, "tests.purge.gone") == []
    assert len(_files(home, "tests.purge.kept")) == 1
    with Store(home / "executor.db") as store:
        for gone in set(before) - set(after):
            assert store.count_logs(gone) == 0
        assert all(store.count_logs(e) == 0 for e in kept_ids)  # PurgeLogs: rows stay
        assert store.count_logs(paused.id) > 0 and store.count_logs(report["id"]) > 0
    assert cli(home, "kv", "get", "tests.purge.gone", "cursor").stdout.strip() == "42"
    listed = cli(home, "namespace", "ls", "tests.purge.gone")
    assert "query.sql" in listed.stdout, listed.stderr

    resumed = cli(home, "resume", paused.id)
    assert resumed.returncode == 0, resumed.stderr
    assert waiter.proc.wait(timeout=60) == 0, waiter.output()
    assert _executions(home)[paused.id].state.current == State.SUCCESS


def _aged(e: Execution, days: float) -> Execution:
    shift = datetime.now(UTC) - timedelta(days=days) - e.state.history[-1][1]
    for history in [e.state] + [run.state for run in e.task_runs]:
        history.history = [(state, when + shift) for state, when in history.history]
    return e


def test_a_server_with_a_retention_purges_on_its_schedule(tmp_path: Path) -> None:
    """EXECUTOR_SERVER_RETENTION=P30D: what ended 40 days ago goes at start, with its lines and
    files; an execution of that age stored while the server runs goes at a later pass; what
    ended yesterday and what still runs stay; the server logs what it purged."""
    home = tmp_path / "home"
    files = LocalArtifactStore(home / "artifacts")

    def add(e: Execution, owner: Owner | None = None) -> Execution:
        lines = None if e.task_runs and e.state.current.terminal else []
        record(home / "executor.db", e, owner, lines)
        files.write(files.prefix(e.namespace, e.flow_id, e.id, "t", "r"), "out.txt", [b"x"])
        return e

    old = add(_aged(ended_execution("orders", "company.team"), 40))
    recent = add(_aged(ended_execution("orders", "company.team"), 1))
    running = running_execution()
    running.state.history = [(s, w - timedelta(days=40)) for s, w in running.state.history]
    add(running, Owner.current())  # this test process: alive, nobody ends it

    env = {"EXECUTOR_SERVER_RETENTION": "P30D", "EXECUTOR_SERVER_RETENTION_INTERVAL": "1"}
    with LiveServer(home, env=env) as server, server.client() as client:

        def gone(execution_id: str) -> bool:
            return client.get(f"/api/v1/executions/{execution_id}").status_code == 404

        until(lambda: gone(old.id), 60, lambda: f"the first pass: {server.output()}")
        later = add(_aged(ended_execution("report", "company.other"), 35))
        until(lambda: gone(later.id), 60, lambda: f"a later pass: {server.output()}")
        assert client.get(f"/api/v1/executions/{recent.id}").status_code == 200
        assert client.get(f"/api/v1/executions/{running.id}").json()["state"]["current"] == (
            "RUNNING"
        )
        assert "retention purged executions" in server.output()
    left = {p.parts[-5] for p in (home / "artifacts").rglob("out.txt")}
    assert left == {recent.id, running.id}
    with Store(home / "executor.db") as store:
        assert store.count_logs(old.id) == store.count_logs(later.id) == 0
        assert store.count_logs(recent.id) == 4


def test_a_bad_retention_stops_the_server_with_one_line(tmp_path: Path) -> None:
    done = cli(tmp_path, "server", "--retention", "ninety days", timeout=60)
    assert done.returncode == 6, done.stderr
    assert "--retention: expected how long to keep ended executions" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(
    ("properties", "reason"),
    [
        ('endDate: "last tuesday"', "'endDate': 'last tuesday' is not an ISO-8601 date"),
        ('endDate: "{{ now() }}"\n    states: [SUCCESS, RUNNING]', "RUNNING executions have"),
        ('endDate: "{{ now() }}"\n    flowId: orders', "a flow id needs its namespace"),
        ('endDate: "{{ now() }}"\n    batchSize: 0', "'batchSize' must be at least 1"),
    ],
)
def test_a_bad_property_fails_the_task_with_its_name(
    tmp_path: Path, properties: str, reason: str
) -> None:
    """The task ends FAILED with one reason naming the property; nothing is purged."""
    home = tmp_path / "home"
    flow = _flow(tmp_path, "producer", PRODUCER.format(namespace="tests.purge.gone"))
    assert cli(home, "run", str(flow)).returncode == 0
    source = f"""\
id: bad
namespace: tests.admin
tasks:
  - id: purge
    type: io.kestra.plugin.core.execution.PurgeExecutions
    {properties}
"""
    done = cli(home, "run", str(_flow(tmp_path, "bad", source)), "--json")
    assert done.returncode == 1, done.stderr
    execution = json.loads(done.stdout)
    purge = execution["taskRunList"][0]
    assert purge["state"]["current"] == "FAILED"
    assert reason in done.stderr, done.stderr  # the ERROR line and the summary name it
    assert "Traceback" not in done.stderr
    assert len(_executions(home)) == 2  # the producer's run is still there


def test_a_flow_without_end_date_is_invalid(tmp_path: Path) -> None:
    source = """\
id: bad
namespace: tests.admin
tasks:
  - id: purge
    type: io.kestra.plugin.core.log.PurgeLogs
    namespace: tests
"""
    done = cli(tmp_path / "home", "validate", str(_flow(tmp_path, "bad", source)))
    assert done.returncode == 2
    assert "endDate" in done.stderr and "Traceback" not in done.stderr
