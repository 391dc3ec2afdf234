"""Docker runner limits per container: pids, swap, cpus, shm, and devices (GPUs)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from executor.engine import labels
from executor.model import LogLine
from tests.integration.helpers import Recorder, cli, run_flow, states, write_flow

pytestmark = pytest.mark.integration

LIMITED = """
id: limits
namespace: tests.limits
tasks:
  - id: wd
    type: io.kestra.plugin.core.flow.WorkingDirectory
    tasks:
      - id: probe
        type: io.kestra.plugin.scripts.shell.Commands
        containerImage: busybox
        taskRunner:
          type: io.kestra.plugin.scripts.runner.docker.Docker
          cpu: {cpus: 1.5}
          memory: {memory: 256m, memorySwap: 512m}
          shmSize: 64m
        commands:
          - echo "pids.max=$(cat /sys/fs/cgroup/pids.max /sys/fs/cgroup/pids/pids.max 2>/dev/null)"
"""


class HostConfigProbe(Recorder):
    """Inspects the execution's container when the task's first line arrives (it runs then)."""

    def __init__(self) -> None:
        super().__init__()
        self.host_config: dict[str, Any] | None = None

    def log(self, line: LogLine) -> None:
        super().log(line)
        if self.host_config is None and line.task_id == "probe" and line.stream == "stdout":
            from executor.engine.docker.client import connect

            api = connect(os.environ.get("DOCKER_HOST")).api
            found = api.containers(filters={"label": f"{labels.EXECUTION}={line.execution_id}"})
            assert len(found) == 1, found
            self.host_config = api.inspect_container(found[0]["Id"])["HostConfig"]


def test_cpus_memory_swap_shm_and_the_pids_limit_reach_the_container(
    home: Path, tmp_path: Path, executions_leave_nothing: None
) -> None:
    """The container gets cpus, memory, memorySwap, shmSize and the default pids limit (4096)."""
    from executor import app
    from executor.settings import Settings

    probe = HostConfigProbe()
    settings = Settings.from_env({**os.environ, "EXECUTOR_HOME": str(home)})
    execution = app.run_flow(settings, write_flow(tmp_path, LIMITED), {}, [probe])
    assert states(execution)["probe"] == "SUCCESS"
    host = probe.host_config
    assert host is not None
    assert host["NanoCpus"] == 1_500_000_000
    assert host["Memory"] == 256 * 1024**2
    assert host["MemorySwap"] == 512 * 1024**2
    assert host["ShmSize"] == 64 * 1024**2
    assert host["PidsLimit"] == 4096
    assert "pids.max=4096" in probe.messages("probe")


FORK_BOMB = """
id: forks
namespace: tests.limits
tasks:
  - id: wd
    type: io.kestra.plugin.core.flow.WorkingDirectory
    tasks:
      - id: bomb
        type: io.kestra.plugin.scripts.shell.Script
        containerImage: busybox
        script: |
          # A subshell tries to hold 200 processes at once; the limit is 64. It dies at the
          # first refused fork and its sleeps are killed here with builtins only (no forks).
          : > pids.txt
          (
            i=0
            while [ $i -lt 200 ]; do
              sleep 300 &
              echo $! >> pids.txt
              i=$((i + 1))
            done
          ) 2> forks.err || true
          while read -r p; do kill -KILL "$p" 2>/dev/null; done < pids.txt
          while read -r p; do
            n=0
            while kill -0 "$p" 2>/dev/null && [ $n -lt 100000 ]; do n=$((n + 1)); done
          done < pids.txt
          while read -r line; do
            case "$line" in *"Resource temporarily unavailable"*|*"can't fork"*)
              echo "fork refused"; exit 0 ;;
            esac
          done < forks.err
          echo "every fork succeeded"
          exit 1
      - id: after
        type: io.kestra.plugin.scripts.shell.Commands
        containerImage: busybox
        commands:
          - echo "container still usable"
"""


def test_a_fork_bomb_stops_at_the_pids_limit(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, executions_leave_nothing: None
) -> None:
    """With EXECUTOR_PIDS_LIMIT=64, the 65th process cannot be forked; the container lives on."""
    monkeypatch.setenv("EXECUTOR_PIDS_LIMIT", "64")
    execution, recorder = run_flow(home, write_flow(tmp_path, FORK_BOMB))
    assert states(execution) == {"wd": "SUCCESS", "bomb": "SUCCESS", "after": "SUCCESS"}
    assert "fork refused" in recorder.messages("bomb")
    assert "container still usable" in recorder.messages("after")


def test_a_bad_pids_limit_setting_is_one_line_and_exit_2(home: Path, tmp_path: Path) -> None:
    """EXECUTOR_PIDS_LIMIT that is not a number: exit 2, the variable named, no traceback."""
    result = cli(home, "run", str(write_flow(tmp_path, LIMITED)), env={"EXECUTOR_PIDS_LIMIT": "x"})
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "EXECUTOR_PIDS_LIMIT='x': expected a whole number >= 0" in result.stderr


GPU = """
id: gpu
namespace: tests.limits
tasks:
  - id: wd
    type: io.kestra.plugin.core.flow.WorkingDirectory
    tasks:
      - id: train
        type: io.kestra.plugin.scripts.shell.Commands
        containerImage: busybox
        taskRunner:
          type: io.kestra.plugin.scripts.runner.docker.Docker
          deviceRequests:
            - driver: nvidia
              count: -1
              capabilities: [[gpu]]
        commands:
          - echo "training"
"""


def test_device_requests_on_an_engine_without_gpus_fail_the_task_clearly(
    home: Path, tmp_path: Path, executions_leave_nothing: None
) -> None:
    """deviceRequests reach the engine; one with no GPU runtime fails the task saying so."""
    result = cli(home, "run", str(write_flow(tmp_path, GPU)))
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    output = result.stdout + result.stderr
    assert "cannot give the container the devices in deviceRequests" in output
    assert "no GPU runtime" in output
    shown = cli(home, "executions", "--json")
    assert '"FAILED"' in shown.stdout
    assert "training" not in output


def test_device_requests_are_validated_with_their_location(home: Path, tmp_path: Path) -> None:
    """A misspelt deviceRequests field is an invalid flow (exit 2), located, before any start."""
    flow = write_flow(tmp_path, GPU.replace("count: -1", "cuont: -1"))
    result = cli(home, "validate", str(flow))
    assert result.returncode == 2
    assert "deviceRequests[0].cuont" in result.stderr and "unknown property" in result.stderr
