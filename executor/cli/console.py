"""Plain console output of a run: one timestamped line per log line and state change.

This is what a pipe, a file or CI gets; a terminal gets the live view (``executor.cli.live``).
The line formats here are shared with ``executor logs``.

Text a task wrote is shown through :func:`printable`: escape sequences and control characters
could move the cursor, clear the screen, retitle the window or hide what follows, so they are
taken out on display (the store keeps the text as written; ``executor logs --json`` shows it).
"""

from __future__ import annotations

import json
import re
import sys
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, TextIO

from executor.model import Execution, Level, LogBatch, LogLine, State, TaskRun

if TYPE_CHECKING:
    from executor.flow.model import Flow

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


VALUE_WIDTH = 30  # a loop value longer than this is cut with '…' where it labels a line
SUMMARY_RUNS = 10  # failed task runs the summary names one by one


def value_text(value: Any) -> str:
    """A loop value as it labels a line: the text, JSON for anything else, cut when long."""
    text = value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))
    text = " ".join(text.split())
    return text if len(text) <= VALUE_WIDTH else text[: VALUE_WIDTH - 1] + "…"


def run_name(task_id: str, values: Sequence[Any] = ()) -> str:
    """A task run as the tree and the summary name it: ``task`` or ``task [a, 2]``."""
    return f"{task_id} [{', '.join(map(value_text, values))}]" if values else task_id


def task_tag(task_id: str | None, values: Sequence[Any] = ()) -> str:
    """The task column of a log line: ``task``, or ``[task a, 2]`` for a run inside loops."""
    if task_id is None:
        return "-"
    return f"[{task_id} {', '.join(map(value_text, values))}]" if values else task_id


class RunValues:
    """The loop values a task run runs for: its own and its ancestors', outermost first.

    A loop's direct children carry the value; a task nested below one of them runs for it too,
    so its lines are tagged with it (``[task a]``, ``[task a, 2]`` in a loop in a loop).
    """

    def __init__(self) -> None:
        self._runs: dict[str, tuple[str | None, Any]] = {}  # id -> (parent id, own value)

    @classmethod
    def of_execution(cls, execution: Execution) -> RunValues:
        """The values of every task run of ``execution``."""
        values = cls()
        for run in execution.task_runs:
            values.remember(run)
        return values

    def remember(self, run: TaskRun) -> None:
        self._runs[run.id] = (run.parent_task_run_id, run.value)

    def path(self, run_id: str | None) -> list[Any]:
        """The values above and of run ``run_id``, outermost first (none for an unknown run)."""
        values: list[Any] = []
        seen: set[str] = set()
        while run_id is not None and run_id in self._runs and run_id not in seen:
            seen.add(run_id)
            run_id, value = self._runs[run_id]
            if value is not None:
                values.append(value)
        return values[::-1]


class ExecutionFocus:
    """Which execution a view shows: the flow's own, not the subflow executions it starts.

    Subflows run as executions of their own and report to the same listeners. The view's
    execution is the first with no parent (and, when the flow is known, of that flow); the
    others are only noted once, when they end.

    Args:
        flow: the flow the view was made for, if known.
    """

    def __init__(self, flow: Flow | None = None) -> None:
        self.flow_ref = (flow.namespace, flow.id) if flow is not None else None
        self.execution_id: str | None = None
        self._noted: set[str] = set()

    def accepts(self, execution: Execution) -> bool:
        """Whether ``execution`` is the one shown (adopting it when it is the first fit)."""
        if (
            self.execution_id is None
            and execution.parent_id is None
            and self.flow_ref in (None, (execution.namespace, execution.flow_id))
        ):
            self.execution_id = execution.id
        return execution.id == self.execution_id

    def accepts_line(self, line: LogLine) -> bool:
        """Whether a log line belongs to the shown execution (all do until it is known)."""
        return self.execution_id is None or line.execution_id == self.execution_id

    def note(self, execution: Execution) -> str | None:
        """The one line that says a subflow execution ended, once; ``None`` for anything else."""
        if execution.parent_id is None or execution.id == self.execution_id:
            return None
        if not execution.state.current.terminal or execution.id in self._noted:
            return None
        self._noted.add(execution.id)
        return (
            f"subflow {execution.namespace}.{execution.flow_id} execution {execution.id}: "
            f"{execution.state.current.value}"
        )


def clock(line: LogLine) -> str:
    """``HH:MM:SS.mmm`` of a line, in UTC like every timestamp the executor records."""
    t = line.timestamp  # not strftime: this runs once per line of a task that may print millions
    return f"{t.hour:02d}:{t.minute:02d}:{t.second:02d}.{t.microsecond // 1000:03d}"


def format_line(line: LogLine, *, date: bool = False, values: Sequence[Any] = ()) -> str:
    """One log line as ``[date] HH:MM:SS.mmm task LEVEL text``.

    Args:
        line: the log line.
        date: also show the date (``executor logs`` does; a live run does not).
        values: the loop values of the line's task run, shown as ``[task value]``.

    Returns:
        The formatted line.
    """
    stamp = line.timestamp.strftime("%Y-%m-%d ") + clock(line) if date else clock(line)
    tag = task_tag(line.task_id, values)
    return f"{stamp} {tag:<{TASK_WIDTH}} {line.level.value:<5} {printable(line.message)}"


def format_state(task_run: TaskRun, values: Sequence[Any] = ()) -> str:
    """A task's state change as ``HH:MM:SS.mmm task ── STATE in 1.23s (reason)``.

    Args:
        task_run: the task run that changed.
        values: the loop values it runs for, shown as ``[task value]``.

    Returns:
        The formatted line.
    """
    state = task_run.state.current
    ts = task_run.state.history[-1][1].strftime("%H:%M:%S.%f")[:-3]
    extra = ""
    if state.terminal and task_run.state.duration is not None and state != State.SKIPPED:
        extra = f" in {task_run.state.duration:.2f}s"
    if task_run.reason and state in (
        State.FAILED,
        State.KILLED,
        State.CANCELLED,
        State.SKIPPED,
        State.WARNING,
    ):
        extra += f" ({printable(task_run.reason)})"
    tag = task_tag(task_run.task_id, values)
    return f"{ts} {tag:<{TASK_WIDTH}} ── {state.value}{extra}"


class PlainConsole:
    """Prints task logs and state changes as ``HH:MM:SS.mmm task LEVEL text`` lines.

    Used as a context manager, lines are written in batches by a small thread at most
    ``flush_interval`` seconds after they arrive (a loud task is not slowed by one write per
    line); otherwise each line is written at once. Only the flow's own execution is shown; a
    subflow execution gets one line when it ends.

    Args:
        out: where lines go (default: stderr).
        min_level: lines below this level are not shown.
        quiet: show nothing (the caller prints the summary).
        flush_interval: the longest a line waits before it is written.
        flow: the flow being run (tells its execution from the subflows' ones).
    """

    def __init__(
        self,
        out: TextIO | None = None,
        min_level: Level = Level.INFO,
        quiet: bool = False,
        flush_interval: float = 0.1,
        flow: Flow | None = None,
    ) -> None:
        self.out = out or sys.stderr
        self.min_level = min_level
        self.quiet = quiet
        self.flush_interval = flush_interval
        self.focus = ExecutionFocus(flow)
        self._min_rank = LEVEL_RANK[min_level]
        self._values = RunValues()
        self._shown: dict[str, int] = {}  # task run id -> states printed (a change may be none)
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
        """Print one line when a subflow execution ends; the summary says how the run ended."""
        if self.focus.accepts(execution):
            return
        note = self.focus.note(execution)
        if note is not None:
            stamp = (execution.state.end or execution.state.start).strftime("%H:%M:%S.%f")[:-3]
            self._print(f"{stamp} {note}")

    def task_changed(self, execution: Execution, task_run: TaskRun) -> None:
        """Print a task's new state (not its creation)."""
        if not self.focus.accepts(execution):
            return
        self._values.remember(task_run)
        states = len(task_run.state.history)
        if task_run.state.current != State.CREATED and self._shown.get(task_run.id) != states:
            self._shown[task_run.id] = states
            self._print(format_state(task_run, self._values.path(task_run.id)))

    def log_batch(self, batch: LogBatch) -> None:
        """Print lines that arrived together: what they share formatted once, one lock."""
        if self.quiet or LEVEL_RANK[batch.level] < self._min_rank:
            return
        first = LogLine(
            batch.timestamp,
            batch.execution_id,
            batch.task_id,
            batch.task_run_id,
            batch.attempt,
            batch.stream,
            batch.level,
            "",
        )
        if not self.focus.accepts_line(first):
            return
        prefix = format_line(first, values=self._values.path(batch.task_run_id))
        texts = [prefix + printable(message) for message in batch.messages]
        with self._lock:
            self._pending.extend(texts)
            if self._flusher is None or len(self._pending) >= 2000:
                self._write_pending()

    def log_many(self, lines: list[LogLine]) -> None:
        """Print lines that arrived together (nothing at all when quiet)."""
        if not self.quiet:
            for line in lines:
                self.log(line)

    def log(self, line: LogLine) -> None:
        """Print one log line at or above the minimum level."""
        if self.quiet or LEVEL_RANK[line.level] < self._min_rank:
            return
        if not self.focus.accepts_line(line):
            return
        self._print(format_line(line, values=self._values.path(line.task_run_id)))


def summary(execution: Execution, tail: int = 5) -> str:
    """The closing lines: final state, each failed task run with the end of its stderr.

    A loop's task run is named with its value; past ``SUMMARY_RUNS`` failed runs the rest are
    counted. Cancelled and still-paused runs are listed on one line each.

    Args:
        execution: the execution that ended.
        tail: how many stderr lines to show per failed task run.

    Returns:
        The summary, several lines.
    """
    state = execution.state.current
    duration = execution.state.duration
    lines = [
        f"execution {execution.id} {state.value}"
        + (f" in {duration:.2f}s" if duration is not None else "")
    ]
    parents = {r.parent_task_run_id for r in execution.task_runs}
    values = RunValues.of_execution(execution)
    failed: list[TaskRun] = []
    by_state: dict[State, list[str]] = {State.CANCELLED: [], State.PAUSED: []}
    for run in execution.task_runs:
        current = run.state.current
        if current not in (State.FAILED, State.KILLED, State.CANCELLED, State.PAUSED):
            continue
        if run.id in parents and not run.stderr_tail and not run.reason:
            continue  # a flowable failed because a child did: the child says why
        if current in by_state:
            by_state[current].append(run_name(run.task_id, values.path(run.id)))
        else:
            failed.append(run)
    for run in failed[:SUMMARY_RUNS]:
        lines.append(
            f"  {run_name(run.task_id, values.path(run.id))}: {run.state.current.value}"
            + (f" ({printable(run.reason)})" if run.reason else "")
        )
        lines.extend(f"    | {printable(text)}" for text in run.stderr_tail[-tail:])
    if len(failed) > SUMMARY_RUNS:
        lines.append(f"  … and {len(failed) - SUMMARY_RUNS} more failed task run(s)")
    for shown, names in by_state.items():
        if names:
            listed = ", ".join(names[:SUMMARY_RUNS])
            more = f" and {len(names) - SUMMARY_RUNS} more" if len(names) > SUMMARY_RUNS else ""
            lines.append(f"  {shown.value.lower()}: {listed}{more}")
    if failed:
        lines.append(f"  all its lines: executor logs {execution.id} --task {failed[0].task_id}")
    return "\n".join(lines)
