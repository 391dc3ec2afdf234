"""Files and logs under pressure: log cap, interrupted or failing collection, odd names."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from executor.engine import labels
from tests.integration.helpers import cli, our_resources, run_flow, write_flow

pytestmark = pytest.mark.integration

CHATTY = """
id: chatty
namespace: tests.files
tasks:
  - id: wd
    type: io.kestra.plugin.core.flow.WorkingDirectory
    tasks:
      - id: talk
        type: io.kestra.plugin.scripts.shell.Commands
        containerImage: busybox
        commands:
          - i=0; while [ $i -lt 5000 ]; do echo "line $i of a chatty task"; i=$((i+1)); done
          - echo '::{"outputs":{"answer":42}}::'
          - echo "last words" >&2
"""


def test_log_cap_drops_lines_but_keeps_outputs(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past EXECUTOR_MAX_TASK_LOG_BYTES lines are dropped and counted; outputs still arrive."""
    monkeypatch.setenv("EXECUTOR_MAX_TASK_LOG_BYTES", "20000")
    execution, rec = run_flow(home, write_flow(tmp_path, CHATTY))
    assert execution.state.current.value == "SUCCESS", rec.messages()
    talk = execution.task_run("talk")
    assert talk.outputs["vars"] == {"answer": 42}
    task_lines = [ln for ln in rec.lines if ln.task_id == "talk" and ln.stream != "executor"]
    stored = sum(len(ln.message.encode()) + 1 for ln in task_lines)
    assert 0 < stored <= 20000
    assert not any("last words" in ln.message for ln in task_lines)
    warns = [ln.message for ln in rec.lines if ln.task_id == "talk" and ln.level.value == "WARN"]
    assert len([w for w in warns if w.startswith("log cap reached")]) == 1
    assert "EXECUTOR_MAX_TASK_LOG_BYTES" in warns[0]
    dropped = [w for w in warns if w.startswith("log cap: dropped")]
    assert len(dropped) == 1
    # 5000 chatty lines + the protocol line + the stderr line, minus what was kept
    assert f"dropped {5002 - len(task_lines)} line(s)" in dropped[0]
    assert not our_resources(**{labels.EXECUTION: execution.id})


BIG_OUTPUT = """
id: big
namespace: tests.files
tasks:
  - id: wd
    type: io.kestra.plugin.core.flow.WorkingDirectory
    outputFiles:
      - big.bin
    tasks:
      - id: make
        type: io.kestra.plugin.scripts.shell.Commands
        containerImage: busybox
        commands:
          - truncate -s 1500M big.bin
"""


def _parts(root: Path) -> list[Path]:
    return [p for p in root.rglob("*.part")] if root.exists() else []


def _execution_ids(home: Path) -> list[str]:
    from executor.store.db import Store

    with Store(home / "executor.db") as store:
        return [e.id for e in store.list_executions()]


@pytest.mark.timeout(240)
def test_sigterm_while_collecting_output_files(
    home: Path, tmp_path: Path, started: list[subprocess.Popen[str]]
) -> None:
    """SIGTERM mid-collection: exit 130, the stream closed, no container, volume or .part left."""
    flow = write_flow(tmp_path, BIG_OUTPUT)
    proc = subprocess.Popen(
        [sys.executable, "-m", "executor", "run", flow.as_posix()],
        env={**os.environ, "EXECUTOR_HOME": str(home)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    started.append(proc)
    artifacts = home / "artifacts"
    while not _parts(artifacts):
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=200)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    assert "every container and volume of the run was removed" in err
    assert not _parts(artifacts)
    ids = _execution_ids(home)
    assert ids
    assert not [r for eid in ids for r in our_resources(**{labels.EXECUTION: eid})]


DISK_FULL = """
id: full
namespace: tests.files
tasks:
  - id: wd
    type: io.kestra.plugin.core.flow.WorkingDirectory
    outputFiles:
      - "*.bin"
      - small.txt
    tasks:
      - id: make
        type: io.kestra.plugin.scripts.shell.Commands
        containerImage: busybox
        commands:
          - echo small > small.txt
          - truncate -s 5M a.bin
          - truncate -s 100M b.bin
"""


@pytest.fixture
def small_artifacts(home: Path) -> Iterator[Path]:
    """The artifact store of ``home`` on a 20 MB tmpfs, unmounted afterwards."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    artifacts = home / "artifacts"
    artifacts.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=20m", "tmpfs", str(artifacts)], check=True)
    try:
        yield artifacts
    finally:
        subprocess.run(["umount", str(artifacts)], check=True)


@pytest.mark.timeout(240)
def test_disk_full_while_collecting(home: Path, tmp_path: Path, small_artifacts: Path) -> None:
    """A full artifact store: the task FAILS naming it, nothing is left in it or on the engine."""
    execution, rec = run_flow(home, write_flow(tmp_path, DISK_FULL))
    assert execution.state.current.value == "FAILED"
    wd = execution.task_run("wd")
    assert "outputFiles" not in wd.outputs
    errors = [ln.message for ln in rec.lines if ln.task_id == "wd" and ln.level.value == "ERROR"]
    assert any("no space left on device" in m and str(small_artifacts) in m for m in errors), errors
    assert [p for p in small_artifacts.rglob("*") if not p.is_dir()] == []
    assert not our_resources(**{labels.EXECUTION: execution.id})


@pytest.mark.timeout(240)
def test_gc_removes_part_of_a_killed_run(
    home: Path, tmp_path: Path, started: list[subprocess.Popen[str]]
) -> None:
    """SIGKILL mid-collection leaves a .part; `executor gc` removes it and the run's resources."""
    flow = write_flow(tmp_path, BIG_OUTPUT)
    proc = subprocess.Popen(
        [sys.executable, "-m", "executor", "run", flow.as_posix()],
        env={**os.environ, "EXECUTOR_HOME": str(home)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    started.append(proc)  # type: ignore[arg-type]
    artifacts = home / "artifacts"
    while not _parts(artifacts):
        assert proc.poll() is None
        time.sleep(0.05)
    proc.kill()
    proc.wait()
    left = _parts(artifacts)
    assert left
    result = cli(home, "gc")
    assert result.returncode == 0, result.stderr
    assert f"removed partial file {left[0]}" in result.stdout
    assert not _parts(artifacts)
    ids = _execution_ids(home)
    assert not [r for eid in ids for r in our_resources(**{labels.EXECUTION: eid})]


ODD_NAMES = r"""
id: odd
namespace: tests.files
tasks:
  - id: wd
    type: io.kestra.plugin.core.flow.WorkingDirectory
    outputFiles:
      - "*.txt"
      - "**/*.csv"
    tasks:
      - id: make
        type: io.kestra.plugin.scripts.shell.Commands
        containerImage: busybox
        commands:
          - printf 'plain' > plain.txt
          - printf 'two lines' > "$(printf 'line\nbreak.txt')"
          - mkdir -p "$(printf 'sub\ndir')" && printf 'deep' > "$(printf 'sub\ndir/a\nb.csv')"
          - printf 'latin1' > "$(printf 'caf\351.txt')"
"""


def test_output_files_with_newline_and_non_utf8_names(home: Path, tmp_path: Path) -> None:
    """A newline in a name is collected as is; a non-UTF-8 name is refused with a WARN naming it."""
    from executor.store.files.artifacts import LocalArtifactStore

    execution, rec = run_flow(home, write_flow(tmp_path, ODD_NAMES))
    assert execution.state.current.value == "SUCCESS", rec.messages()
    files = execution.task_run("wd").outputs["outputFiles"]
    assert sorted(files) == ["line\nbreak.txt", "plain.txt", "sub\ndir/a\nb.csv"]
    store = LocalArtifactStore(home / "artifacts")
    with store.open(files["line\nbreak.txt"]) as fh:
        assert fh.read() == b"two lines"
    with store.open(files["sub\ndir/a\nb.csv"]) as fh:
        assert fh.read() == b"deep"
    warns = [ln.message for ln in rec.lines if ln.task_id == "wd" and ln.level.value == "WARN"]
    refused = [w for w in warns if "caf" in w]
    assert len(refused) == 1 and "'caf\\xe9.txt'" in refused[0] and "UTF-8" in refused[0]
    stored = [p for p in (home / "artifacts").rglob("*") if p.is_file()]
    assert len(stored) == 3
    assert not our_resources(**{labels.EXECUTION: execution.id})
