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

from executor.cli.console import (
    LEVEL_RANK,
    TASK_WIDTH,
    ExecutionFocus,
    PlainConsole,
    RunValues,
    clock,
    printable,
    run_name,
    task_tag,
)
from executor.flow.model import (
    DagTask,
    EachParallelTask,
    EachSequentialTask,
    Flow,
    ForEachTask,
    Task,
)
from executor.model import Execution, Level, LogLine, RunListener, State, TaskRun

STATE_STYLE = {
    State.QUEUED: "dim",
    State.CREATED: "dim",
    State.RESTARTED: "cyan",
    State.RUNNING: "cyan",
    State.RETRYING: "yellow",
    State.SUCCESS: "green",
    State.WARNING: "yellow",
    State.FAILED: "bold red",
    State.KILLED: "magenta",
    State.SKIPPED: "dim",
    State.PAUSED: "blue",
    State.CANCELLED: "magenta",
}
STATE_ICON = {
    State.SUCCESS: "✔",
    State.WARNING: "!",
    State.FAILED: "✘",
    State.KILLED: "✘",
    State.SKIPPED: "↷",
    State.CREATED: "·",
    State.QUEUED: "·",
    State.RESTARTED: "↻",
    State.PAUSED: "‖",
    State.CANCELLED: "⊘",
}
LINE_STYLE = {Level.ERROR: "red", Level.WARN: "yellow", Level.DEBUG: "dim", Level.TRACE: "dim"}
SHOWN_REASONS = (
    State.FAILED,
    State.KILLED,
    State.CANCELLED,
    State.WARNING,
    State.SKIPPED,
    State.RETRYING,
    State.PAUSED,
)
LOOP_TYPES = (ForEachTask, EachSequentialTask, EachParallelTask)


@dataclass
class _Node:
    """A task of the flow as drawn: its id, its sections of children, what it waits for (Dag)."""

    task_id: str
    sections: list[_Section] = field(default_factory=list)
    after: tuple[str, ...] = ()


@dataclass
class _Section:
    """A list of tasks under a title ("on errors", "then"...); ``per_value``: a loop's body."""

    title: str | None
    nodes: list[_Node]
    per_value: bool = False


@dataclass(frozen=True)
class _Status:
    """What the view knows of a task run, copied when it changes (the runner mutates its own)."""

    run_id: str
    task_id: str
    parent_id: str | None
    value: Any
    state: State
    started: datetime | None
    ended: datetime | None
    reason: str | None
    attempts: int


def _title(key: str) -> str | None:
    if key.startswith("cases."):
        return f"case {key.removeprefix('cases.')}"
    return {"tasks": None, "errors": "on errors"}.get(key, key)


def _node(task: Task, after: tuple[str, ...] = ()) -> _Node:
    waits = {n.task.id: tuple(n.dependsOn) for n in task.tasks} if isinstance(task, DagTask) else {}
    loop = isinstance(task, LOOP_TYPES)
    node = _Node(task.id, after=after)
    for key, tasks in task.children():
        if tasks:
            nodes = [_node(child, waits.get(child.id, ())) for child in tasks]
            node.sections.append(_Section(_title(key), nodes, per_value=loop and key == "tasks"))
    return node


def _roots(flow: Flow) -> list[_Section]:
    lists = (("tasks", flow.tasks), ("errors", flow.errors), ("finally", flow.finally_))
    return [_Section(_title(key), [_node(t) for t in tasks]) for key, tasks in lists if tasks]


def _all_ids(sections: list[_Section]) -> list[str]:
    return [
        task_id
        for section in sections
        for node in section.nodes
        for task_id in (node.task_id, *_all_ids(node.sections))
    ]


def _elapsed(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}m{secs:02d}s" if minutes < 60 else f"{minutes // 60}h{minutes % 60:02d}m"


def _status(run: TaskRun) -> _Status:
    started = next((t for s, t in run.state.history if s == State.RUNNING), None)
    return _Status(
        run.id,
        run.task_id,
        run.parent_task_run_id,
        run.value,
        run.state.current,
        started,
        run.state.end,
        run.reason,
        len(run.attempts),
    )


def _capped(runs: list[_Status], limit: int) -> tuple[list[_Status], str | None]:
    """The runs of one task worth a line (running, failed, the last done) and a note on the rest."""
    if len(runs) <= limit:
        return runs, None
    active = [r for r in runs if not r.state.terminal]
    failed = [r for r in runs if r.state.failed]
    done = [r for r in runs if r.state.terminal and not r.state.failed]
    keep = active[: max(limit // 2, 1)] + failed[: max(limit // 4, 1)]
    keep += done[len(done) - max(limit - len(keep), 1) :] if done else []
    kept = {r.run_id for r in keep}
    hidden = [r for r in runs if r.run_id not in kept]
    counts = {
        "done": sum(1 for r in hidden if r.state.terminal and not r.state.failed),
        "running": sum(1 for r in hidden if not r.state.terminal),
        "failed": sum(1 for r in hidden if r.state.failed),
    }
    if counts["done"] == len(hidden):
        note = f"… {len(hidden)} more done"
    else:
        note = (
            f"… {len(hidden)} more (" + ", ".join(f"{n} {k}" for k, n in counts.items() if n) + ")"
        )
    return [r for r in runs if r.run_id in kept], note


class LiveView:
    """A run listener that draws the flow's tasks live in a terminal.

    The tree is the flow's structure with its task runs in it: a task that has not run yet is
    one waiting line, a loop's task one line per value (the running, the failed and the last
    done ones past ``max_runs_per_task``), each with the run's own children below it. Only the
    flow's own execution is drawn; a subflow execution gets one line when it ends.

    Args:
        flow: the flow being run (its tasks are drawn before they start).
        console: the rich console to draw on (default: stderr).
        min_level: log lines below this level are not shown.
        refresh_per_second: how often lines are printed and the tree redrawn.
        max_buffered_lines: lines kept between two redraws; older ones are counted, not shown.
        max_runs_per_task: lines drawn for the runs of one task under one parent (a loop's).

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
        max_runs_per_task: int = 10,
    ) -> None:
        self.flow = flow
        self.console = console or Console(stderr=True)
        self.min_rank = LEVEL_RANK[min_level]
        self.interval = 1.0 / refresh_per_second
        self.max_runs = max_runs_per_task
        self.roots = _roots(flow)
        self.id_width = max(TASK_WIDTH, *(len(t) for t in _all_ids(self.roots)))
        self.focus = ExecutionFocus(flow)
        self._lock = threading.Lock()
        self._statuses: dict[str, _Status] = {}
        self._children: dict[str | None, list[str]] = {}  # run ids by parent run id, in order
        self._values = RunValues()  # what tags a log line: the values its run runs for
        self._execution: tuple[str, State, datetime, datetime | None] | None = None
        self._lines: deque[LogLine | str] = deque(maxlen=max_buffered_lines)  # str: a note
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
            tags = [
                task_tag(line.task_id, self._values.path(line.task_run_id))
                if isinstance(line, LogLine)
                else line
                for line in lines
            ]
        if not lines and not hidden:
            return
        text = Text()
        if hidden:
            text.append(
                f"… {hidden} line(s) not shown here (`executor logs` has them all)\n",
                style="dim italic",
            )
        for line, tag in zip(lines, tags, strict=True):
            if isinstance(line, str):
                text.append(line + "\n", style="dim italic")
                continue
            text.append(clock(line), style="dim")
            text.append(f" {tag:<{self.id_width}} ", style="cyan")
            text.append(printable(line.message), style=LINE_STYLE.get(line.level, ""))
            text.append("\n")
        text.rstrip()
        self.console.print(text, highlight=False, markup=False, emoji=False, soft_wrap=True)

    # ----- RunListener

    def execution_changed(self, execution: Execution) -> None:
        """Remember the execution's state for the tree's root; note a subflow's end."""
        if not self.focus.accepts(execution):
            note = self.focus.note(execution)
            if note is not None:
                with self._lock:
                    self._lines.append(note)
            return
        with self._lock:
            self._remember(execution)

    def _remember(self, execution: Execution) -> None:
        state = execution.state
        self._execution = (execution.id, state.current, state.start, state.end)

    def task_changed(self, execution: Execution, task_run: TaskRun) -> None:
        """Remember a task run's new state (drawn at the next tick)."""
        if not self.focus.accepts(execution):
            return
        status = _status(task_run)
        with self._lock:
            if task_run.id not in self._statuses:
                self._children.setdefault(task_run.parent_task_run_id, []).append(task_run.id)
                self._values.remember(task_run)
            self._statuses[task_run.id] = status
            if self._execution is None:
                self._remember(execution)

    def log(self, line: LogLine) -> None:
        """Buffer one log line for the next tick (the oldest is dropped when it is full)."""
        if LEVEL_RANK[line.level] < self.min_rank or not self.focus.accepts_line(line):
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
            children = {parent: list(ids) for parent, ids in self._children.items()}
            execution = self._execution
        title = Text(f"{self.flow.namespace}.{self.flow.id}", style="bold")
        ended = False
        if execution is not None:
            exec_id, state, start, end = execution
            ended = state.terminal
            title.append(f"  {exec_id}", style="dim")
            title.append(f"  {state.value}", style=STATE_STYLE[state])
            title.append(f"  {_elapsed(((end or now) - start).total_seconds())}", style="dim")
        tree = Tree(title, guide_style="dim")
        drawing = _Drawing(statuses, children, now, self.id_width, self.max_runs, self._spinners)
        drawing.sections(tree, self.roots, None, ended, depth=1)
        self._spinners = drawing.spinners  # those of runs no longer running are let go
        return tree


_NO_RUN = "\0no run"  # the parent of a task whose parent has not run: nothing ran below it


class _Drawing:
    """One frame of the tree: the flow's structure merged with a snapshot of the task runs."""

    def __init__(
        self,
        statuses: dict[str, _Status],
        children: dict[str | None, list[str]],
        now: datetime,
        id_width: int,
        max_runs: int,
        spinners: dict[str, Spinner],
    ) -> None:
        self.now = now
        self.id_width = id_width
        self.max_runs = max_runs
        self.previous_spinners = spinners
        self.children: dict[str | None, list[_Status]] = {}
        for parent, ids in children.items():
            # a run whose parent the view never saw is drawn at the top rather than lost
            key = parent if parent is None or parent in statuses else None
            self.children.setdefault(key, []).extend(statuses[i] for i in ids)
        self.spinners: dict[str, Spinner] = {}

    def sections(
        self, tree: Tree, sections: list[_Section], parent: str | None, ended: bool, depth: int
    ) -> None:
        """Draw ``sections`` below ``tree``: the runs under ``parent`` where there are some."""
        by_task: dict[str, list[_Status]] = {}
        for status in self.children.get(parent, []) if parent != _NO_RUN else []:
            by_task.setdefault(status.task_id, []).append(status)
        for section in sections:
            holder, inner = tree, depth
            if section.title is not None:
                holder, inner = tree.add(Text(section.title, style="dim italic")), depth + 1
            for node in section.nodes:
                runs = by_task.pop(node.task_id, [])
                if not runs:
                    line = holder.add(self.pending(node, ended, inner))
                    if not (section.per_value and parent != _NO_RUN):
                        self.sections(line, node.sections, _NO_RUN, ended, inner + 1)
                    continue
                shown, note = _capped(runs, self.max_runs)
                for run in shown:
                    line = holder.add(self.label(run, inner, node.after))
                    self.sections(line, node.sections, run.run_id, run.state.terminal, inner + 1)
                if note is not None:
                    holder.add(Text(note, style="dim italic"))
        for runs in by_task.values():  # runs the flow's structure does not place
            for run in runs:
                line = tree.add(self.label(run, depth, ()))
                self.sections(line, [], run.run_id, run.state.terminal, depth + 1)

    def _width(self, name: str, depth: int) -> int:
        return max(len(name), self.id_width + 2 - 4 * depth)

    def pending(self, node: _Node, ended: bool, depth: int) -> RenderableType:
        text = Text("· ", style="dim")
        text.append(f"{node.task_id:<{self._width(node.task_id, depth)}} ")
        text.append("not run" if ended else "waiting", style="dim")
        if node.after:
            text.append(f"  after {', '.join(node.after)}", style="dim")
        return text

    def label(self, status: _Status, depth: int, after: tuple[str, ...]) -> RenderableType:
        name = run_name(status.task_id, () if status.value is None else (status.value,))
        text = Text(f"{name:<{self._width(name, depth)}} ")
        state = status.state
        text.append(f"{state.value:<8}", style=STATE_STYLE[state])
        if status.started is not None and state != State.SKIPPED:
            end = status.ended if state.terminal and status.ended else self.now
            text.append(f" {_elapsed((end - status.started).total_seconds()):>7}", style="dim")
        if status.attempts > 1:
            text.append(f"  attempt {status.attempts}", style="yellow")
        if status.reason and state in SHOWN_REASONS:
            text.append(f"  {printable(status.reason)}", style=STATE_STYLE[state])
        if after:
            text.append(f"  after {', '.join(after)}", style="dim")
        if state in (State.RUNNING, State.RETRYING):
            spinner = self.previous_spinners.get(status.run_id) or Spinner("dots", style="cyan")
            spinner.update(text=text)
            self.spinners[status.run_id] = spinner
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
    return PlainConsole(out, min_level=min_level, quiet=quiet, flow=flow)
