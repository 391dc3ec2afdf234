"""Runnable tasks: attempts, ``retry`` in the same place, outputs published once at the end."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from executor.errors import EngineLost, TemplateError
from executor.flow.model import Task
from executor.model import Attempt, Level, State, TaskRun
from executor.run.context import RunContext
from executor.run.protocol import merge_outputs
from executor.run.retry import retry_delay
from executor.run.scope import Scope

T = TypeVar("T", bound=Task)


@dataclass
class AttemptResult:
    """How one attempt ended."""

    state: State
    reason: str | None = None
    exit_code: int | None = None
    oom: bool = False
    outputs: dict[str, Any] = field(default_factory=dict)


AttemptFn = Callable[[T, TaskRun, Attempt, Scope, RunContext], AttemptResult]
Handler = Callable[[T, TaskRun, Scope, RunContext], State]


def with_attempts(attempt_fn: AttemptFn[T]) -> Handler[T]:
    """A handler that runs ``attempt_fn`` once, then again as ``retry`` allows."""

    def handler(task: T, run: TaskRun, scope: Scope, ctx: RunContext) -> State:
        started = time.monotonic()
        earlier = len(run.attempts)  # a restarted task run keeps the attempts it had
        tries = 0
        while True:
            tries += 1
            number = earlier + tries
            attempt = Attempt(number)
            with ctx.lock:
                run.attempts.append(attempt)
                attempt.state.to(State.RUNNING)
            try:
                result = attempt_fn(task, run, attempt, scope, ctx)
            except TemplateError as exc:
                ctx.log(run, Level.ERROR, str(exc), attempt=number)
                result = AttemptResult(State.FAILED, exc.message)
            except EngineLost as exc:  # no retry can help: the run ends (see run_task)
                with ctx.lock:
                    attempt.reason = exc.during(run.task_id).message
                    attempt.state.to(State.FAILED)
                raise
            with ctx.lock:
                attempt.exit_code, attempt.oom_killed = result.exit_code, result.oom
                attempt.reason = result.reason
                attempt.state.to(result.state)
                merge_outputs(run.outputs, result.outputs)
                if result.reason:
                    run.reason = ctx.secrets.mask(result.reason)
            delay = retry_delay(task.retry, tries, time.monotonic() - started)
            if result.state != State.FAILED or delay is None or scope.cancel.cancelled:
                break
            ctx.log(
                run,
                Level.WARN,
                f"attempt {number} failed ({result.reason}); retrying in {delay:.1f}s",
            )
            ctx.set_state(run, State.RETRYING)
            ctx.sleep(delay)
            ctx.set_state(run, State.RUNNING)
        ctx.set_outputs(run, scope, run.outputs)
        state = result.state
        if state == State.SUCCESS and tries > 1 and task.retry and task.retry.warningOnRetry:
            state = State.WARNING
        return state

    return handler
