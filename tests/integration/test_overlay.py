"""Namespace files seeded as an overlay's lower layer: nothing copied, nothing written back.

With the engine on this host, a WorkingDirectory seeded from whole namespaces mounts their
current versions read-only beneath the workspace; the tasks' writes land in a scratch upper
directory under ``$EXECUTOR_HOME/overlays``. These tests prove the store never changes, a
mounted version is never pruned or altered by a push, and nothing is left after a run, a
kill or a crash (once ``gc`` ran).
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from executor.engine import labels
from executor.store.files.artifacts import LocalArtifactStore
from tests.integration.helpers import Recorder, cli, our_resources, run_flow, until, write_flow

pytestmark = pytest.mark.integration

SEEDED = """
id: layered
namespace: tests.overlay
tasks:
  - id: wd
    type: io.kestra.plugin.core.flow.WorkingDirectory
    namespaceFiles:
      enabled: true
    inputFiles:
      inline.txt: from inputFiles
    outputFiles:
      - a.txt
      - sub/*.txt
    tasks:
      - id: read
        type: io.kestra.plugin.scripts.shell.Commands
        containerImage: busybox
        commands:
          - cat a.txt sub/b.txt inline.txt; echo
          - echo changed >> a.txt
          - rm sub/b.txt
          - echo new > sub/new.txt
          - mount | grep -c ' on /workspace type overlay'
      - id: after
        type: io.kestra.plugin.scripts.shell.Commands
        containerImage: busybox
        commands:
          - cat a.txt sub/new.txt
          - test ! -e sub/b.txt && echo b-gone
"""

# Tells the test it runs (its container id), then waits for the test to say go.
WAITING = """
id: waiting
namespace: tests.overlay
tasks:
  - id: wd
    type: io.kestra.plugin.core.flow.WorkingDirectory
    namespaceFiles:
      enabled: true
    tasks:
      - id: hold
        type: io.kestra.plugin.scripts.shell.Commands
        containerImage: busybox
        commands:
          - echo changed > a.txt
          - hostname > started
          - until [ -e go ]; do sleep 0.1; done
          - cat a.txt sub/b.txt
"""


def _push(home: Path, tmp_path: Path, a: str = "one\n", name: str = "src") -> None:
    src = tmp_path / name
    (src / "sub").mkdir(parents=True, exist_ok=True)
    (src / "a.txt").write_text(a)
    (src / "sub" / "b.txt").write_text("two\n")
    result = cli(home, "namespace", "push", "tests.overlay", str(src))
    assert result.returncode == 0, result.stderr


def _tree(root: Path) -> dict[str, str]:
    """Every file under ``root`` with the digest of its content (not the markers saying a
    version was seen by a reader: they are beside the versions, never in one)."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and not p.name.endswith(".seen")
    }


def _output(rec: Recorder, task_id: str) -> list[str]:
    """What a task printed (without the executor's own INFO lines about the exec)."""
    return [ln.message for ln in rec.lines if ln.task_id == task_id and ln.stream == "stdout"]


def _versions(home: Path) -> Path:
    return home / "namespaces" / ".versions" / "tests.overlay"


def _scratch_dirs(home: Path) -> list[Path]:
    root = home / "overlays"
    return sorted(root.iterdir()) if root.is_dir() else []


def _started_marker(home: Path) -> Path | None:
    for scratch in _scratch_dirs(home):
        marker = scratch / "upper" / "started"
        if marker.is_file() and marker.read_text().strip():
            return marker
    return None


def _start(home: Path, flow: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "executor", "run", str(flow)],
        env={**os.environ, "EXECUTOR_HOME": str(home)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _go(container: str) -> None:
    subprocess.run(["docker", "exec", container, "touch", "/workspace/go"], check=True)


def test_seeded_without_copy_and_writes_never_reach_the_store(home: Path, tmp_path: Path) -> None:
    """The workspace sees the namespace's files and its own changes; the store is unchanged."""
    _push(home, tmp_path)
    before = _tree(home / "namespaces")
    execution, rec = run_flow(home, write_flow(tmp_path, SEEDED))
    assert execution.state.current.value == "SUCCESS", rec.messages()
    assert any("without copying" in m for m in rec.messages("wd")), rec.messages("wd")
    assert _output(rec, "read") == ["one", "two", "from inputFiles", "1"]
    assert _output(rec, "after") == ["one", "changed", "new", "b-gone"]
    assert _tree(home / "namespaces") == before
    assert (home / "namespaces" / "tests.overlay" / "a.txt").read_text() == "one\n"
    collected = execution.task_run("wd").outputs["outputFiles"]
    artifacts = LocalArtifactStore(home / "artifacts")
    contents = {}
    for path, uri in collected.items():
        with artifacts.open(uri) as fh:
            contents[path] = fh.read()
    assert contents == {"a.txt": b"one\nchanged\n", "sub/new.txt": b"new\n"}
    assert _scratch_dirs(home) == []
    assert not our_resources(**{labels.EXECUTION: execution.id})


def test_a_mounted_version_stays_while_pushes_go_on(
    home: Path, tmp_path: Path, started: list[subprocess.Popen[str]]
) -> None:
    """A push during the run publishes a new version; the mounted one is neither changed nor
    pruned (even when long superseded), and the running workspace keeps seeing it."""
    _push(home, tmp_path)
    (mounted,) = list(_versions(home).iterdir())
    content = _tree(mounted)
    run = _start(home, write_flow(tmp_path, WAITING))
    started.append(run)
    container = (
        until(lambda: _started_marker(home), 120, "the run to start its task").read_text().strip()
    )

    _push(home, tmp_path, a="pushed during the run\n", name="src2")
    old = time.time() - 24 * 3600
    os.utime(mounted, (old, old))  # superseded a day ago: the next push would prune it
    _push(home, tmp_path, a="pushed again\n", name="src3")
    assert mounted.is_dir() and _tree(mounted) == content

    _go(container)
    out, _ = run.communicate(timeout=120)
    assert run.returncode == 0, out
    assert "changed" in out and "two" in out and "pushed" not in out
    assert _tree(mounted) == content
    assert _scratch_dirs(home) == []
    # No longer mounted: the next push prunes it as any superseded version.
    _push(home, tmp_path, a="last\n", name="src4")
    assert not mounted.exists()


def test_terminated_run_leaves_nothing(
    home: Path, tmp_path: Path, started: list[subprocess.Popen[str]]
) -> None:
    """SIGTERM mid-run: the container, the overlay volume and its scratch directory go."""
    _push(home, tmp_path)
    run = _start(home, write_flow(tmp_path, WAITING))
    started.append(run)
    until(lambda: _started_marker(home), 120, "the run to start its task")
    run.send_signal(signal.SIGTERM)
    out, _ = run.communicate(timeout=120)
    assert run.returncode != 0, out
    assert _scratch_dirs(home) == []
    assert not our_resources(**{labels.OWNER_PID: str(run.pid)})


@pytest.mark.serial  # orphans of its own: another run's sweep must not take them
def test_crash_leftovers_are_removed_by_gc(
    home: Path, tmp_path: Path, started: list[subprocess.Popen[str]]
) -> None:
    """SIGKILL mid-run leaves the volume and its upper layer; `executor gc` removes both."""
    _push(home, tmp_path)
    before = _tree(home / "namespaces" / "tests.overlay")
    run = _start(home, write_flow(tmp_path, WAITING))
    started.append(run)
    until(lambda: _started_marker(home), 120, "the run to start its task")
    run.send_signal(signal.SIGKILL)
    run.communicate(timeout=60)
    left = our_resources(**{labels.OWNER_PID: str(run.pid)})
    assert {r.kind for r in left} == {"container", "volume"}
    assert len(_scratch_dirs(home)) == 1

    result = cli(home, "gc")
    assert result.returncode == 0, result.stderr
    assert "removed overlay directory" in result.stdout, result.stdout
    assert not our_resources(**{labels.OWNER_PID: str(run.pid)})
    assert _scratch_dirs(home) == []
    assert _tree(home / "namespaces" / "tests.overlay") == before


def test_engine_refusing_the_mount_falls_back_to_the_plain_volume(
    home: Path, tmp_path: Path
) -> None:
    """A lower directory the engine cannot mount: the plain volume stays, nothing is left."""
    from executor.engine.api import ContainerOptions, WorkdirSpec
    from executor.engine.containers import ContainerWorkdir
    from executor.engine.docker.backend import DockerBackend
    from executor.settings import Settings

    engine = DockerBackend.from_settings(
        Settings.from_env({**os.environ, "EXECUTOR_HOME": str(home)})
    )
    image = engine.image_id("executor/busybox:latest")
    assert image is not None
    spec = WorkdirSpec(
        labels.ownership("overlay-fallback"), "/workspace", lambda: ContainerOptions(image)
    )
    workdir = ContainerWorkdir(engine, spec)
    workdir.open()
    plain = workdir.volume
    try:
        why = workdir.layer_over([tmp_path / "missing"], home / "overlays")
        assert why is not None and "could not mount" in why, why
        assert workdir.volume == plain and workdir.containers == []
        assert _scratch_dirs(home) == []
        assert [r.name for r in our_resources(**{labels.EXECUTION: "overlay-fallback"})] == [plain]
    finally:
        assert workdir.close() == []
    assert not our_resources(**{labels.EXECUTION: "overlay-fallback"})
