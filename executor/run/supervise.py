"""One exec watched from start to end: its lines delivered, its deadline and cancel enforced.

The engine stream is read on a thread of its own into a bounded queue (a flooding task waits on
the engine, the executor's memory stays flat); the calling thread delivers the lines and checks
the deadline and the cancel scope between batches, so neither a silent task nor one that never
stops printing can outlive its timeout.
"""

from __future__ import annotations

import contextlib
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from executor.engine.api import Exec, ExecResult, KillResult, Line
from executor.errors import EngineError, ExecutorError
from executor.run.cancel import CancelScope

_DONE = object()
_TICK = 0.25


@dataclass(frozen=True)
class ExecOutcome:
    """How one exec ended as seen from the host."""

    result: ExecResult
    timed_out: bool
    cancelled: bool
    duration: float
    kill: KillResult | None = None


def supervise(
    handle: Exec,
    on_lines: Callable[[list[Line]], None],
    *,
    timeout: float | None,
    cancel: CancelScope,
    kill_grace: float,
    name: str,
) -> ExecOutcome:
    """Stream ``handle`` to its end; kill it at ``timeout``, on cancel, or on Ctrl-C."""
    started = time.monotonic()
    lines: queue.Queue[object] = queue.Queue(maxsize=32)  # batches of one read (<= 256 KiB) each
    box: list[ExecResult | BaseException] = []

    def pump() -> None:
        try:
            box.append(handle.stream(lines.put))
        except BaseException as exc:
            box.append(exc)
        finally:
            lines.put(_DONE)

    reader = threading.Thread(target=pump, name=f"exec-{name}", daemon=True)
    reader.start()
    deadline = started + timeout if timeout else None
    timed_out = cancelled = killed = False
    kills: list[KillResult] = []
    try:
        while True:
            try:
                item = lines.get(timeout=_TICK)
            except queue.Empty:
                item = None
            if item is _DONE:
                break
            if item is not None:
                on_lines(item)  # type: ignore[arg-type]
            if killed:
                continue
            if deadline is not None and time.monotonic() >= deadline:
                timed_out = killed = True
            elif cancel.cancelled:
                cancelled = killed = True
            if killed:
                _kill_aside(handle, kill_grace, name, kills)
    except BaseException:
        with contextlib.suppress(Exception):
            handle.kill(kill_grace)
        _discard_until_done(lines, reader, kill_grace + 10)
        raise
    reader.join()
    kill = _kill_result(kills, killed, kill_grace)
    outcome = box[0] if box else EngineError("the exec ended without a result")
    if isinstance(outcome, BaseException):
        if isinstance(outcome, ExecutorError):
            raise outcome
        raise EngineError(f"exec failed: {outcome}") from outcome
    return ExecOutcome(outcome, timed_out, cancelled, time.monotonic() - started, kill)


def _kill_aside(handle: Exec, grace: float, name: str, kills: list[KillResult]) -> None:
    """Kill on another thread, so this one keeps draining output while the task dies."""

    def kill() -> None:
        try:
            kills.append(handle.kill(grace))
        except Exception as exc:  # the engine's own error, reported as an unconfirmed kill
            kills.append(KillResult(error=str(exc)))

    threading.Thread(target=kill, name=f"kill-{name}", daemon=True).start()


def _kill_result(kills: list[KillResult], killed: bool, grace: float) -> KillResult | None:
    """What the kill achieved, once it has reported (it may outlast the stream by a moment)."""
    if not killed:
        return None
    end = time.monotonic() + grace + 10
    while not kills and time.monotonic() < end:
        time.sleep(0.05)
    return kills[0] if kills else KillResult(error="the kill did not report in time")


def _discard_until_done(lines: queue.Queue[object], reader: threading.Thread, limit: float) -> None:
    """Empty the queue so a blocked reader can finish, for at most ``limit`` seconds."""
    end = time.monotonic() + limit
    while reader.is_alive() and time.monotonic() < end:
        with contextlib.suppress(queue.Empty):
            lines.get(timeout=0.1)
