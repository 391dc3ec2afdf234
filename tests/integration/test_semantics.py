"""Kestra's semantics against the real engine: errors/finally, retry, secrets, inputs."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from tests.conftest import copy_flow
from tests.integration.helpers import cli, run_flow, states, write_flow

pytestmark = pytest.mark.integration


def test_errors_finally_flow(home: Path, tmp_path: Path) -> None:
    """errors_finally.yaml: FAILED, `after` not started, handlers ran, tolerated is WARNING."""
    execution, rec = run_flow(home, copy_flow("errors_finally.yaml", tmp_path))
    assert execution.state.current.value == "FAILED"
    got = states(execution)
    assert "after" not in got
    assert got["tolerated"] == "WARNING"
    assert got["skipped_by_condition"] == "SKIPPED"
    assert got["boom"] == "FAILED"
    assert got["on_error"] == "SUCCESS" and got["cleanup"] == "SUCCESS"
    printed = [ln.message for ln in rec.lines if ln.task_id == "cleanup" and ln.stream == "stdout"]
    assert printed == ["started", "failing", "handled"]


def test_retry_reruns_in_the_same_container(home: Path, tmp_path: Path) -> None:
    """A retried child sees what its failed attempt left in /tmp: same container, new attempt."""
    flow = write_flow(
        tmp_path,
        """
        id: retry
        namespace: tests.semantics
        tasks:
          - id: flaky
            type: io.kestra.plugin.scripts.shell.Commands
            containerImage: busybox
            retry:
              type: constant
              interval: PT0.2S
              maxAttempt: 4
            commands:
              - echo x >> /tmp/attempts
              - echo "attempt $(wc -l < /tmp/attempts)"
              - test "$(wc -l < /tmp/attempts)" -ge 3
    """,
    )
    execution, rec = run_flow(home, flow)
    run = execution.task_run("flaky")
    assert run.state.current.value == "SUCCESS"
    assert [a.state.current.value for a in run.attempts] == ["FAILED", "FAILED", "SUCCESS"]
    printed = [ln.message for ln in rec.lines if ln.task_id == "flaky" and ln.stream == "stdout"]
    assert printed == ["attempt 1", "attempt 2", "attempt 3"]


def test_secrets_are_read_and_masked(home: Path, tmp_path: Path) -> None:
    """secret('TOKEN') comes from SECRET_TOKEN (base64) and is masked in every log line."""
    flow = write_flow(
        tmp_path,
        """
        id: secrets
        namespace: tests.semantics
        tasks:
          - id: use
            type: io.kestra.plugin.scripts.shell.Commands
            containerImage: busybox
            env:
              TOKEN: "{{ secret('TOKEN') }}"
            commands:
              - echo "token is $TOKEN"
              - test "$TOKEN" = "s3cr3t-value"
    """,
    )
    encoded = base64.b64encode(b"s3cr3t-value").decode()
    result = cli(home, "run", "--json", str(flow), env={"SECRET_TOKEN": encoded})
    assert result.returncode == 0, result.stderr
    assert "token is ******" in result.stderr
    assert "s3cr3t-value" not in result.stderr + result.stdout


def test_typed_inputs_reach_templates(home: Path, tmp_path: Path) -> None:
    """INT and BOOLEAN inputs are converted; defaults apply; a bad INT is refused with exit 2."""
    flow = write_flow(
        tmp_path,
        """
        id: inputs
        namespace: tests.semantics
        inputs:
          - id: count
            type: INT
          - id: loud
            type: BOOLEAN
            defaults: false
        tasks:
          - id: show
            type: io.kestra.plugin.core.log.Log
            message: "{{ inputs.count + 1 }} {{ inputs.loud ? 'LOUD' : 'quiet' }}"
    """,
    )
    _, rec = run_flow(home, flow, {"count": "41"})
    assert "42 quiet" in rec.messages("show")
    bad = cli(home, "run", str(flow), "-i", "count=many")
    assert bad.returncode == 2 and "input 'count' is not a valid INT" in bad.stderr


def test_script_task_outside_working_directory(home: Path, tmp_path: Path) -> None:
    """A script task at the top level runs as a WorkingDirectory of one and leaves nothing."""
    flow = write_flow(
        tmp_path,
        """
        id: alone
        namespace: tests.semantics
        tasks:
          - id: solo
            type: io.kestra.plugin.scripts.python.Script
            script: |
              from kestra import Kestra
              Kestra.outputs({"answer": 6 * 7})
          - id: after
            type: io.kestra.plugin.core.log.Log
            message: "answer={{ outputs.solo.vars.answer }}"
    """,
    )
    execution, rec = run_flow(home, flow)
    assert execution.state.current.value == "SUCCESS"
    assert "answer=42" in rec.messages("after")


def test_file_input_reaches_the_workspace_through_the_store(home: Path, tmp_path: Path) -> None:
    """A FILE input is stored as a kestra:/// URI and inputFiles copies its bytes in."""
    data = tmp_path / "numbers.csv"
    data.write_text("n\n1\n2\n3\n")
    flow = write_flow(
        tmp_path,
        """
        id: file_input
        namespace: tests.semantics
        inputs:
          - id: data
            type: FILE
        tasks:
          - id: wd
            type: io.kestra.plugin.core.flow.WorkingDirectory
            inputFiles:
              in.csv: "{{ inputs.data }}"
            tasks:
              - id: count
                type: io.kestra.plugin.scripts.shell.Commands
                containerImage: busybox
                commands:
                  - echo "lines=$(wc -l < in.csv)"
    """,
    )
    execution, rec = run_flow(home, flow, {"data": str(data)})
    assert execution.state.current.value == "SUCCESS", rec.messages()
    assert str(execution.inputs["data"]).startswith("kestra:///tests/semantics/file_input/")
    assert "lines=4" in rec.messages("count")
