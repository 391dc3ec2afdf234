"""Plain console output of a run: one timestamped line per log line and state change."""

from __future__ import annotations

import sys
from typing import TextIO

from executor.run.execution import Execution, Level, LogLine, State, TaskRun

_LEVEL_RANK = {Level.TRACE: 0, Level.DEBUG: 1, Level.INFO: 2, Level.WARN: 3, Level.ERROR: 4}


class PlainConsole:
    """Prints task logs and state changes as ``HH:MM:SS.mmm task LEVEL text`` lines."""

    def __init__(self, out: TextIO | None = None, min_level: Level = Level.INFO,
                 quiet: bool = False) -> None:
        self.out = out or sys.stderr
        self.min_level = min_level
        self.quiet = quiet

    def _print(self, text: str) -> None:
        if not self.quiet:
            print(text, file=self.out, flush=True)

    def execution_changed(self, execution: Execution) -> None:
        pass

    def task_changed(self, execution: Execution, task_run: TaskRun) -> None:
        state = task_run.state.current
        if state in (State.CREATED,):
            return
        ts = task_run.state.history[-1][1].strftime("%H:%M:%S.%f")[:-3]
        extra = ""
        if state.terminal and task_run.state.duration is not None and state != State.SKIPPED:
            extra = f" in {task_run.state.duration:.2f}s"
        if task_run.reason and state in (State.FAILED, State.KILLED, State.SKIPPED, State.WARNING):
            extra += f" ({task_run.reason})"
        self._print(f"{ts} {task_run.task_id:<16} ── {state.value}{extra}")

    def log(self, line: LogLine) -> None:
        if _LEVEL_RANK[line.level] < _LEVEL_RANK[self.min_level]:
            return
        ts = line.timestamp.strftime("%H:%M:%S.%f")[:-3]
        task = line.task_id or "-"
        self._print(f"{ts} {task:<16} {line.level.value:<5} {line.message}")


def summary(execution: Execution) -> str:
    """The closing lines: final state, and each failed task with the end of its stderr."""
    lines = [f"execution {execution.id} {execution.state.current.value}"
             f" in {execution.state.duration or 0:.2f}s"]
    for run in execution.task_runs:
        if run.state.current in (State.FAILED, State.KILLED):
            lines.append(f"  {run.task_id}: {run.state.current.value}"
                         + (f" ({run.reason})" if run.reason else ""))
            lines.extend(f"    | {text}" for text in run.stderr_tail[-5:])
    return "\n".join(lines)
