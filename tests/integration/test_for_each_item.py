# ruff: noqa: E501 - the flows are YAML, kept one task a line to read like the flows users write
"""ForEachItem against the real engine, through ``executor run --flows``: a file cut into
batches, one recorded child execution per batch, Kestra's task runs and merged outputs."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from executor.run.ion import read_rows
from executor.store.files.artifacts import LocalArtifactStore
from tests.integration.helpers import cli, until, write_flow
from tests.integration.server_helpers import LiveServer, wait_state

pytestmark = pytest.mark.integration

NS = "tests.foreach"

COUNTING_CHILD = f"""
id: count_batch
namespace: {NS}
inputs:
  - id: batch
    type: FILE
  - id: n
    type: INT
tasks:
  - id: count
    type: io.kestra.plugin.scripts.shell.Commands
    containerImage: executor/debian:bookworm
    inputFiles:
      batch.txt: "{{{{ inputs.batch }}}}"
    commands:
      - echo "::{{\\"outputs\\":{{\\"lines\\":$(wc -l < batch.txt),\\"sum\\":$(awk '{{s+=$1}} END {{print s}}' batch.txt)}}}}::"
outputs:
  - id: lines
    type: STRING
    value: "{{{{ outputs.count.vars.lines }}}}"
  - id: sum
    type: STRING
    value: "{{{{ outputs.count.vars.sum }}}}"
  - id: n
    type: STRING
    value: "{{{{ inputs.n }}}}"
"""

THOUSAND_ROWS = f"""
id: thousand
namespace: {NS}
tasks:
  - id: make
    type: io.kestra.plugin.scripts.shell.Commands
    containerImage: executor/debian:bookworm
    outputFiles: [rows.txt]
    commands:
      - seq 1 1000 > rows.txt
  - id: each
    type: io.kestra.plugin.core.flow.ForEachItem
    items: "{{{{ outputs.make.outputFiles['rows.txt'] }}}}"
    batch:
      rows: 100
    namespace: {NS}
    flowId: count_batch
    inputs:
      batch: "{{{{ taskrun.items }}}}"
      n: "{{{{ taskrun.iteration }}}}"
  - id: after
    type: io.kestra.plugin.core.debug.Return
    format: "{{{{ outputs.each_merge.subflowOutputs }}}}"
"""

# a child that fails on the batch holding "c" (host tasks only: the failure is the point)
PICKY_CHILD = f"""
id: picky
namespace: {NS}
inputs:
  - id: data
    type: STRING
tasks:
  - id: refuse
    type: io.kestra.plugin.core.execution.Fail
    condition: "{{{{ read(inputs.data) | trim == 'c' }}}}"
    errorMessage: "no c please"
outputs:
  - id: row
    type: STRING
    value: "{{{{ read(inputs.data) | trim }}}}"
"""

# a child that takes a second (a Pause), so that two at once would overlap
DAWDLE_CHILD = f"""
id: dawdle
namespace: {NS}
inputs:
  - id: data
    type: STRING
tasks:
  - id: linger
    type: io.kestra.plugin.core.flow.Pause
    pauseDuration: PT1S
outputs:
  - id: row
    type: STRING
    value: "{{{{ read(inputs.data) | trim }}}}"
"""

FOUR_ROWS = """
  - id: rows
    type: io.kestra.plugin.core.storage.Write
    extension: .txt
    content: "a\\nb\\nc\\nd\\n"
"""

TRANSMIT = f"""
id: transmit
namespace: {NS}
tasks:{FOUR_ROWS}
  - id: tolerant
    type: io.kestra.plugin.core.flow.ForEachItem
    items: "{{{{ outputs.rows.uri }}}}"
    namespace: {NS}
    flowId: picky
    transmitFailed: false
    inputs:
      data: "{{{{ taskrun.items }}}}"
  - id: strict
    type: io.kestra.plugin.core.flow.ForEachItem
    items: "{{{{ outputs.rows.uri }}}}"
    namespace: {NS}
    flowId: picky
    inputs:
      data: "{{{{ taskrun.items }}}}"
"""

NO_WAIT = f"""
id: no_wait
namespace: {NS}
tasks:{FOUR_ROWS}
  - id: fire
    type: io.kestra.plugin.core.flow.ForEachItem
    items: "{{{{ outputs.rows.uri }}}}"
    batch:
      rows: 2
    namespace: {NS}
    flowId: dawdle
    wait: false
    inputs:
      data: "{{{{ taskrun.items }}}}"
"""


def _run(
    home: Path, flows: Path, flow_id: str, env: dict[str, str] | None = None
) -> tuple[int, dict[str, Any]]:
    flow = str(flows / f"{flow_id}.yaml")
    done = cli(home, "run", flow, "--flows", str(flows), "--json", env=env)
    assert done.stdout.strip(), done.stderr
    return done.returncode, json.loads(done.stdout)


def _runs(execution: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {run["taskId"]: run for run in execution["taskRunList"]}


def _children(home: Path, flow_id: str) -> list[dict[str, Any]]:
    listed = cli(home, "executions", "--flow", flow_id, "--json", "-n", "500")
    assert listed.returncode == 0, listed.stderr
    children: list[dict[str, Any]] = json.loads(listed.stdout)
    return children


def _when(execution: dict[str, Any], state: str) -> str:
    return next(h["date"] for h in execution["state"]["histories"] if h["state"] == state)


def _stored(home: Path, uri: str) -> bytes:
    got = cli(home, "storage", "get", uri)
    assert got.returncode == 0, got.stderr
    return got.stdout.encode()


@pytest.fixture
def flows(tmp_path: Path) -> Path:
    root = tmp_path / "flows"
    root.mkdir()
    for name, text in (
        ("count_batch", COUNTING_CHILD),
        ("thousand", THOUSAND_ROWS),
        ("picky", PICKY_CHILD),
        ("dawdle", DAWDLE_CHILD),
        ("transmit", TRANSMIT),
        ("no_wait", NO_WAIT),
    ):
        write_flow(root, text, f"{name}.yaml")
    return root


def test_a_thousand_rows_in_batches_of_a_hundred_give_ten_children_and_merged_outputs(
    home: Path, flows: Path, executions_leave_nothing: None
) -> None:
    """10 child executions, each with its 100 rows; Kestra's three task runs; one Ion line of
    outputs per child, in batch order."""
    code, execution = _run(home, flows, "thousand")
    assert code == 0, execution.get("reason")
    assert execution["state"]["current"] == "SUCCESS"
    runs = _runs(execution)
    each = runs["each"]
    for part in ("each_split", "each_items", "each_merge"):
        assert runs[part]["parentTaskRunId"] == each["id"]
        assert runs[part]["state"]["current"] == "SUCCESS"
    assert runs["each_items"]["outputs"]["numberOfBatches"] == 10
    assert runs["each_items"]["outputs"]["iterations"] == {
        "CREATED": 0,
        "RUNNING": 0,
        "SUCCESS": 10,
    }
    assert each["outputs"]["numberOfBatches"] == 10
    merged_uri = runs["each_merge"]["outputs"]["subflowOutputs"]
    assert each["outputs"]["subflowOutputs"] == merged_uri

    store = LocalArtifactStore(home / "artifacts")
    with store.open(runs["each_split"]["outputs"]["splits"]) as listed:
        splits = listed.read().decode().split()
    assert len(splits) == 10
    with store.open(splits[3]) as batch:
        assert batch.read() == b"".join(b"%d\n" % i for i in range(301, 401))

    children = _children(home, "count_batch")
    assert len(children) == 10
    assert {c["state"]["current"] for c in children} == {"SUCCESS"}
    assert {c["parentId"] for c in children} == {execution["id"]}
    iterations = sorted(c["trigger"]["variables"]["taskRunIteration"] for c in children)
    assert iterations == list(range(10))

    rows = list(read_rows(io.BytesIO(_stored(home, merged_uri))))
    assert [row["n"] for row in rows] == [str(i) for i in range(10)]
    assert {row["lines"] for row in rows} == {"100"}
    assert sum(int(row["sum"]) for row in rows) == 500500
    assert runs["after"]["outputs"]["value"] == merged_uri


def test_transmit_failed_decides_whether_a_failed_child_fails_the_task(
    home: Path, flows: Path
) -> None:
    """Off: the task ends SUCCESS and counts the failure; on (Kestra's default): FAILED, the
    execution too, and nothing is merged."""
    code, execution = _run(home, flows, "transmit")
    assert code != 0
    assert execution["state"]["current"] == "FAILED"
    runs = _runs(execution)
    assert runs["tolerant"]["state"]["current"] == "SUCCESS"
    assert runs["tolerant"]["outputs"]["iterations"] == {
        "CREATED": 0,
        "RUNNING": 0,
        "SUCCESS": 3,
        "FAILED": 1,
    }
    merged = _stored(home, runs["tolerant_merge"]["outputs"]["subflowOutputs"])
    assert sorted(row["row"] for row in read_rows(io.BytesIO(merged))) == ["a", "b", "d"]
    assert runs["strict"]["state"]["current"] == "FAILED"
    assert runs["strict_items"]["state"]["current"] == "FAILED"
    said = "1 of 4 subflow execution(s) of tests.foreach.picky ended FAILED"
    assert said in (runs["strict"]["reason"] or "")
    assert said in (runs["strict_items"]["reason"] or "")
    assert "strict_merge" not in runs
    states = sorted(c["state"]["current"] for c in _children(home, "picky"))
    assert states == ["FAILED", "FAILED"] + ["SUCCESS"] * 6


def test_wait_false_starts_the_children_and_does_not_follow_them(home: Path, flows: Path) -> None:
    """The task ends once its children are started (counted CREATED); each child still runs to
    its end and reads its batch of the parent's files; they take turns, never all at once."""
    code, execution = _run(home, flows, "no_wait", {"EXECUTOR_FOREACH_ITEM_CONCURRENCY": "1"})
    assert code == 0, execution.get("reason")
    runs = _runs(execution)
    assert runs["fire"]["state"]["current"] == "SUCCESS"
    assert runs["fire_items"]["outputs"]["iterations"] == {"CREATED": 2, "RUNNING": 0}
    assert "subflowOutputs" not in runs["fire_merge"]["outputs"]
    children = _children(home, "dawdle")
    assert len(children) == 2
    assert {c["parentId"] for c in children} == {execution["id"]}
    # rows "a b" and "c d": the child reads its whole batch (two rows, not one)
    assert {c["state"]["current"] for c in children} == {"SUCCESS"}
    assert sorted(c["outputs"]["row"] for c in children) == ["a\nb", "c\nd"]
    spans = sorted((_when(c, "RUNNING"), c["state"]["histories"][-1]["date"]) for c in children)
    assert spans[0][1] <= spans[1][0], f"one slot, yet the children overlapped: {spans}"


SERVER_PARENT = f"""
id: fan_out
namespace: {NS}
tasks:{FOUR_ROWS}
  - id: waited
    type: io.kestra.plugin.core.flow.ForEachItem
    items: "{{{{ outputs.rows.uri }}}}"
    namespace: {NS}
    flowId: picky
    transmitFailed: false
    inputs:
      data: "{{{{ taskrun.items }}}}"
  - id: fired
    type: io.kestra.plugin.core.flow.ForEachItem
    items: "{{{{ outputs.rows.uri }}}}"
    batch:
      rows: 2
    namespace: {NS}
    flowId: dawdle
    wait: false
    inputs:
      data: "{{{{ taskrun.items }}}}"
"""


def _searched(client: httpx.Client, flow_id: str) -> list[dict[str, Any]]:
    answer = client.get(
        "/api/v1/executions/search", params={"namespace": NS, "flowId": flow_id, "size": 100}
    )
    assert answer.status_code == 200, answer.text
    found: list[dict[str, Any]] = answer.json()["results"]
    return found


def test_in_a_server_waited_children_run_in_the_slot_and_the_others_are_queued(
    server: LiveServer,
) -> None:
    """Through Kestra's API: the waited-for children run and are merged; those not waited for
    are queued executions that run later, each linked to the parent and reading its batch."""
    for text in (PICKY_CHILD, DAWDLE_CHILD, SERVER_PARENT):
        server.push(text)
    with server.client() as client:
        eid = client.post(f"/api/v1/executions/{NS}/fan_out").json()["id"]
        done = wait_state(client, eid, {"SUCCESS", "FAILED", "KILLED", "WARNING"})
        assert done["state"]["current"] == "SUCCESS", done.get("reason")
        runs = _runs(done)
        assert runs["waited_items"]["outputs"]["iterations"] == {
            "CREATED": 0,
            "RUNNING": 0,
            "SUCCESS": 3,
            "FAILED": 1,
        }
        assert runs["fired_items"]["outputs"]["iterations"] == {"CREATED": 2, "RUNNING": 0}
        merged = client.get(
            f"/api/v1/executions/{eid}/file",
            params={"path": runs["waited_merge"]["outputs"]["subflowOutputs"]},
        )
        assert merged.status_code == 200, merged.text
        assert [row["row"] for row in read_rows(io.BytesIO(merged.content))] == ["a", "b", "d"]

        fired: list[dict[str, Any]] = []

        def ended() -> bool:
            nonlocal fired
            fired = _searched(client, "dawdle")
            return len(fired) == 2 and all(f["state"]["current"] == "SUCCESS" for f in fired)

        until(ended, 120, lambda: f"the two fired children to end: {fired}")
        assert {f["parentId"] for f in fired} == {eid}
        assert sorted(f["outputs"]["row"] for f in fired) == ["a\nb", "c\nd"]
