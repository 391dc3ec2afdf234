"""Running units of work at once: Parallel, Dag, ForEach and EachParallel all come here.

Each unit runs on a thread of its own under a child cancel scope. At most ``limit`` run at once
(0: no limit); a unit starts once the units it depends on have ended well. When one fails,
``onChildFailure`` decides: FAIL (the default, as in Kestra 2.0) and CANCEL stop the running
siblings, every process of theirs, and start nothing new; CONTINUE starts and finishes the rest;
FINISH (Kestra's loops) starts nothing new and lets the running ones end.
The calling thread waits in short ticks, so Ctrl-C reaches it and stops every branch.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from executor.model import State
from executor.run.cancel import CancelScope

_TICK = 0.25


@dataclass(frozen=True)
class Unit:
    """One branch: ``work`` runs it under the cancel scope it is given and says how it ended."""

    key: str
    work: Callable[[CancelScope], State]
    depends: Sequence[str] = field(default_factory=tuple)


@dataclass
class Finished:
    """How the units ended: state by key, and the keys never started."""

    states: dict[str, State]
    not_started: list[str]


def run_units(
    units: Sequence[Unit], *, limit: int, on_failure: str, cancel: CancelScope, name: str
) -> Finished:
    """Run ``units`` as their dependencies and ``limit`` allow; return once all have ended."""
    group = cancel.child()
    pending = list(units)
    done: dict[str, State] = {}
    results: queue.Queue[tuple[str, State | BaseException]] = queue.Queue()
    running = 0
    stopping = False
    crash: BaseException | None = None

    def start(unit: Unit) -> None:
        branch = group.child()

        def target() -> None:
            try:
                results.put((unit.key, unit.work(branch)))
            except BaseException as exc:  # a bug in a branch: reported on the calling thread
                results.put((unit.key, exc))

        threading.Thread(target=target, name=f"{name}:{unit.key}", daemon=True).start()

    try:
        while True:
            if not stopping and not group.cancelled:
                for unit in list(pending):
                    if limit and running >= limit:
                        break
                    if all(
                        done.get(dep) in (State.SUCCESS, State.WARNING, State.SKIPPED)
                        for dep in unit.depends
                    ):
                        pending.remove(unit)
                        start(unit)
                        running += 1
            if running == 0:
                break
            try:
                key, outcome = results.get(timeout=_TICK)
            except queue.Empty:
                continue
            running -= 1
            if isinstance(outcome, BaseException):
                crash = crash or outcome
                group.cancel(State.KILLED, "a branch crashed")
                stopping = True
                continue
            done[key] = outcome
            if outcome in (State.FAILED, State.KILLED) and not stopping:
                if on_failure == "FINISH":
                    stopping = True  # Kestra's loops: start nothing new, let the running end
                elif on_failure in ("FAIL", "FAILED", "CANCEL", "CANCELLED"):
                    stopping = True
                    stopped = State.CANCELLED if on_failure.startswith("CANCEL") else State.FAILED
                    if outcome == State.FAILED:
                        group.cancel(stopped, f"a sibling of {name} failed: '{key}'")
                    else:
                        group.cancel(State.KILLED, f"a sibling of {name} was killed: '{key}'")
    except KeyboardInterrupt:
        group.cancel(State.KILLED, "interrupted")
        while running:
            try:
                results.get(timeout=_TICK)
                running -= 1
            except queue.Empty:
                continue
        raise
    if crash is not None:
        raise crash
    return Finished(done, [unit.key for unit in pending])
