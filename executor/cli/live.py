"""The live view of ``executor run`` in a terminal: the task tree below, task logs scrolling above.

The runner calls the listener on its main thread, sometimes a million times a second-ish, so the
listener only records: a task's new state in a small table, a log line in a bounded buffer. A
ticker thread, a few times a second, prints the buffered lines above the tree in one write and
redraws the tree once (spinners and elapsed times move even when no line arrives). A task that
prints faster than a terminal can show gets its lines thinned on screen, with a note saying how
many were not shown; the store keeps every one (``executor logs ID``).
"""

from __future__ import annotations

import os
import sys
import threading
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Protocol, TextIO

from rich.console import Console, RenderableType
from rich.live import Live
from rich.spinner import Spinner
from rich.text import Text
from rich.tree import Tree

from executor.cli.console import LEVEL_RANK, TASK_WIDTH, PlainConsole, clock, printable
from executor.flow.model import Flow, WorkingDirectoryTask
from executor.model import Execution, Level, LogLine, RunListener, State, TaskRun

STATE_STYLE = {
    State.CREATED: "dim",
    State.RUNNING: "cyan",
    State.RETRYING: "yellow",
    State.SUCCESS: "green",
    State.WARNING: "yellow",
    State.FAILED: "bold red",
    State.KILLED: "magenta",
    State.SKIPPED: "dim",
}
STATE_ICON = {
    State.SUCCESS: "✔",
    State.WARNING: "!",
    State.FAILED: "✘",
    State.KILLED: "✘",
    State.SKIPPED: "↷",
    State.CREATED: "·",
}
LINE_STYLE = {Level.ERROR: "red", Level.WARN: "yellow", Level.DEBUG: "dim", Level.TRACE: "dim"}


@dataclass
class _Node:
    """A task of the flow as drawn: its id and its sections of children."""

    task_id: str
    sections: list[tuple[str | None, list[_Node]]] = field(default_factory=list)


@dataclass(frozen=True)
class _Status:
    """What the view knows of a task run, copied when it changes (the runner mutates its own)."""

    state: State
    started: datetime | None
    ended: datetime | None
    reason: str | None
    attempts: int


def _nodes(tasks: list[Any]) -> list[_Node]:
    nodes = []
    for task in tasks:
        node = _Node(task.id)
        if isinstance(task, WorkingDirectoryTask):
            node.sections = _sections(task.tasks, task.errors, task.finally_)
        nodes.append(node)
    return nodes


def _sections(
    tasks: list[Any], errors: list[Any], finally_: list[Any]
) -> list[tuple[str | None, list[_Node]]]:
    sections: list[tuple[str | None, list[_Node]]] = [(None, _nodes(tasks))]
    if errors:
        sections.append(("on errors", _nodes(errors)))
    if finally_:
        sections.append(("finally", _nodes(finally_)))
    return sections


def _elapsed(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}m{secs:02d}s" if minutes < 60 else f"{minutes // 60}h{minutes % 60:02d}m"


def _status(run: TaskRun) -> _Status:
    started = next((t for s, t in run.state.history if s == State.RUNNING), None)
    return _Status(run.state.current, started, run.state.end, run.reason, len(run.attempts))


class LiveView:
    """A run listener that draws the flow's tasks live in a terminal.

    Args:
        flow: the flow being run (its tasks are drawn before they start).
        console: the rich console to draw on (default: stderr).
        min_level: log lines below this level are not shown.
        refresh_per_second: how often lines are printed and the tree redrawn.
        max_buffered_lines: lines kept between two redraws; older ones are counted, not shown.

    Use it as a context manager around the run.
    """

    def __init__(
        self,
        flow: Flow,
        *,
        console: Console | None = None,
        min_level: Level = Level.INFO,
        refresh_per_second: float = 8.0,
        max_buffered_lines: int = 500,
    ) -> None:
        self.flow = flow
        self.console = console or Console(stderr=True)
        self.min_rank = LEVEL_RANK[min_level]
        self.interval = 1.0 / refresh_per_second
        self.roots = _sections(list(flow.tasks), list(flow.errors), list(flow.finally_))
        self._known = set(self._all_ids(self.roots))
        self.id_width = max(TASK_WIDTH, *(len(t) for t in self._known))
        self._lock = threading.Lock()
        self._statuses: dict[str, _Status] = {}
        self._extra: list[str] = []  # task runs the flow did not announce (kept, drawn last)
        self._execution: tuple[str, State, datetime, datetime | None] | None = None
        self._lines: deque[LogLine] = deque(maxlen=max_buffered_lines)
        self._hidden = 0
        self._spinners: dict[str, Spinner] = {}
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None
        self._live = Live(
            self,
            console=self.console,
            auto_refresh=False,
            transient=False,
            redirect_stdout=False,
            redirect_stderr=True,
        )

    @staticmethod
    def _all_ids(sections: list[tuple[str | None, list[_Node]]]) -> list[str]:
        ids: list[str] = []
        for _, nodes in sections:
            for node in nodes:
                ids.append(node.task_id)
                ids.extend(LiveView._all_ids(node.sections))
        return ids

    # ----- lifecycle

    def __enter__(self) -> LiveView:
        self._live.start(refresh=True)
        self._ticker = threading.Thread(target=self._tick, name="executor-live", daemon=True)
        self._ticker.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        if self._ticker is not None:
            self._ticker.join()
        self._flush()
        self._live.refresh()
        self._live.stop()

    def _tick(self) -> None:
        while not self._stop.wait(self.interval):
            self._flush()
            self._live.refresh()

    def _flush(self) -> None:
        """Print the waiting lines above the tree, in one write."""
        with self._lock:
            lines = list(self._lines)
            self._lines.clear()
            hidden, self._hidden = self._hidden, 0
        if not lines and not hidden:
            return
        text = Text()
        if hidden:
            text.append(
                f"… {hidden} line(s) not shown here (`executor logs` has them all)\n",
                style="dim italic",
            )
        for line in lines:
            style = LINE_STYLE.get(line.level, "")
            text.append(clock(line), style="dim")
            text.append(f" {line.task_id or '-':<{self.id_width}} ", style="cyan")
            text.append(printable(line.message), style=style)
            text.append("\n")
        text.rstrip()
        self.console.print(text, highlight=False, markup=False, emoji=False, soft_wrap=True)

    # ----- RunListener

    def execution_changed(self, execution: Execution) -> None:
        """Remember the execution's state for the tree's root."""
        with self._lock:
            self._execution = (
                execution.id,
                execution.state.current,
                execution.state.start,
                execution.state.end,
            )

    def task_changed(self, execution: Execution, task_run: TaskRun) -> None:
        """Remember a task's new state (drawn at the next tick)."""
        status = _status(task_run)
        with self._lock:
            if task_run.task_id not in self._statuses and task_run.task_id not in self._known:
                self._extra.append(task_run.task_id)
            self._statuses[task_run.task_id] = status
            if self._execution is None:
                self._execution = (
                    execution.id,
                    execution.state.current,
                    execution.state.start,
                    execution.state.end,
                )

    def log(self, line: LogLine) -> None:
        """Buffer one log line for the next tick (the oldest is dropped when it is full)."""
        if LEVEL_RANK[line.level] < self.min_rank:
            return
        with self._lock:
            if len(self._lines) == self._lines.maxlen:
                self._hidden += 1
            self._lines.append(line)

    # ----- drawing

    def __rich__(self) -> RenderableType:
        now = datetime.now(UTC)
        with self._lock:
            statuses = dict(self._statuses)
            execution = self._execution
            extra = list(self._extra)
        title = Text(f"{self.flow.namespace}.{self.flow.id}", style="bold")
        if execution is not None:
            exec_id, state, start, end = execution
            title.append(f"  {exec_id}", style="dim")
            title.append(f"  {state.value}", style=STATE_STYLE[state])
            title.append(f"  {_elapsed(((end or now) - start).total_seconds())}", style="dim")
        tree = Tree(title, guide_style="dim")
        self._add_sections(tree, self.roots, statuses, now, depth=1)
        for task_id in extra:
            tree.add(self._label(task_id, statuses.get(task_id), now, depth=1))
        return tree

    def _add_sections(
        self,
        tree: Tree,
        sections: list[tuple[str | None, list[_Node]]],
        statuses: dict[str, _Status],
        now: datetime,
        depth: int,
    ) -> None:
        for title, nodes in sections:
            parent = tree
            if title is not None:
                parent = tree.add(Text(title, style="dim italic"))
            extra_depth = 1 if title is not None else 0
            for node in nodes:
                branch = parent.add(
                    self._label(node.task_id, statuses.get(node.task_id), now, depth + extra_depth)
                )
                self._add_sections(branch, node.sections, statuses, now, depth + extra_depth + 1)

    def _label(
        self, task_id: str, status: _Status | None, now: datetime, depth: int
    ) -> RenderableType:
        width = max(len(task_id), self.id_width + 2 - 4 * depth)
        text = Text(f"{task_id:<{width}} ")
        if status is None:
            text.append("waiting", style="dim")
            return Text("· ", style="dim") + text
        state = status.state
        text.append(f"{state.value:<8}", style=STATE_STYLE[state])
        if status.started is not None and state != State.SKIPPED:
            end = status.ended if state.terminal and status.ended else now
            text.append(f" {_elapsed((end - status.started).total_seconds()):>7}", style="dim")
        if status.attempts > 1:
            text.append(f"  attempt {status.attempts}", style="yellow")
        if status.reason and state in (
            State.FAILED,
            State.KILLED,
            State.WARNING,
            State.SKIPPED,
            State.RETRYING,
        ):
            text.append(f"  {printable(status.reason)}", style=STATE_STYLE[state])
        if state in (State.RUNNING, State.RETRYING):
            spinner = self._spinners.setdefault(task_id, Spinner("dots", style="cyan"))
            spinner.update(text=text)
            return spinner
        return Text(f"{STATE_ICON.get(state, '·')} ", style=STATE_STYLE[state]) + text


class View(RunListener, Protocol):
    """A run listener that draws the run, used as a context manager around it."""

    def __enter__(self) -> Any: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...


def wants_live_view(stream: TextIO, env: dict[str, str] | None = None) -> bool:
    """Whether ``stream`` is a terminal a live view can draw on (not a pipe, a dumb one, or CI)."""
    env = dict(os.environ) if env is None else env
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty()) and env.get("TERM", "") != "dumb" and not env.get("CI")


def make_view(
    flow: Flow, *, min_level: Level = Level.INFO, quiet: bool = False, stream: TextIO | None = None
) -> View:
    """The view of a run: live in a terminal, plain lines elsewhere, nothing when quiet.

    Args:
        flow: the flow about to run.
        min_level: log lines below this level are not shown.
        quiet: show nothing while it runs (the caller prints the summary).
        stream: where the view draws (default: stderr).

    Returns:
        A listener to pass to the runner and to use as a context manager around the run.
    """
    out = stream or sys.stderr
    if not quiet and wants_live_view(out):
        return LiveView(flow, console=Console(file=out), min_level=min_level)
    return PlainConsole(out, min_level=min_level, quiet=quiet)
