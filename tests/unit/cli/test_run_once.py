"""`executor run` reads its flow once and installs its SIGTERM handler once, and records its run
through ``app.run_recorded`` like a server's slot and a worker (here on the fake engine)."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from executor import app
from executor.cli.main import main
from executor.flow import loader
from executor.model import State
from executor.run import signals
from executor.store.db import Store

FLOW = """\
id: once
namespace: tests.cli
tasks:
  - id: wd
    type: io.kestra.plugin.core.flow.WorkingDirectory
    tasks:
      - id: hello
        type: io.kestra.plugin.scripts.shell.Commands
        containerImage: executor/busybox:latest
        commands: ["echo hello"]
"""


def test_executor_run_loads_the_flow_once_and_installs_one_sigterm_handler(
    home: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """One read of the flow file (the view and the run share it), one SIGTERM handler for the
    whole run (installed and put back once), and the run is recorded to its end."""
    monkeypatch.setenv("EXECUTOR_ENGINE", "fake")
    flow = tmp_path / "once.yaml"
    flow.write_text(FLOW)
    reads: list[Path] = []
    real_read = Path.read_text

    def read_text(path: Path, *args: Any, **kwargs: Any) -> str:
        if path == flow:
            reads.append(path)
        return real_read(path, *args, **kwargs)

    installs: list[Any] = []
    real_install = signals.interrupts_as_keyboard

    @contextmanager
    def install() -> Iterator[None]:
        installs.append(signal.getsignal(signal.SIGTERM))
        with real_install():
            yield

    monkeypatch.setattr(Path, "read_text", read_text)
    for module in (signals, app):  # wherever it is taken from
        monkeypatch.setattr(module, "interrupts_as_keyboard", install)
    before = signal.getsignal(signal.SIGTERM)

    assert main(["run", "-q", str(flow)]) == 0, capsys.readouterr().err

    assert len(reads) == 1, f"the flow file was read {len(reads)} times"
    assert installs == [before], f"the SIGTERM handler was installed {len(installs)} times"
    assert signal.getsignal(signal.SIGTERM) is before
    with Store(home / "executor.db") as store:
        (stored,) = store.list_executions()
        lines = [row.line.message for row in store.logs(stored.id)]
    assert stored.state == State.SUCCESS and "hello" in lines


def test_a_bad_input_stops_executor_run_before_anything_is_recorded(
    home: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A run that cannot start (an unknown input) is exit code 2 and leaves no record; the
    recorded run raises it for the exit code instead of recording it FAILED."""
    monkeypatch.setenv("EXECUTOR_ENGINE", "fake")
    flow = tmp_path / "once.yaml"
    flow.write_text(FLOW)
    assert main(["run", str(flow), "-i", "nope=1"]) == 2
    assert "nope" in capsys.readouterr().err
    with Store(home / "executor.db") as store:
        assert store.list_executions() == []


def test_loader_and_app_share_one_load_flow() -> None:
    """The CLI's load and run_flow's load are one function (nothing reads the flow behind it)."""
    assert app.load_flow is loader.load_flow
