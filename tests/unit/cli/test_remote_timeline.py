"""`run --server`'s timeline: events from the log stream and from polls, shown in the order they
happened on the server, each once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from executor.cli.remote_timeline import Timeline
from executor.model import Execution, Level, LogLine, State, StateHistory, TaskRun

T0 = datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC)


def at(ms: int) -> datetime:
    return T0 + timedelta(milliseconds=ms)


class Recorder:
    """A view that writes down what it is shown."""

    def __init__(self) -> None:
        self.shown: list[str] = []

    def log(self, line: LogLine) -> None:
        self.shown.append(f"log {line.message}")

    def task_changed(self, execution: Execution, task_run: TaskRun) -> None:
        self.shown.append(f"{task_run.task_id} {task_run.state.current.value}")

    def execution_changed(self, execution: Execution) -> None:
        self.shown.append(f"execution {execution.state.current.value}")

    def __getattr__(self, name: str) -> Any:
        raise AttributeError(name)


def line(ms: int, message: str, run: TaskRun | None = None) -> LogLine:
    return LogLine(
        at(ms),
        "e1",
        run.task_id if run else None,
        run.id if run else None,
        None,
        "stdout",
        Level.INFO,
        message,
    )


def history(*steps: tuple[State, int]) -> StateHistory:
    entries = [(state, at(ms)) for state, ms in steps]
    return StateHistory(entries[-1][0], entries)


def test_a_poll_that_saw_a_task_end_waits_for_its_late_lines() -> None:
    """A poll sees task 'a' RUNNING then SUCCESS at once, and the execution ended; its line
    arrives afterwards from the stream: it is shown between the two states, the end last."""
    view = Recorder()
    clock = [0.0]
    timeline = Timeline(view, hold=2.0, clock=lambda: clock[0])  # type: ignore[arg-type]
    run = TaskRun(
        "a", "Log", state=history((State.CREATED, 10), (State.RUNNING, 11), (State.SUCCESS, 30))
    )
    execution = Execution(
        "n",
        "f",
        id="e1",
        state=history((State.CREATED, 0), (State.RUNNING, 1), (State.SUCCESS, 40)),
    )
    execution.task_runs.append(run)
    timeline.line(line(2, "started"))
    timeline.snapshot(execution)
    timeline.release()  # nothing has waited long enough yet
    assert view.shown == []
    timeline.line(line(20, "hello from a", run))
    timeline.line(line(20, "hello from a", run))  # the stored log repeats it: shown once
    timeline.line(line(41, "ended"))
    clock[0] = 5.0
    timeline.release()
    assert view.shown == [
        "execution CREATED",
        "execution RUNNING",
        "log started",
        "a CREATED",
        "a RUNNING",
        "log hello from a",
        "a SUCCESS",
        "execution SUCCESS",
        "log ended",
    ]


def test_states_already_shown_are_not_shown_again() -> None:
    """Two polls of the same task: only the states the second one adds are shown."""
    view = Recorder()
    timeline = Timeline(view, hold=0.0)  # type: ignore[arg-type]
    run = TaskRun("a", "Log", state=history((State.CREATED, 10), (State.RUNNING, 11)))
    execution = Execution("n", "f", id="e1", state=history((State.RUNNING, 0)))
    execution.task_runs.append(run)
    timeline.snapshot(execution)
    timeline.release(everything=True)
    run.state = history((State.CREATED, 10), (State.RUNNING, 11), (State.FAILED, 50))
    timeline.snapshot(execution)
    timeline.release(everything=True)
    assert view.shown == ["execution RUNNING", "a CREATED", "a RUNNING", "a FAILED"]
