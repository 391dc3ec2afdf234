"""Plain console output of a run: one timestamped line per log line and state change.

This is what a pipe, a file or CI gets; a terminal gets the live view (``executor.cli.live``).
The line formats here are shared with ``executor logs``.

Text a task wrote is shown through :func:`printable`: escape sequences and control characters
could move the cursor, clear the screen, retitle the window or hide what follows, so they are
taken out on display (the store keeps the text as written; ``executor logs --json`` shows it).
"""

from __future__ import annotations

import re
import sys
import threading
from typing import TextIO

from executor.model import Execution, Level, LogLine, State, TaskRun

LEVEL_RANK = {Level.TRACE: 0, Level.DEBUG: 1, Level.INFO: 2, Level.WARN: 3, Level.ERROR: 4}
TASK_WIDTH = 16
_CONTROL = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]"  # CSI: colours, cursor moves, erasing
    r"|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?"  # OSC: window title, hyperlinks, clipboard
    r"|\x1b[PX^_][^\x1b]*(?:\x1b\\)?"  # DCS, SOS, PM, APC strings
    r"|\x1b[ -/]*[0-~]"  # any other escape sequence (charsets, reset, keypad modes)
    r"|\x9b[0-?]*[ -/]*[@-~]"  # CSI as one 8-bit control
    r"|[\x00-\x08\x0b-\x1f\x7f-\x9f]"  # any other C0/C1 control: all but tab and newline
)


def printable(text: str) -> str:
    """``text`` without terminal escape sequences and control characters (tab and newline stay).

    Args:
        text: what a task printed (or any text it chose, such as a failure reason).

    Returns:
        The text as a terminal can show it without being driven by it.
    """
    if text.isprintable():  # the usual line: one C-speed check, no regex
        return text
    return _CONTROL.sub("", text)


def clock(line: LogLine) -> str:
    """``HH:MM:SS.mmm`` of a line, in UTC like every timestamp the executor records."""
    t = line.timestamp  # not strftime: this runs once per line of a task that may print millions
    return f"{t.hour:02d}:{t.minute:02d}:{t.second:02d}.{t.microsecond // 1000:03d}"


def format_line(line: LogLine, *, date: bool = False) -> str:
    """One log line as ``[date] HH:MM:SS.mmm task LEVEL text``.

    Args:
        line: the log line.
        date: also show the date (``executor logs`` does; a live run does not).

    Returns:
        The formatted line.
    """
    stamp = line.timestamp.strftime("%Y-%m-%d ") + clock(line) if date else clock(line)
    message = printable(line.message)
    return f"{stamp} {line.task_id or '-':<{TASK_WIDTH}} {line.level.value:<5} {message}"


def format_state(task_run: TaskRun) -> str:
    """A task's state change as ``HH:MM:SS.mmm task ── STATE in 1.23s (reason)``."""
    state = task_run.state.current
    ts = task_run.state.history[-1][1].strftime("%H:%M:%S.%f")[:-3]
    extra = ""
    if state.terminal and task_run.state.duration is not None and state != State.SKIPPED:
        extra = f" in {task_run.state.duration:.2f}s"
    if task_run.reason and state in (State.FAILED, State.KILLED, State.SKIPPED, State.WARNING):
        extra += f" ({printable(task_run.reason)})"
    return f"{ts} {task_run.task_id:<{TASK_WIDTH}} ── {state.value}{extra}"


class PlainConsole:
    """Prints task logs and state changes as ``HH:MM:SS.mmm task LEVEL text`` lines.

    Used as a context manager, lines are written in batches by a small thread at most
    ``flush_interval`` seconds after they arrive (a loud task is not slowed by one write per
    line); otherwise each line is written at once.

    Args:
        out: where lines go (default: stderr).
        min_level: lines below this level are not shown.
        quiet: show nothing (the caller prints the summary).
        flush_interval: the longest a line waits before it is written.
    """

    def __init__(
        self,
        out: TextIO | None = None,
        min_level: Level = Level.INFO,
        quiet: bool = False,
        flush_interval: float = 0.1,
    ) -> None:
        self.out = out or sys.stderr
        self.min_level = min_level
        self.quiet = quiet
        self.flush_interval = flush_interval
        self._min_rank = LEVEL_RANK[min_level]
        self._pending: list[str] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._flusher: threading.Thread | None = None

    def __enter__(self) -> PlainConsole:
        if not self.quiet:
            self._flusher = threading.Thread(
                target=self._flush_loop, name="executor-console", daemon=True
            )
            self._flusher.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._flusher is not None:
            self._flusher.join()
            self._flusher = None
        self.flush()

    def flush(self) -> None:
        """Write every waiting line now."""
        with self._lock:
            self._write_pending()

    def _flush_loop(self) -> None:
        while not self._stop.wait(self.flush_interval):
            self.flush()

    def _write_pending(self) -> None:
        if self._pending:
            self.out.write("\n".join(self._pending) + "\n")
            self._pending.clear()
            self.out.flush()

    def _print(self, text: str) -> None:
        if self.quiet:
            return
        with self._lock:
            self._pending.append(text)
            if self._flusher is None or len(self._pending) >= 2000:
                self._write_pending()

    def execution_changed(self, execution: Execution) -> None:
        """Nothing to print: the summary says how the execution ended."""

    def task_changed(self, execution: Execution, task_run: TaskRun) -> None:
        """Print a task's new state (not its creation)."""
        if task_run.state.current != State.CREATED:
            self._print(format_state(task_run))

    def log(self, line: LogLine) -> None:
        """Print one log line at or above the minimum level."""
        if self.quiet or LEVEL_RANK[line.level] < self._min_rank:
            return
        self._print(format_line(line))


def summary(execution: Execution, tail: int = 5) -> str:
    """The closing lines: final state, and each failed task with the end of its stderr.

    Args:
        execution: the execution that ended.
        tail: how many stderr lines to show per failed task.

    Returns:
        The summary, several lines.
    """
    lines = [
        f"execution {execution.id} {execution.state.current.value}"
        f" in {execution.state.duration or 0:.2f}s"
    ]
    parents = {r.parent_task_run_id for r in execution.task_runs}
    named: list[TaskRun] = []
    for run in execution.task_runs:
        if run.state.current not in (State.FAILED, State.KILLED):
            continue
        if run.id in parents and not run.stderr_tail and not run.reason:
            continue  # a WorkingDirectory failed because a child did: the child says why
        named.append(run)
        lines.append(
            f"  {run.task_id}: {run.state.current.value}"
            + (f" ({printable(run.reason)})" if run.reason else "")
        )
        lines.extend(f"    | {printable(text)}" for text in run.stderr_tail[-tail:])
    if named:
        lines.append(f"  all its lines: executor logs {execution.id} --task {named[0].task_id}")
    return "\n".join(lines)
