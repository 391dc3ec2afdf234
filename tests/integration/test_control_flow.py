# ruff: noqa: E501 - the flows are YAML, kept one task a line to read like the flows users write
"""Control flow against the real engine: branches as concurrent execs in one container."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from executor.model import State
from executor.store.db import Store
from tests.integration.helpers import cli, our_resources, run_flow, states, until, write_flow

pytestmark = pytest.mark.integration

SH = "io.kestra.plugin.scripts.shell.Commands"


def _start(home: Path, *args: str) -> subprocess.Popen[str]:
    import os

    return subprocess.Popen(
        [sys.executable, "-m", "executor", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "EXECUTOR_HOME": str(home)},
    )


def _execution_in(home: Path, state: State) -> str | None:
    db = home / "executor.db"
    if not db.exists():
        return None
    with Store(db) as store:
        found = [e for e in store.list_executions() if e.state == state]
    return found[0].id if found else None


def test_parallel_children_share_the_workspace_and_the_next_child_reads_it(
    home: Path, tmp_path: Path
) -> None:
    """Three Parallel children write files at once; the child after them reads all three."""
    flow = write_flow(
        tmp_path,
        f"""
        id: fan
        namespace: tests.flow
        tasks:
          - id: wd
            type: io.kestra.plugin.core.flow.WorkingDirectory
            tasks:
              - id: shards
                type: io.kestra.plugin.core.flow.Parallel
                tasks:
                  - {{id: s1, type: {SH}, containerImage: busybox, commands: ["echo one > s1.txt"]}}
                  - {{id: s2, type: {SH}, containerImage: busybox, commands: ["echo two > s2.txt"]}}
                  - {{id: s3, type: {SH}, containerImage: busybox, commands: ["echo three > s3.txt"]}}
              - id: gather
                type: {SH}
                containerImage: busybox
                commands:
                  - echo "::{{\\"outputs\\":{{\\"all\\":\\"$(cat s1.txt s2.txt s3.txt | tr '\\n' ' ')\\"}}}}::"
        """,
    )
    execution, _ = run_flow(home, flow)
    assert execution.state.current == State.SUCCESS, states(execution)
    assert execution.task_run("gather").outputs["vars"]["all"] == "one two three "
    wd = execution.task_run("wd")
    shards = execution.task_run("shards")
    assert shards.parent_task_run_id == wd.id
    assert {execution.task_run(s).parent_task_run_id for s in ("s1", "s2", "s3")} == {shards.id}
    assert len(execution.images) == 1
    assert not our_resources()


def test_a_failed_branch_kills_its_sleeping_sibling_and_nothing_survives(
    home: Path, tmp_path: Path
) -> None:
    """Fail-fast: the sibling's sleep is killed; finally, in the same container, finds none."""
    flow = write_flow(
        tmp_path,
        f"""
        id: failfast
        namespace: tests.flow
        tasks:
          - id: wd
            type: io.kestra.plugin.core.flow.WorkingDirectory
            tasks:
              - id: fan
                type: io.kestra.plugin.core.flow.Parallel
                tasks:
                  - id: sleeper
                    type: {SH}
                    containerImage: busybox
                    commands: ["sleep 307 & sleep 308"]
                  - id: breaker
                    type: {SH}
                    containerImage: busybox
                    commands: ["sleep 1", "exit 3"]
            finally:
              - id: census
                type: {SH}
                containerImage: busybox
                commands:
                  - n=$(cat /proc/[0-9]*/cmdline 2>/dev/null | tr '\\0' ' ' | grep -c 'sleep 30[78]' || true)
                  - echo "::{{\\"outputs\\":{{\\"left\\":$n}}}}::"
        """,
    )
    execution, _ = run_flow(home, flow)
    got = states(execution)
    assert got["breaker"] == "FAILED"
    assert got["sleeper"] == "FAILED"
    assert "breaker" in (execution.task_run("sleeper").reason or "")
    assert got["fan"] == "FAILED" and execution.state.current == State.FAILED
    assert execution.task_run("census").outputs["vars"]["left"] == 0
    assert not our_resources()


def test_for_each_values_run_concurrently_with_their_own_outputs(
    home: Path, tmp_path: Path
) -> None:
    """A ForEach of 4 values, 2 at a time, in one container; outputs addressed by value."""
    flow = write_flow(
        tmp_path,
        f"""
        id: loop
        namespace: tests.flow
        tasks:
          - id: wd
            type: io.kestra.plugin.core.flow.WorkingDirectory
            tasks:
              - id: each
                type: io.kestra.plugin.core.flow.ForEach
                values: ["a", "b", "c", "d"]
                concurrencyLimit: 2
                tasks:
                  - id: make
                    type: {SH}
                    containerImage: busybox
                    commands:
                      - mkdir -p out && echo "{{{{ taskrun.value }}}}{{{{ taskrun.iteration }}}}" > out/{{{{ taskrun.value }}}}
                  - id: size
                    type: {SH}
                    containerImage: busybox
                    commands:
                      - echo "::{{\\"outputs\\":{{\\"text\\":\\"$(cat out/{{{{ taskrun.value }}}})\\"}}}}::"
              - id: pick
                type: io.kestra.plugin.core.debug.Return
                format: "{{{{ outputs.size['c'].vars.text }}}}"
        """,
    )
    execution, _ = run_flow(home, flow)
    assert execution.state.current == State.SUCCESS, states(execution)
    assert execution.task_run("pick").outputs["value"] == "c2"
    sizes = [r for r in execution.task_runs if r.task_id == "size"]
    assert sorted(r.value for r in sizes) == ["a", "b", "c", "d"]
    assert {r.outputs["vars"]["text"] for r in sizes} == {"a0", "b1", "c2", "d3"}


def test_if_switch_dag_and_json_task_runs(home: Path, tmp_path: Path) -> None:
    """If, Switch and Dag through the CLI; --json task runs carry value and parentTaskRunId."""
    flow = write_flow(
        tmp_path,
        f"""
        id: branches
        namespace: tests.flow
        inputs:
          - {{id: mode, type: STRING, defaults: fast}}
        tasks:
          - id: check
            type: io.kestra.plugin.core.flow.If
            condition: "{{{{ inputs.mode == 'fast' }}}}"
            then:
              - {{id: quick, type: {SH}, containerImage: busybox, commands: ["echo quick"]}}
            else:
              - {{id: slow, type: {SH}, containerImage: busybox, commands: ["echo slow"]}}
          - id: pick
            type: io.kestra.plugin.core.flow.Switch
            value: "{{{{ inputs.mode }}}}"
            cases:
              fast: [{{id: f, type: io.kestra.plugin.core.debug.Return, format: F}}]
            defaults: [{{id: d, type: io.kestra.plugin.core.debug.Return, format: D}}]
          - id: dag
            type: io.kestra.plugin.core.flow.Dag
            tasks:
              - task: {{id: late, type: io.kestra.plugin.core.debug.Return, format: "{{{{ outputs.early.value }}}}!"}}
                dependsOn: [early]
              - task: {{id: early, type: io.kestra.plugin.core.debug.Return, format: E}}
          - id: each
            type: io.kestra.plugin.core.flow.ForEach
            values: '["x"]'
            tasks:
              - {{id: inner, type: io.kestra.plugin.core.debug.Return, format: "{{{{ taskrun.value }}}}"}}
        """,
    )
    result = cli(home, "run", str(flow), "--json", "-q")
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    runs = {r["taskId"]: r for r in doc["taskRunList"]}
    assert "quick" in runs and "slow" not in runs
    assert runs["check"]["outputs"] == {"evaluationResult": True}
    assert "f" in runs and "d" not in runs
    assert runs["late"]["outputs"]["value"] == "E!"
    assert runs["inner"]["value"] == "x" and runs["inner"]["iteration"] == 0
    assert runs["inner"]["parentTaskRunId"] == runs["each"]["id"]


def test_subflow_runs_as_its_own_linked_execution(home: Path, tmp_path: Path) -> None:
    """A Subflow waits for the child flow, gets its outputs; the child is recorded, linked."""
    write_flow(
        tmp_path,
        """
        id: child
        namespace: tests.sub
        inputs:
          - {id: who, type: STRING}
        tasks:
          - id: greet
            type: io.kestra.plugin.scripts.shell.Commands
            containerImage: busybox
            commands: ["echo \\"::{\\\\\\"outputs\\\\\\":{\\\\\\"msg\\\\\\":\\\\\\"hi {{ inputs.who }}\\\\\\"}}::\\""]
        outputs:
          - id: message
            type: STRING
            value: "{{ outputs.greet.vars.msg }}"
        """,
        "child.yaml",
    )
    parent = write_flow(
        tmp_path,
        """
        id: parent
        namespace: tests.sub
        tasks:
          - id: call
            type: io.kestra.plugin.core.flow.Subflow
            namespace: tests.sub
            flowId: child
            inputs: {who: "{{ flow.id }}"}
          - id: echo
            type: io.kestra.plugin.core.debug.Return
            format: "{{ outputs.call.outputs.message }}"
          - id: fire
            type: io.kestra.plugin.core.flow.Subflow
            namespace: tests.sub
            flowId: child
            wait: false
            inputs: {who: later}
        """,
        "parent.yaml",
    )
    result = cli(home, "run", str(parent), "--json", "-q")
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    runs = {r["taskId"]: r for r in doc["taskRunList"]}
    assert runs["echo"]["outputs"]["value"] == "hi parent"
    child_id = runs["call"]["outputs"]["executionId"]
    shown = cli(home, "show", child_id, "--json")
    assert shown.returncode == 0, shown.stderr
    child = json.loads(shown.stdout)
    assert child["flowId"] == "child" and child["parentId"] == doc["id"]
    assert child["state"]["current"] == "SUCCESS"
    assert (
        runs["fire"]["outputs"]["state"] == "CREATED"
        and runs["fire"]["state"]["current"] == "SUCCESS"
    )
    detached = json.loads(
        cli(home, "show", runs["fire"]["outputs"]["executionId"], "--json").stdout
    )
    assert detached["state"]["current"] == "SUCCESS"  # the parent's executor waited for it
    assert detached["outputs"] == {"message": "hi later"}


def test_missing_and_recursive_subflows_are_refused_before_anything_runs(
    home: Path, tmp_path: Path
) -> None:
    """A flow calling itself around a loop: exit 2, located. A Subflow naming no flow: a
    warning at validate (Kestra accepts it when the flow is saved), exit 2 at run, before
    anything runs."""
    write_flow(
        tmp_path,
        """
        id: ping
        namespace: tests.loop
        tasks:
          - {id: to_pong, type: io.kestra.plugin.core.flow.Subflow, namespace: tests.loop, flowId: pong}
        """,
        "ping.yaml",
    )
    pong = write_flow(
        tmp_path,
        """
        id: pong
        namespace: tests.loop
        tasks:
          - {id: to_ping, type: io.kestra.plugin.core.flow.Subflow, namespace: tests.loop, flowId: ping}
        """,
        "pong.yaml",
    )
    lost = write_flow(
        tmp_path,
        """
        id: lost
        namespace: tests.loop
        tasks:
          - {id: nowhere, type: io.kestra.plugin.core.flow.Subflow, namespace: tests.loop, flowId: ghost}
        """,
        "lost.yaml",
    )
    cycle = cli(home, "run", str(pong))
    assert cycle.returncode == 2, cycle.stderr
    assert "tests.loop.pong -> tests.loop.ping -> tests.loop.pong" in cycle.stderr
    assert "pong.yaml:" in cycle.stderr and "Traceback" not in cycle.stderr
    warned = cli(home, "validate", str(lost))
    assert warned.returncode == 0, warned.stderr
    assert "lost.yaml: valid" in warned.stdout
    assert "warning: " in warned.stderr and "task 'nowhere'" in warned.stderr
    assert "Unable to find flow 'tests.loop'.'ghost'" in warned.stderr
    missing = cli(home, "run", str(lost))
    assert missing.returncode == 2, missing.stderr
    assert "Unable to find flow 'tests.loop'.'ghost'" in missing.stderr
    assert "task 'nowhere'" in missing.stderr and "Traceback" not in missing.stderr
    assert not (home / "executor.db").exists() or _execution_in(home, State.RUNNING) is None


def test_a_manual_pause_waits_for_resume_from_another_process(
    home: Path, tmp_path: Path, started: list[subprocess.Popen[str]]
) -> None:
    """The run stays PAUSED in the records until `executor resume ID -i ...` from elsewhere."""
    flow = write_flow(
        tmp_path,
        """
        id: approval
        namespace: tests.pause
        tasks:
          - id: wait
            type: io.kestra.plugin.core.flow.Pause
            onResume:
              - {id: approved, type: BOOLEAN}
          - id: after
            type: io.kestra.plugin.core.debug.Return
            format: "approved={{ outputs.wait.onResume.approved }}"
        """,
    )
    run = _start(home, "run", str(flow), "--json", "-q")
    started.append(run)
    execution_id = until(lambda: _execution_in(home, State.PAUSED), 90, "a PAUSED execution")
    refused = cli(home, "resume", execution_id, "-i", "approved=maybe", "--wait", "2")
    assert refused.returncode == 2  # checked against the recorded onResume, before any wait
    assert "input 'approved' is not a valid BOOLEAN: expected true or false" in refused.stderr
    assert _execution_in(home, State.PAUSED) == execution_id
    resumed = cli(home, "resume", execution_id, "-i", "approved=true")
    assert resumed.returncode == 0, resumed.stderr
    out, err = run.communicate(timeout=120)
    assert run.returncode == 0, err
    doc = json.loads(out)
    runs = {r["taskId"]: r for r in doc["taskRunList"]}
    assert runs["after"]["outputs"]["value"] == "approved=true"
    assert "PAUSED" in [h["state"] for h in doc["state"]["histories"]]


def test_ctrl_c_during_a_parallel_stops_every_branch_and_leaves_nothing(
    home: Path, tmp_path: Path, started: list[subprocess.Popen[str]]
) -> None:
    """SIGINT while two branches sleep: exit 130, both KILLED, no container or volume left."""
    flow = write_flow(
        tmp_path,
        f"""
        id: interrupted
        namespace: tests.flow
        tasks:
          - id: wd
            type: io.kestra.plugin.core.flow.WorkingDirectory
            tasks:
              - id: fan
                type: io.kestra.plugin.core.flow.Parallel
                tasks:
                  - {{id: a, type: {SH}, containerImage: busybox, commands: ["echo started-a", "sleep 300"]}}
                  - {{id: b, type: {SH}, containerImage: busybox, commands: ["echo started-b", "sleep 300"]}}
        """,
    )
    run = _start(home, "run", str(flow))
    started.append(run)
    execution_id = until(lambda: _execution_in(home, State.RUNNING), 90, "a running execution")

    def both_started() -> bool:
        with Store(home / "executor.db") as store:
            messages = {r.line.message for r in store.logs(execution_id)}
        return {"started-a", "started-b"} <= messages

    until(both_started, 90, "both branches")
    run.send_signal(signal.SIGINT)
    _, err = run.communicate(timeout=120)
    assert run.returncode == 130, err
    with Store(home / "executor.db") as store:
        stored = store.get_execution(execution_id).execution
    assert stored.state.current == State.KILLED
    assert {t.task_id: t.state.current for t in stored.task_runs if t.task_id in "ab"} == {
        "a": State.KILLED,
        "b": State.KILLED,
    }
    assert not our_resources()
