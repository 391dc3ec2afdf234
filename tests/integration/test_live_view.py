"""`executor run` in a terminal: drive it in a pseudo-terminal and read what the screen shows."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest

from executor.engine import labels
from executor.store.db import Store
from tests.integration.helpers import cli, our_resources, write_flow

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("executions_leave_nothing")]

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07")

FLOW = """
id: onscreen
namespace: tests.live
tasks:
  - id: wd
    type: io.kestra.plugin.core.flow.WorkingDirectory
    tasks:
      - id: counting
        type: io.kestra.plugin.scripts.shell.Commands
        containerImage: busybox
        commands:
          - for i in 1 2 3; do echo "count $i"; sleep 0.5; done
      - id: breaking
        type: io.kestra.plugin.scripts.shell.Commands
        containerImage: busybox
        commands:
          - echo "disk on fire" >&2
          - exit 9
      - id: unreached
        type: io.kestra.plugin.scripts.shell.Commands
        containerImage: busybox
        commands:
          - echo never
    finally:
      - id: tidy
        type: io.kestra.plugin.core.log.Log
        message: tidying up
"""


def _run_in_terminal(
    home: Path, *args: str, columns: int = 110, timeout: float = 120
) -> tuple[int, str, list[str]]:
    """Run ``executor ARGS`` with a pseudo-terminal as stdin/stdout/stderr.

    Returns the exit code, the raw screen bytes as text, and snapshots of the text
    read so far taken at each read.
    """
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, columns, 0, 0))
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "NO_COLOR", "TERM")}
    env.update(EXECUTOR_HOME=str(home), TERM="xterm-256color")
    proc = subprocess.Popen(
        [sys.executable, "-m", "executor", *args],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env=env,
        close_fds=True,
    )
    os.close(slave)
    raw = b""
    snapshots: list[str] = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(master, 65536)
                except OSError:  # EIO: the child closed the terminal
                    break
                if not chunk:
                    break
                raw += chunk
                snapshots.append(raw.decode("utf-8", errors="replace"))
            elif proc.poll() is not None:
                break
        code = proc.wait(timeout=30)
    finally:
        os.close(master)
        if proc.poll() is None:
            proc.kill()
    return code, raw.decode("utf-8", errors="replace"), snapshots


def test_live_view_draws_the_task_tree_and_scrolls_logs(home: Path, tmp_path: Path) -> None:
    """In a terminal the run shows a redrawn tree of tasks with states and the logs above it."""
    code, screen, snapshots = _run_in_terminal(home, "run", str(write_flow(tmp_path, FLOW)))
    assert code == 1
    text = ANSI.sub("", screen)
    assert "\x1b[" in screen, "a terminal gets colours and cursor movement"
    # the tree: every task, from 'waiting' through running (spinner) to its final state
    assert re.search(r"· unreached +waiting", text)
    assert re.search(r"[⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏] counting +RUNNING +\d+\.\ds", text)
    assert re.search(r"✔ counting +SUCCESS +\d+\.\ds", text)
    assert re.search(r"✘ breaking +FAILED +\d+\.\ds  exit code 9", text)
    assert re.search(r"✔ tidy +SUCCESS", text)
    assert re.search(r"tests\.live\.onscreen  \S{22}  FAILED", text)
    # the logs, with time and task id, printed above the tree (not inside it)
    assert re.search(r"\d\d:\d\d:\d\d\.\d{3} counting +count 1", text)
    assert re.search(r"\d\d:\d\d:\d\d\.\d{3} breaking +disk on fire", text)
    assert re.search(r"\d\d:\d\d:\d\d\.\d{3} tidy +tidying up", text)
    # it was live: 'count 1' was on screen while the task was still running
    early = next(ANSI.sub("", s) for s in snapshots if "count 1" in ANSI.sub("", s))
    assert "count 3" not in early
    # the summary names the failed task and its stderr, after the view has stopped
    tail = text[text.rindex("execution ") :]
    assert "breaking: FAILED (exit code 9)" in tail and "| disk on fire" in tail
    execution_id = re.search(r"execution (\S{22}) FAILED", tail).group(1)  # type: ignore[union-attr]
    assert not our_resources(**{labels.EXECUTION: execution_id})
    with Store(home / "executor.db") as store:
        assert [
            r.line.message
            for r in store.logs(execution_id, task_id="counting")
            if r.line.stream == "stdout"
        ] == ["count 1", "count 2", "count 3"]


def test_quiet_in_a_terminal_prints_only_the_summary(home: Path, tmp_path: Path) -> None:
    """--quiet draws no tree and no log lines, only the closing summary."""
    code, screen, _ = _run_in_terminal(home, "run", "--quiet", str(write_flow(tmp_path, FLOW)))
    assert code == 1
    text = ANSI.sub("", screen).replace("\r", "")
    lines = [line for line in text.splitlines() if line.strip()]
    assert lines[0].startswith("execution ") and " FAILED in " in lines[0]
    assert "count 1" not in text and "waiting" not in text and "RUNNING" not in text
    assert "  breaking: FAILED (exit code 9)" in lines


def test_pipe_gets_plain_timestamped_lines(home: Path, tmp_path: Path) -> None:
    """Without a terminal the run prints plain lines: no escape codes, one line per event."""
    result = cli(home, "run", str(write_flow(tmp_path, FLOW)))
    assert result.returncode == 1
    assert "\x1b[" not in result.stderr
    assert re.search(r"^\d\d:\d\d:\d\d\.\d{3} counting +INFO  count 2$", result.stderr, re.M)
    assert re.search(
        r"^\d\d:\d\d:\d\d\.\d{3} breaking +── FAILED in \d+\.\d\ds \(exit code 9\)$",
        result.stderr,
        re.M,
    )
