"""Running flows for integration tests: in-process through the library, or as a CLI process."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from executor.model import Execution, LogLine, TaskRun
from executor.settings import Settings

T = TypeVar("T")


def until(predicate: Callable[[], T | None], timeout: float, what: str | Callable[[], object]) -> T:
    """Poll ``predicate`` until it returns something truthy; that value. After ``timeout``
    seconds, fail naming ``what`` (called then, when it is a function: the state to show).

    The one poller of the integration tests: every wait is bounded and says what it waited for.
    A predicate may raise (a process it watches has died) to fail at once.
    """
    deadline = time.monotonic() + timeout
    while True:
        found = predicate()
        if found:
            return found
        if time.monotonic() >= deadline:
            shown = what() if callable(what) else what
            raise AssertionError(f"timed out after {timeout}s waiting for {shown}")
        time.sleep(0.2)


@dataclass
class Recorder:
    """A run listener that keeps everything it is told, for assertions."""

    lines: list[LogLine] = field(default_factory=list)
    task_events: list[tuple[str, str, float]] = field(default_factory=list)

    def execution_changed(self, execution: Execution) -> None:
        pass

    def task_changed(self, execution: Execution, task_run: TaskRun) -> None:
        import time

        self.task_events.append((task_run.task_id, task_run.state.current.value, time.time()))

    def log(self, line: LogLine) -> None:
        self.lines.append(line)

    def messages(self, task_id: str | None = None) -> list[str]:
        return [ln.message for ln in self.lines if task_id is None or ln.task_id == task_id]


def write_flow(tmp_path: Path, text: str, name: str = "flow.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def run_flow(
    home: Path, flow: Path, inputs: dict[str, str] | None = None
) -> tuple[Execution, Recorder]:
    """Run a flow in this process against the real engine."""
    from executor import app

    settings = Settings.from_env({**os.environ, "EXECUTOR_HOME": str(home)})
    recorder = Recorder()
    execution = app.run_flow(settings, flow, inputs or {}, [recorder])
    return execution, recorder


def cli(
    home: Path, *args: str, timeout: float = 300, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m executor ARGS`` as a separate process."""
    full_env = {**os.environ, "EXECUTOR_HOME": str(home), **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "executor", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=full_env,
        check=False,
    )


def states(execution: Execution) -> dict[str, str]:
    return {t.task_id: t.state.current.value for t in execution.task_runs}


def our_resources(**label_filter: Any) -> list[Any]:
    """Our labelled resources matching ``label_filter``.

    With no filter (the "nothing left" checks), only those made by this test process or by an
    executor that has ended: another executor still running on the same engine (a developer's
    run, a bench) is not this test's business, and a CLI process the test started counts once
    it has exited. A filter (an execution id, an owner pid) names a run: all of its resources.
    """
    from executor.engine import labels
    from executor.engine.docker.backend import DockerBackend
    from executor.engine.docker.client import connect

    engine = DockerBackend(connect(os.environ.get("DOCKER_HOST")))
    found = engine.list_resources({labels.MANAGED: "true", **label_filter})
    if label_filter:
        return found
    return [
        res
        for res in found
        if res.labels.get(labels.OWNER_PID) == str(os.getpid()) or labels.owner_is_gone(res.labels)
    ]
