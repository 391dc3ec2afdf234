"""Kill means every process: escaped sessions, double forks, orphans and TERM-ignorers.

These drive the DockerBackend directly (a container on a volume, execs through the wrapper),
once on busybox (ash, busybox grep) and once on debian (dash, GNU grep).
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from executor.engine import labels
from executor.engine.api import ContainerSpec, ExecRequest, ExecResult, KillResult
from executor.engine.container_paths import WRAPPER
from executor.engine.docker.backend import DockerBackend
from executor.engine.docker.client import connect
from executor.engine.docker.exec import DockerExec
from tests.integration.helpers import until

pytestmark = pytest.mark.integration

IMAGES = ["executor/busybox:latest", "executor/debian:bookworm"]
# Lists "PID CMDLINE" of every live `sleep 31N`; the pattern is split so this script's own
# command line never matches it.
SLEEPERS = (
    'for p in /proc/[0-9]*; do c="$(tr "\\0" " " < "$p/cmdline" 2>/dev/null)"; '
    'case "$c" in "slee""p 31"[0-9]*) echo "${p#/proc/} $c" ;; esac; done'
)


@dataclass
class Box:
    engine: DockerBackend
    container: str


@pytest.fixture(scope="module", params=IMAGES)
def box(request: pytest.FixtureRequest) -> Iterator[Box]:
    """A running container of one image on a fresh volume; both removed afterwards."""
    engine = DockerBackend(connect(os.environ.get("DOCKER_HOST")))
    image = request.param
    if engine.image_id(image) is None:
        pytest.fail(f"{image} is missing: run `make images`")
    owned = labels.ownership(f"test-kill-{uuid.uuid4().hex[:8]}")
    volume = engine.create_volume(owned)
    try:
        container = engine.start_container(ContainerSpec(image, volume, "/workspace", owned))
        try:
            yield Box(engine, container)
        finally:
            engine.remove_container(container)
    finally:
        engine.remove_volume(volume)


def sleepers(box: Box, *commands: str) -> dict[int, str]:
    """The live ``sleep 31N`` processes in the container (those of ``commands``), by pid."""
    _, out = box.engine.run_root(box.container, ["/bin/sh", "-c", SLEEPERS])
    found = {}
    for line in out.splitlines():
        pid, _, cmd = line.partition(" ")
        if not commands or cmd.strip() in commands:
            found[int(pid)] = cmd.strip()
    return found


class Running:
    """A task exec streaming on a thread, as the runner drives it."""

    def __init__(self, box: Box, script: str, user: str | None = None) -> None:
        self.token = f"kill-{uuid.uuid4().hex[:12]}"
        handle = box.engine.exec(
            box.container, ExecRequest(("/bin/sh", "-c", script), self.token, user=user)
        )
        assert isinstance(handle, DockerExec)
        self.handle = handle
        self.lines: list[str] = []
        self.result: ExecResult | None = None
        self.started = time.monotonic()
        self.ended: float | None = None
        self._thread = threading.Thread(target=self._pump, daemon=True)
        self._thread.start()

    def _pump(self) -> None:
        self.result = self.handle.stream(lambda batch: self.lines.extend(t for _, t in batch))
        self.ended = time.monotonic()

    def wait(self, timeout: float = 30) -> ExecResult:
        self._thread.join(timeout)
        assert self.result is not None, f"the exec did not end in {timeout}s: {self.lines}"
        return self.result


def wait_for(box: Box, *commands: str, timeout: float = 15) -> dict[int, str]:
    """Poll until every one of ``commands`` runs in the container."""
    found: dict[int, str] = {}

    def all_running() -> dict[int, str] | None:
        nonlocal found
        found = sleepers(box, *commands)
        return found if set(commands) <= set(found.values()) else None

    return until(all_running, timeout, lambda: f"{commands} to run; running: {found}")


def test_kill_reaches_escaped_sessions_and_double_forks(box: Box) -> None:
    """`setsid sleep &` and a double-forked sleep die with the task; the kill says so."""
    task = Running(box, "setsid sleep 312 & (sh -c 'sleep 313 &' &); sleep 319; echo never")
    wait_for(box, "sleep 312", "sleep 313", "sleep 319")
    report = task.handle.kill(1)
    result = task.wait()
    assert report == KillResult()
    assert result.exit_code != 0 and "never" not in task.lines
    assert sleepers(box, "sleep 312", "sleep 313", "sleep 319") == {}


def test_background_child_dies_when_the_task_ends(box: Box) -> None:
    """A task that exits 0 leaving `sleep 314 &` behind ends promptly, and the sleep with it."""
    task = Running(box, "sleep 314 & echo started")
    result = task.wait()
    assert result.exit_code == 0 and result.error is None
    assert task.lines == ["started"]
    assert task.ended is not None and task.ended - task.started < 1.8  # Docker's IO grace: 2 s
    assert sleepers(box, "sleep 314") == {}


def test_term_ignored_is_killed_after_the_grace(box: Box) -> None:
    """A process that ignores TERM, in the session or out of it, is KILLed once grace ends."""
    task = Running(box, "trap '' TERM; (exec setsid sleep 316) & sleep 317")
    wait_for(box, "sleep 316", "sleep 317")
    asked = time.monotonic()
    report = task.handle.kill(1)
    took = time.monotonic() - asked
    result = task.wait()
    assert report == KillResult()
    assert 1.0 <= took < 8, f"kill took {took:.1f}s for a grace of 1s"
    assert result.exit_code == 137  # the leader ignored TERM too
    assert sleepers(box, "sleep 316", "sleep 317") == {}


def test_a_survivor_is_reported_not_hidden(box: Box) -> None:
    """A kill that cannot signal a process (another user's) names it and exits non-zero."""
    task = Running(box, "sleep 318")
    found = wait_for(box, "sleep 318")
    code, out = box.engine.run_as(
        box.container, ["/bin/sh", WRAPPER, "kill", task.token, "0"], "65534"
    )
    assert code == 1, out
    reported = {
        int(p) for ln in out.splitlines() if ln.startswith("survivors:") for p in ln[10:].split()
    }
    assert set(found) <= reported, out
    assert sleepers(box, "sleep 318") == found
    assert task.handle.kill(1) == KillResult()
    task.wait()
    assert sleepers(box, "sleep 318") == {}


def test_a_non_root_task_is_killed_through_its_cookie(box: Box) -> None:
    """Another user's task whose wrapper died: its escaped processes are still found and killed.

    Root cannot read another user's environment in a container, so the kill runs as the task's
    user; the wrapper is killed first so that its own clean-up cannot do the work.
    """
    task = Running(box, "(setsid sleep 315 &); sleep 311", user="65534")
    wait_for(box, "sleep 315", "sleep 311")
    box.engine.run_root(
        box.container,
        [
            "/bin/sh",
            "-c",
            f"read -r p _ < /.executor/runs/{task.token}/pid; "
            "set -- $(cat /proc/$p/stat); kill -KILL $4",
        ],
    )
    assert task.wait().exit_code == 137
    assert "sleep 315" in sleepers(box, "sleep 315").values()
    assert task.handle.kill(1) == KillResult()
    assert sleepers(box, "sleep 315", "sleep 311") == {}
