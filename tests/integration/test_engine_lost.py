"""An engine lost mid-run: a clear reason in the record, exit 3, one line, nothing raw.

The test starts a second Docker engine of its own (own network namespace, socket, data root,
exec root and pid file, no bridge, no iptables: the shared engine is never touched), runs a
flow on it, and kills that engine while a task runs.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.integration.helpers import cli, until, write_flow

pytestmark = pytest.mark.integration

FLOW = """
id: lost
namespace: tests.lost
tasks:
  - id: wd
    type: io.kestra.plugin.core.flow.WorkingDirectory
    tasks:
      - id: x
        type: io.kestra.plugin.scripts.shell.Commands
        containerImage: executor/busybox
        commands:
          - echo task-began
          - sleep 30
"""


@dataclass
class SecondEngine:
    address: str
    process: subprocess.Popen[bytes]
    roots: tuple[Path, Path]


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry.name))
    return found


def _pids_mentioning(text: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if text in (entry / "cmdline").read_bytes().decode(errors="replace"):
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def _kill_tree(pid: int) -> None:
    for child in _children(pid):
        _kill_tree(child)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


@pytest.fixture
def second_engine(tmp_path: Path) -> Iterator[SecondEngine]:
    """A Docker engine of this test's own, with executor/busybox loaded; removed afterwards."""
    if os.geteuid() != 0 or shutil.which("dockerd") is None:
        pytest.skip("a second engine needs root and dockerd")
    name = f"executor-test-{uuid.uuid4().hex[:8]}"
    data, run = Path("/var/lib") / name, Path("/run") / name
    socket = f"unix:///run/{name}.sock"
    log = (tmp_path / "dockerd.log").open("wb")
    bridges_before = _host_bridges()
    process = subprocess.Popen(
        [  # a network namespace of its own: a dockerd with no bridge deletes the host's docker0
            "unshare",
            "--net",
            "--",
            "dockerd",
            f"--data-root={data}",
            f"--exec-root={run}",
            f"--pidfile=/run/{name}.pid",
            f"--host={socket}",
            "--bridge=none",
            "--iptables=false",
            "--ip-masq=false",
            f"--cgroup-parent=/{name}",
            f"--config-file={_config(tmp_path, data)}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    engine = SecondEngine(socket, process, (data, run))
    try:
        until(
            lambda: (
                subprocess.run(["docker", "-H", socket, "version"], capture_output=True).returncode
                == 0
            ),
            60,
            f"engine 2 to answer on {socket}",
        )
        saved = subprocess.run(
            ["docker", "save", "executor/busybox:latest"], capture_output=True, check=True
        )
        subprocess.run(
            ["docker", "-H", socket, "load", "-q"],
            input=saved.stdout,
            check=True,
            capture_output=True,
        )
        yield engine
    finally:
        _remove(engine, name)
    assert _host_bridges() >= bridges_before, "the second engine removed a bridge of the host"


def _host_bridges() -> set[str]:
    return {entry.name for entry in Path("/sys/class/net").iterdir() if (entry / "bridge").exists()}


def _config(tmp_path: Path, data: Path) -> Path:
    path = tmp_path / "daemon.json"
    path.write_text(json.dumps({"deprecated-key-path": f"{data}/key.json"}))
    return path


def _remove(engine: SecondEngine, name: str) -> None:
    """Kill the engine, its containerd, shims and container processes; unmount; delete."""
    _kill_tree(engine.process.pid)
    engine.process.wait()
    for pid in _pids_mentioning(str(engine.roots[1])):  # containerd and shims left behind
        _kill_tree(pid)
    mounts = [
        line.split()[1]
        for line in Path("/proc/mounts").read_text().splitlines()
        if any(line.split()[1].startswith(str(root)) for root in engine.roots)
    ]
    for mount in sorted(mounts, reverse=True):
        subprocess.run(["umount", "-l", mount], capture_output=True, check=False)
    for root in engine.roots:
        shutil.rmtree(root, ignore_errors=True)
    for leftover in (Path(f"/run/{name}.sock"), Path(f"/run/{name}.pid")):
        leftover.unlink(missing_ok=True)
    for cgroup in Path("/sys/fs/cgroup").glob(f"**/{name}"):
        for inner in sorted(cgroup.rglob("*"), reverse=True):
            if inner.is_dir():
                inner.rmdir()
        cgroup.rmdir()


def test_engine_lost_mid_task_ends_the_run_with_that_reason(
    home: Path, tmp_path: Path, second_engine: SecondEngine
) -> None:
    """Killing the engine under a running task: exit 3, one line naming the engine and the task,
    and the record FAILED with the same reason."""
    flow = write_flow(tmp_path, FLOW)
    err = tmp_path / "stderr.txt"
    env = {**os.environ, "EXECUTOR_HOME": str(home), "DOCKER_HOST": second_engine.address}
    with err.open("w") as stderr:
        run = subprocess.Popen(
            [sys.executable, "-m", "executor", "run", str(flow)],
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            env=env,
        )
        try:
            until(
                lambda: "task-began" in err.read_text() or run.poll() is not None,
                60,
                "the task to begin",
            )
            assert "task-began" in err.read_text(), err.read_text()
            _kill_tree(second_engine.process.pid)
            code = run.wait(timeout=300)
        finally:
            if run.poll() is None:
                run.kill()
                run.wait()

    text = err.read_text()
    assert "Traceback" not in text and "urllib3" not in text and "Connection aborted" not in text
    expected = f"the Docker engine at {second_engine.address} stopped answering during task 'x'"
    assert code == 3, text
    last = text.strip().splitlines()[-1]
    assert last.startswith(f"executor: {expected} ("), last

    listed = cli(home, "executions", "--json")
    assert listed.returncode == 0, listed.stderr
    (execution,) = json.loads(listed.stdout)
    shown = cli(home, "show", execution["id"], "--json")
    assert shown.returncode == 0, shown.stderr
    record = json.loads(shown.stdout)
    assert record["state"]["current"] == "FAILED"
    assert str(record.get("reason", "")).startswith(expected), record.get("reason")
