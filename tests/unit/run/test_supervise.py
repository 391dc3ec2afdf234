"""Supervising one exec: the deadline and a cancel hold whatever the task prints."""

from __future__ import annotations

import threading

from executor.engine.api import ExecResult, KillResult, Line, LineSink, Stream
from executor.model import State
from executor.run.cancel import CancelScope
from executor.run.supervise import supervise


class FloodExec:
    """An exec that prints without pause until it is killed (as `yes` does)."""

    def __init__(self) -> None:
        self.killed = threading.Event()
        self.batches = 0

    def stream(self, sink: LineSink) -> ExecResult:
        while not self.killed.is_set():
            sink([(Stream.STDOUT, "y")] * 64)
            self.batches += 1
        return ExecResult(137)

    def kill(self, grace_seconds: float) -> KillResult:
        self.killed.set()
        return KillResult()


def test_a_task_that_never_stops_printing_is_killed_at_its_deadline() -> None:
    """The deadline is checked between batches, not only when the task falls silent."""
    flood = FloodExec()
    seen: list[list[Line]] = []
    outcome = supervise(
        flood, seen.append, timeout=0.3, cancel=CancelScope(), kill_grace=0.1, name="flood"
    )
    assert outcome.timed_out and not outcome.cancelled
    assert flood.killed.is_set()
    assert outcome.kill is not None and outcome.kill.complete
    assert outcome.result.exit_code == 137
    assert len(seen) == flood.batches  # every batch printed before the kill was delivered


def test_a_cancel_from_another_thread_stops_a_printing_task() -> None:
    """Cancelling the scope (fail-fast, Ctrl-C) kills the exec even while it floods."""
    flood = FloodExec()
    parent = CancelScope()
    child = parent.child()
    threading.Timer(0.2, lambda: parent.cancel(State.FAILED, "a sibling failed")).start()
    outcome = supervise(
        flood, lambda lines: None, timeout=None, cancel=child, kill_grace=0.1, name="flood"
    )
    assert outcome.cancelled and not outcome.timed_out
    assert child.state == State.FAILED and child.reason == "a sibling failed"
