"""The WorkingDirectory runtime against the real Docker engine."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from executor.engine import labels
from tests.conftest import copy_flow
from tests.integration.helpers import cli, our_resources, run_flow, states, until, write_flow

pytestmark = pytest.mark.integration

SHARED = """
id: shared
namespace: tests.runtime
tasks:
  - id: wd
    type: io.kestra.plugin.core.flow.WorkingDirectory
    tasks:
      - id: first
        type: io.kestra.plugin.scripts.shell.Commands
        containerImage: busybox
        commands:
          - echo "from the first task" > /tmp/shared.txt
          - echo $$ > /tmp/first.pid
      - id: second
        type: io.kestra.plugin.scripts.python.Commands
        commands:
          - python -c "print('python in the middle')"
      - id: third
        type: io.kestra.plugin.scripts.shell.Commands
        containerImage: busybox
        commands:
          - cat /tmp/shared.txt
          - test -f /tmp/first.pid
"""


def _created_containers(since: float, execution_id: str) -> list[dict[str, str]]:
    import docker

    client = docker.from_env()
    events = client.api.events(
        since=int(since) - 1,
        until=int(time.time()) + 1,
        decode=True,
        filters={
            "type": "container",
            "event": "create",
            "label": f"{labels.EXECUTION}={execution_id}",
        },
    )
    return [e["Actor"]["Attributes"] for e in events]


def test_children_share_one_container_per_image(home: Path, tmp_path: Path) -> None:
    """A file the first child writes to /tmp is read by the third; one container per image."""
    started = time.time()
    execution, rec = run_flow(home, write_flow(tmp_path, SHARED))
    assert execution.state.current.value == "SUCCESS", rec.messages()
    assert "from the first task" in rec.messages("third")
    created = _created_containers(started, execution.id)
    images = sorted(attrs["image"] for attrs in created)
    assert len(created) == 2, images  # busybox once, python once
    assert not our_resources(**{labels.EXECUTION: execution.id})


def test_exit_codes_and_states(home: Path, tmp_path: Path) -> None:
    """A non-zero exit fails the task and the flow; stderr makes an otherwise good task WARNING."""
    flow = write_flow(
        tmp_path,
        """
        id: codes
        namespace: tests.runtime
        tasks:
          - id: wd
            type: io.kestra.plugin.core.flow.WorkingDirectory
            tasks:
              - id: warns
                type: io.kestra.plugin.scripts.shell.Commands
                containerImage: busybox
                warningOnStdErr: true
                commands:
                  - echo "careful" >&2
              - id: fails
                type: io.kestra.plugin.scripts.shell.Commands
                containerImage: busybox
                commands:
                  - exit 7
              - id: never
                type: io.kestra.plugin.scripts.shell.Commands
                containerImage: busybox
                commands:
                  - echo unreachable
    """,
    )
    execution, _rec = run_flow(home, flow)
    assert states(execution) == {"wd": "FAILED", "warns": "WARNING", "fails": "FAILED"}
    fails = execution.task_run("fails")
    assert fails.attempts[-1].exit_code == 7
    assert execution.state.current.value == "FAILED"
    result = cli(home, "run", str(flow))
    assert result.returncode == 1, result.stderr


def test_lines_stream_while_the_task_runs(home: Path, tmp_path: Path) -> None:
    """A line printed before a sleep reaches the listener before the task ends, in order."""
    flow = write_flow(
        tmp_path,
        """
        id: streaming
        namespace: tests.runtime
        tasks:
          - id: talk
            type: io.kestra.plugin.scripts.shell.Commands
            containerImage: busybox
            warningOnStdErr: false
            commands:
              - echo one
              - echo two >&2
              - sleep 1.5
              - echo three
    """,
    )
    execution, rec = run_flow(home, flow)
    lines = [ln for ln in rec.lines if ln.task_id == "talk" and ln.stream in ("stdout", "stderr")]
    # stdout and stderr are two pipes: their relative order within an instant is not defined
    assert sorted((ln.stream, ln.message) for ln in lines[:2]) == [
        ("stderr", "two"),
        ("stdout", "one"),
    ]
    assert (lines[2].stream, lines[2].message) == ("stdout", "three")
    end = execution.task_run("talk").state.end
    assert end is not None
    assert (end - lines[0].timestamp).total_seconds() > 1.0
    assert (lines[2].timestamp - lines[0].timestamp).total_seconds() > 1.0


def test_timeout_kills_the_process_tree_and_finally_runs(home: Path, tmp_path: Path) -> None:
    """timeout_kill.yaml: slow fails by timeout in time, unreached never starts, no sleep lives."""
    execution, rec = run_flow(home, copy_flow("timeout_kill.yaml", tmp_path))
    assert execution.state.current.value == "FAILED"
    assert states(execution) == {"wdir": "FAILED", "slow": "FAILED", "survivors": "SUCCESS"}
    slow = execution.task_run("slow")
    assert slow.state.duration is not None and slow.state.duration < 2 + 3 + 3
    assert "timed out" in (slow.reason or "")
    assert not any("sleep 30" in m for m in rec.messages("survivors") if "procs" not in m)


def test_user_option_gives_home_name_and_workspace(home: Path, tmp_path: Path) -> None:
    """Children run as uid 1000 with a passwd entry, a writable HOME and a workspace they own."""
    flow = write_flow(
        tmp_path,
        """
        id: users
        namespace: tests.runtime
        tasks:
          - id: wd
            type: io.kestra.plugin.core.flow.WorkingDirectory
            tasks:
              - id: as_user
                type: io.kestra.plugin.scripts.shell.Commands
                taskRunner:
                  type: io.kestra.plugin.scripts.runner.docker.Docker
                  user: "1000:1000"
                containerImage: busybox
                commands:
                  - id -u
                  - id -un
                  - touch "$HOME/ok" && echo "home=$HOME"
                  - touch owned.txt && stat -c %u owned.txt
    """,
    )
    execution, rec = run_flow(home, flow)
    assert execution.state.current.value == "SUCCESS", rec.messages()
    out = rec.messages("as_user")
    assert "1000" in out and "executor" in out
    assert any(m.startswith("home=/") for m in out)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_signal_mid_run_leaves_nothing(home: Path, tmp_path: Path, signum: int) -> None:
    """Ctrl-C or SIGTERM while a child sleeps: exit 130, no container or volume of the run left."""
    flow = write_flow(
        tmp_path,
        """
        id: interrupt
        namespace: tests.runtime
        tasks:
          - id: wd
            type: io.kestra.plugin.core.flow.WorkingDirectory
            tasks:
              - id: sleepy
                type: io.kestra.plugin.scripts.shell.Commands
                containerImage: busybox
                commands:
                  - echo started
                  - sleep 120
    """,
    )
    env = {**os.environ, "EXECUTOR_HOME": str(home)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "executor", "run", str(flow)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        until(lambda: our_resources(**{labels.OWNER_PID: str(proc.pid)}), 60, "the run to start")
        time.sleep(1.0)
        proc.send_signal(signum)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert not our_resources(**{labels.OWNER_PID: str(proc.pid)})
    assert "Traceback" not in err


def test_json_output_has_kestra_shape(home: Path, tmp_path: Path) -> None:
    """run --json prints id, namespace, flowId, state.current and taskRunList with outputs."""
    flow = write_flow(
        tmp_path,
        """
        id: shape
        namespace: tests.runtime
        tasks:
          - id: say
            type: io.kestra.plugin.scripts.shell.Commands
            containerImage: busybox
            commands:
              - 'echo ''::{"outputs":{"answer":42}}::'''
    """,
    )
    result = cli(home, "run", "--json", str(flow))
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["namespace"] == "tests.runtime" and doc["flowId"] == "shape"
    assert doc["state"]["current"] == "SUCCESS"
    say = next(t for t in doc["taskRunList"] if t["taskId"] == "say")
    assert say["state"]["current"] == "SUCCESS"
    assert say["outputs"]["vars"]["answer"] == 42


@pytest.mark.serial  # orphans of its own: another run's sweep must not take them
def test_gc_removes_only_orphans(home: Path) -> None:
    """gc removes a labelled volume whose owner pid is gone and keeps one whose owner lives."""
    import docker

    client = docker.from_env()
    dead = subprocess.Popen(["true"])
    dead.wait()
    orphan_labels = {**labels.ownership("gc-test"), labels.OWNER_PID: str(dead.pid)}
    live_labels = labels.ownership("gc-test-live")
    orphan = client.volumes.create(labels=orphan_labels)
    live = client.volumes.create(labels=live_labels)
    try:
        result = cli(home, "gc")
        assert result.returncode == 0, result.stderr
        assert f"removed volume {orphan.name}" in result.stdout
        names = {v.name for v in client.volumes.list()}
        assert orphan.name not in names and live.name in names
    finally:
        for vol in (orphan, live):
            with contextlib.suppress(docker.errors.NotFound):
                vol.remove(force=True)


def test_out_of_memory_is_reported(home: Path, tmp_path: Path) -> None:
    """A child killed by the memory limit is FAILED with oomKilled and a reason that says so."""
    flow = write_flow(
        tmp_path,
        """
        id: oom
        namespace: tests.runtime
        tasks:
          - id: hog
            type: io.kestra.plugin.scripts.python.Commands
            taskRunner:
              type: io.kestra.plugin.scripts.runner.docker.Docker
              memory:
                memory: 64m
            commands:
              - python -c "x = bytearray(512 * 1024 * 1024)"
          - id: next
            type: io.kestra.plugin.scripts.shell.Commands
            containerImage: busybox
            commands: ["echo fine"]
    """,
    )
    execution, _ = run_flow(home, flow)
    hog = execution.task_run("hog")
    assert hog.state.current.value == "FAILED"
    assert hog.attempts[-1].oom_killed is True
    assert "out of memory" in (hog.reason or "")
