"""What ``run --server`` shows, in the order it happened on the server.

Log lines come from the server's log stream, state changes from polls of the execution; the two
arrive at different moments (the stream may lag a poll by a second or two). Each becomes an event
stamped with the server's time and is held for a short while, so a line that arrives late still
goes before the state change that followed it; once the run ended, everything left is shown in
time order. Every state a task went through is shown (a poll may see RUNNING and SUCCESS at once).
"""

from __future__ import annotations

import heapq
import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime

from executor.model import Execution, LogLine, RunListener, State, StateHistory, TaskRun

HOLD_SECONDS = 2.5
"""How long an event waits for earlier ones still on their way (the log stream polls every 2 s
at most)."""


@dataclass(order=True)
class _Event:
    when: datetime
    seq: int
    arrived: float = field(compare=False)
    show: Callable[[], None] = field(compare=False)


class Timeline:
    """Feeds a view with the events of a remote execution, ordered by when they happened."""

    def __init__(
        self,
        view: RunListener,
        *,
        hold: float = HOLD_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.view = view
        self.hold = hold
        self.clock = clock
        self._events: list[_Event] = []
        self._seq = itertools.count()
        self._lines_seen: set[tuple[str, str | None, str]] = set()
        self._states_seen: dict[str, int] = {}  # task run (or execution) id -> states shown

    def _push(self, when: datetime, show: Callable[[], None]) -> None:
        heapq.heappush(self._events, _Event(when, next(self._seq), self.clock(), show))

    def line(self, line: LogLine) -> None:
        """A log line (from the stream, or from the stored log at the end: each shown once)."""
        key = (line.timestamp.isoformat(), line.task_run_id, line.message)
        if key in self._lines_seen:
            return
        self._lines_seen.add(key)
        self._push(line.timestamp, lambda: self.view.log(line))

    def snapshot(self, execution: Execution) -> None:
        """The execution as last read: each state entered since the previous snapshot."""
        for run in execution.task_runs:
            history = run.state.history
            for count in range(self._states_seen.get(run.id, 0) + 1, len(history) + 1):
                step = replace(run, state=_first(history, count))
                self._push(history[count - 1][1], _task_changed(self.view, execution, step))
            self._states_seen[run.id] = max(self._states_seen.get(run.id, 0), len(history))
        history = execution.state.history
        for count in range(self._states_seen.get(execution.id, 0) + 1, len(history) + 1):
            step_execution = replace(execution, state=_first(history, count))
            self._push(history[count - 1][1], _execution_changed(self.view, step_execution))
        self._states_seen[execution.id] = max(self._states_seen.get(execution.id, 0), len(history))

    def release(self, *, everything: bool = False) -> None:
        """Show the events that waited long enough (``everything``: all of them), oldest first."""
        now = self.clock()
        while self._events and (everything or now - self._events[0].arrived >= self.hold):
            heapq.heappop(self._events).show()


def _first(history: list[tuple[State, datetime]], count: int) -> StateHistory:
    """The state history as it was after its first ``count`` entries."""
    entries = list(history[:count])
    return StateHistory(entries[-1][0], entries)


def _task_changed(view: RunListener, execution: Execution, run: TaskRun) -> Callable[[], None]:
    return lambda: view.task_changed(execution, run)


def _execution_changed(view: RunListener, execution: Execution) -> Callable[[], None]:
    return lambda: view.execution_changed(execution)
