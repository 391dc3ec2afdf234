"""The sequential runner: tasks in order, errors then finally, states the way Kestra sets them."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from executor.engine import labels as labelling
from executor.engine.api import Engine, ExecRequest, Stream
from executor.errors import ExecutorError, ImageError, TemplateError
from executor.flow.loader import LoadedFlow
from executor.flow.model import (
    CloneTask,
    LocalFilesTask,
    LogTask,
    OutputValuesTask,
    Retry,
    ReturnTask,
    ScriptTask,
    Task,
    WorkingDirectoryTask,
)
from executor.flow.secrets import Secrets
from executor.flow.template import Renderer, truthy
from executor.run.execution import (
    Attempt,
    Execution,
    Level,
    LogLine,
    RunListener,
    State,
    TaskRun,
    iso,
    now,
)
from executor.run.protocol import ProtocolError, merge_outputs, parse_line
from executor.run.script import plan_script
from executor.run.signals import deferred_interrupts
from executor.run.workdir import ContainerOptions, WorkingDirectoryResources
from executor.settings import Settings

ImageLookup = Callable[[str, str], str]  # (reference, pull policy) -> local image id


@dataclass
class Scope:
    """Where a task runs: on the host, or inside a WorkingDirectory's resources."""

    wd: WorkingDirectoryResources | None = None
    wd_task: WorkingDirectoryTask | None = None
    parent_run: TaskRun | None = None


@dataclass
class RunOutcome:
    """The aggregate of a list of tasks."""

    failed: bool = False
    warning: bool = False
    killed: bool = False


@dataclass
class _Attempt:
    state: State
    reason: str | None = None
    exit_code: int | None = None
    oom: bool = False
    outputs: dict[str, Any] = field(default_factory=dict)


class FlowRunner:
    """Runs one flow: builds the Execution, drives the engine, tells listeners as it goes."""

    def __init__(
        self,
        engine: Engine,
        settings: Settings,
        resolve_image: ImageLookup,
        *,
        secrets: Secrets | None = None,
        listeners: Sequence[RunListener] = (),
        workspace: Any = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.engine = engine
        self.settings = settings
        self.resolve_image = resolve_image
        self.secrets = secrets or Secrets({})
        self.renderer = Renderer(self.secrets)
        self.listeners = list(listeners)
        self.workspace = workspace
        self.sleep = sleep
        self.outputs: dict[str, Any] = {}
        self.execution: Execution | None = None
        self.loaded: LoadedFlow | None = None
        self.inputs: dict[str, Any] = {}

    # ----- events

    def _emit_execution(self) -> None:
        assert self.execution is not None
        for listener in self.listeners:
            listener.execution_changed(self.execution)

    def _emit_task(self, run: TaskRun) -> None:
        assert self.execution is not None
        for listener in self.listeners:
            listener.task_changed(self.execution, run)

    def _log(
        self,
        run: TaskRun | None,
        level: Level,
        message: str,
        stream: str = "executor",
        attempt: int | None = None,
    ) -> None:
        assert self.execution is not None
        line = LogLine(
            now(),
            self.execution.id,
            run.task_id if run else None,
            run.id if run else None,
            attempt,
            stream,
            level,
            self.secrets.mask(message),
        )
        for listener in self.listeners:
            listener.log(line)

    def _set(self, run: TaskRun, state: State, reason: str | None = None) -> None:
        run.state.to(state)
        if reason:
            run.reason = self.secrets.mask(reason)
        self._emit_task(run)

    # ----- entry point

    def run(self, loaded: LoadedFlow, inputs: dict[str, Any], execution: Execution) -> Execution:
        """Run the flow to the end; Ctrl-C (KeyboardInterrupt) ends it KILLED and re-raises."""
        self.loaded, self.inputs, self.execution = loaded, inputs, execution
        flow = loaded.flow
        execution.state.to(State.RUNNING)
        self._emit_execution()
        self._log(
            None, Level.INFO, f"execution {execution.id} of {flow.namespace}.{flow.id} started"
        )
        try:
            outcome = self._run_sequence(
                list(flow.tasks), list(flow.errors), list(flow.finally_), Scope()
            )
        except KeyboardInterrupt:
            execution.reason = execution.reason or "interrupted"
            execution.state.to(State.KILLED)
            self._log(None, Level.WARN, "execution killed: interrupted")
            self._emit_execution()
            raise
        final = (
            State.FAILED if outcome.failed else State.WARNING if outcome.warning else State.SUCCESS
        )
        if outcome.killed:
            final = State.KILLED
        execution.state.to(final)
        self._log(
            None,
            Level.INFO if final in (State.SUCCESS, State.WARNING) else Level.ERROR,
            f"execution ended {final.value} in {execution.state.duration:.2f}s",
        )
        self._emit_execution()
        return execution

    # ----- sequencing

    def _run_sequence(
        self, tasks: list[Task], errors: list[Task], finally_: list[Task], scope: Scope
    ) -> RunOutcome:
        outcome = self._run_list(tasks, scope)
        if outcome.failed and errors:
            handled = self._run_list(errors, scope)
            outcome.warning |= handled.warning
            outcome.killed |= handled.killed
        if finally_:
            closing = self._run_list(finally_, scope)
            outcome.failed |= closing.failed
            outcome.warning |= closing.warning
            outcome.killed |= closing.killed
        return outcome

    def _run_list(self, tasks: list[Task], scope: Scope) -> RunOutcome:
        outcome = RunOutcome()
        for task in tasks:
            state = self._run_task(task, scope)
            if state == State.KILLED:
                outcome.killed = outcome.failed = True
                break
            if state == State.FAILED:
                outcome.failed = True
                break
            if state == State.WARNING:
                outcome.warning = True
        return outcome

    def _context(self, run: TaskRun | None = None, task: Task | None = None) -> dict[str, Any]:
        assert self.execution is not None and self.loaded is not None
        flow = self.loaded.flow
        ctx: dict[str, Any] = {
            "flow": {"id": flow.id, "namespace": flow.namespace, "revision": flow.revision or 1},
            "execution": {
                "id": self.execution.id,
                "startDate": self.execution.state.start,
                "originalId": self.execution.id,
            },
            "inputs": self.inputs,
            "vars": flow.variables,
            "outputs": self.outputs,
            "labels": self.execution.labels,
            "workingDir": self.settings.workspace_path,
            "envs": {},
        }
        if task is not None and run is not None:
            ctx["task"] = {"id": task.id, "type": task.type}
            ctx["taskrun"] = {
                "id": run.id,
                "startDate": run.state.start,
                "attemptsCount": len(run.attempts),
            }
        return ctx

    def _where(self, task: Task) -> str:
        assert self.loaded is not None
        return self.loaded.task_where(task.id)

    def _run_task(self, task: Task, scope: Scope) -> State:
        assert self.execution is not None
        run = TaskRun(task.id, task.type, scope.parent_run.id if scope.parent_run else None)
        self.execution.task_runs.append(run)
        self._emit_task(run)
        try:
            if task.disabled:
                self._set(run, State.SKIPPED, "disabled")
                return State.SKIPPED
            if task.runIf is not None:
                value = self.renderer.evaluate(
                    task.runIf, self._context(run, task), where=self._where(task)
                )
                if not truthy(value):
                    self._log(run, Level.INFO, f"skipped: runIf {task.runIf!r} is false")
                    self._set(run, State.SKIPPED, "runIf is false")
                    return State.SKIPPED
            self._set(run, State.RUNNING)
            if isinstance(task, WorkingDirectoryTask):
                state = self._run_working_directory(task, run)
            elif isinstance(task, ScriptTask | CloneTask | LocalFilesTask) and scope.wd is None:
                state = self._run_alone(task, run)
            else:
                state = self._run_with_retry(task, run, scope)
        except KeyboardInterrupt:
            if not run.state.current.terminal:
                self._set(run, State.KILLED, "interrupted")
            raise
        except ExecutorError as exc:
            self._log(run, Level.ERROR, str(exc))
            self._set(run, State.FAILED, exc.message)
            state = State.FAILED
        return self._apply_tolerance(task, run, state)

    def _apply_tolerance(self, task: Task, run: TaskRun, state: State) -> State:
        if state == State.FAILED and task.allowFailure:
            self._log(run, Level.WARN, "failure tolerated (allowFailure)")
            self._set(run, State.WARNING)
            return State.WARNING
        if state == State.WARNING and task.allowWarning:
            self._set(run, State.SUCCESS)
            return State.SUCCESS
        if run.state.current != state:
            self._set(run, state)
        return state

    def _run_alone(self, task: Task, run: TaskRun) -> State:
        """A script, Clone or LocalFiles task alone: run as a WorkingDirectory of one."""
        wd = WorkingDirectoryTask.model_validate(
            {"id": task.id, "type": "io.kestra.plugin.core.flow.WorkingDirectory", "tasks": [task]}
        )
        return self._with_resources(wd, run, lambda scope: self._run_with_retry(task, run, scope))

    def _run_working_directory(self, task: WorkingDirectoryTask, run: TaskRun) -> State:
        def body(scope: Scope) -> State:
            outcome = self._run_sequence(
                list(task.tasks), list(task.errors), list(task.finally_), scope
            )
            return (
                State.KILLED
                if outcome.killed
                else State.FAILED
                if outcome.failed
                else State.WARNING
                if outcome.warning
                else State.SUCCESS
            )

        return self._with_resources(task, run, body)

    def _with_resources(
        self, task: WorkingDirectoryTask, run: TaskRun, body: Callable[[Scope], State]
    ) -> State:
        assert self.execution is not None
        res = WorkingDirectoryResources(
            self.engine,
            labelling.ownership(self.execution.id, task.id),
            self.settings.workspace_path,
            self.settings.kill_grace_seconds,
        )
        scope = Scope(res, task, run)
        state = State.FAILED
        try:
            res.open()
            if self.workspace is not None:
                self.workspace.before_children(self, scope, run)
            state = body(scope)
            if self.workspace is not None:
                state = self.workspace.after_children(self, scope, run, state)
        finally:
            with deferred_interrupts():
                problems = res.close()
            for problem in problems:
                self._log(run, Level.ERROR, f"cleanup: {problem}")
        return state

    # ----- one task, with retry

    def _run_with_retry(self, task: Task, run: TaskRun, scope: Scope) -> State:
        started = time.monotonic()
        number = 0
        while True:
            number += 1
            attempt = Attempt(number)
            run.attempts.append(attempt)
            attempt.state.to(State.RUNNING)
            result = self._attempt(task, run, attempt, scope)
            attempt.exit_code, attempt.oom_killed, attempt.reason = (
                result.exit_code,
                result.oom,
                result.reason,
            )
            attempt.state.to(result.state)
            merge_outputs(run.outputs, result.outputs)
            if result.reason:
                run.reason = self.secrets.mask(result.reason)
            delay = self._retry_delay(task.retry, number, time.monotonic() - started)
            if result.state != State.FAILED or delay is None:
                break
            self._log(
                run,
                Level.WARN,
                f"attempt {number} failed ({result.reason}); retrying in {delay:.1f}s",
            )
            self._set(run, State.RETRYING)
            self.sleep(delay)
            self._set(run, State.RUNNING)
        self.outputs[task.id] = run.outputs
        state = result.state
        if state == State.SUCCESS and number > 1 and task.retry and task.retry.warningOnRetry:
            state = State.WARNING
        return state

    @staticmethod
    def _retry_delay(retry: Retry | None, attempt: int, elapsed: float) -> float | None:
        """Seconds to wait before the next attempt, or ``None`` when retries are spent."""
        if retry is None:
            return None
        if retry.maxAttempt is not None and attempt >= retry.maxAttempt:
            return None
        if retry.type == "constant":
            delay = retry.interval.total_seconds() if retry.interval else 0.0
        elif retry.type == "exponential":
            base = retry.interval.total_seconds() if retry.interval else 1.0
            delay = base * (retry.delayFactor or 2.0) ** (attempt - 1)
            if retry.maxInterval:
                delay = min(delay, retry.maxInterval.total_seconds())
        else:
            low = retry.minInterval.total_seconds() if retry.minInterval else 0.0
            high = retry.maxInterval.total_seconds() if retry.maxInterval else low
            delay = random.uniform(low, high)  # noqa: S311 - jitter, not security
        if retry.maxDuration is not None and elapsed + delay > retry.maxDuration.total_seconds():
            return None
        return delay

    def _attempt(self, task: Task, run: TaskRun, attempt: Attempt, scope: Scope) -> _Attempt:
        ctx = self._context(run, task)
        where = self._where(task)
        try:
            if isinstance(task, LogTask):
                return self._log_task(task, run, ctx, where)
            if isinstance(task, ReturnTask):
                value = self.renderer.render(task.format or "", ctx, where=where)
                return _Attempt(State.SUCCESS, outputs={"value": value})
            if isinstance(task, OutputValuesTask):
                values = self.renderer.render_value(task.values, ctx, where=where)
                return _Attempt(State.SUCCESS, outputs={"values": values})
            if isinstance(task, ScriptTask):
                return self._script(task, run, attempt, scope, ctx, where)
            if isinstance(task, CloneTask | LocalFilesTask):
                if self.workspace is None:
                    raise ExecutorError(f"{task.type} needs the workspace layer")
                outputs = self.workspace.run_task(self, task, run, scope, ctx, where)
                return _Attempt(State.SUCCESS, outputs=outputs or {})
        except TemplateError as exc:
            self._log(run, Level.ERROR, str(exc), attempt=attempt.number)
            return _Attempt(State.FAILED, reason=exc.message)
        raise ExecutorError(f"task type {task.type} cannot run here", where=where)

    def _log_task(self, task: LogTask, run: TaskRun, ctx: dict[str, Any], where: str) -> _Attempt:
        messages = task.message if isinstance(task.message, list) else [task.message]
        level = Level.WARN if task.level == "WARN" else Level(task.level)
        for message in messages:
            self._log(run, level, self.renderer.render(message, ctx, where=where), stream="log")
        return _Attempt(State.SUCCESS)

    # ----- script tasks

    def image_for(self, task: ScriptTask, ctx: dict[str, Any], where: str) -> ContainerOptions:
        """The container options (and resolved image) a script task asks for."""
        ref = task.image
        if ref is None:
            ref = (
                self.settings.default_python_image
                if task.is_python
                else self.settings.default_shell_image
            )
        ref = self.renderer.render(ref, ctx, where=where)
        opts = task.docker_options
        try:
            image_id = self.resolve_image(ref, opts.pullPolicy if opts else "IF_NOT_PRESENT")
        except ImageError as exc:
            raise ImageError(exc.message, where=where) from None
        assert self.execution is not None
        self.execution.images[ref] = image_id
        return ContainerOptions(
            image_id=image_id,
            cpus=(opts.cpu or {}).get("cpus") if opts and opts.cpu else None,
            memory=(opts.memory or {}).get("memory") if opts and opts.memory else None,
            shm_size=opts.shmSize if opts else None,
            network_mode=opts.networkMode if opts else None,
        )

    def _script(
        self,
        task: ScriptTask,
        run: TaskRun,
        attempt: Attempt,
        scope: Scope,
        ctx: dict[str, Any],
        where: str,
    ) -> _Attempt:
        assert scope.wd is not None and self.execution is not None
        options = self.image_for(task, ctx, where)
        run.image_id = options.image_id
        container = scope.wd.container(options)
        if self.workspace is not None:
            self.workspace.before_script(self, task, run, scope, container, ctx, where)
        render = self.renderer
        token = f"{run.id}-{attempt.number}"
        record_dir = f"/.executor/runs/{token}"
        plan = plan_script(
            task,
            commands=[render.render(c, ctx, where=where) for c in task.commands or []],
            before=[render.render(c, ctx, where=where) for c in task.beforeCommands],
            script=render.render(task.script, ctx, where=where)
            if task.script is not None
            else None,
            env={k: render.render(v, ctx, where=where) for k, v in task.env.items()},
            record_dir=record_dir,
        )
        if plan.files:
            scope.wd.put_files(container, plan.files)
        opts = task.docker_options
        user = opts.user if opts and opts.user else None
        if user:
            scope.wd.prepare_user(container, user)
        timeout = task.timeout.total_seconds() if task.timeout else None
        sink = _LineSink(self, run, attempt.number)
        self._log(
            run,
            Level.DEBUG,
            f"exec in {container[:12]} (image {options.image_id[7:19]})",
            attempt=attempt.number,
        )
        outcome = scope.wd.run(
            container, ExecRequest(plan.argv, token, plan.env, None, user), sink, timeout
        )
        result = outcome.result
        if self.workspace is not None:
            files = self.workspace.after_script(self, task, run, scope, container, ctx, where)
            if files:
                sink.outputs["outputFiles"] = files
        if outcome.timed_out:
            reason = (
                f"timed out after {iso_duration(task.timeout)}: "
                "every process of the task was killed"
            )
            self._log(run, Level.ERROR, reason, attempt=attempt.number)
            return _Attempt(State.FAILED, reason, result.exit_code, result.oom_killed, sink.outputs)
        if result.error:
            self._log(run, Level.ERROR, result.error, attempt=attempt.number)
            return _Attempt(State.FAILED, result.error, None, result.oom_killed, sink.outputs)
        if result.exit_code != 0:
            reason = f"exit code {result.exit_code}"
            if result.oom_killed:
                reason += " (killed: out of memory)"
            elif result.exit_code == 127:
                reason += " (command not found: is it installed in the image?)"
            self._log(run, Level.ERROR, f"command failed with {reason}", attempt=attempt.number)
            return _Attempt(State.FAILED, reason, result.exit_code, result.oom_killed, sink.outputs)
        if sink.stderr_lines and task.warningOnStdErr:
            return _Attempt(
                State.WARNING, f"{sink.stderr_lines} line(s) on stderr", 0, False, sink.outputs
            )
        return _Attempt(State.SUCCESS, None, 0, False, sink.outputs)


def iso_duration(value: Any) -> str:
    """A timedelta as Kestra writes it (PT2S, PT1M30S)."""
    seconds = value.total_seconds()
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    text = "PT" + (f"{int(hours)}H" if hours else "") + (f"{int(minutes)}M" if minutes else "")
    if secs or text == "PT":
        text += f"{secs:g}S"
    return text


class _LineSink:
    """Receives a task's lines: protocol lines become outputs and metrics, the rest logs."""

    def __init__(self, runner: FlowRunner, run: TaskRun, attempt: int) -> None:
        self.runner = runner
        self.run = run
        self.attempt = attempt
        self.outputs: dict[str, Any] = {}
        self.stderr_lines = 0

    def __call__(self, stream: Stream, text: str) -> None:
        if stream == Stream.STDERR:
            self.stderr_lines += 1
            self.run.stderr_tail = ([*self.run.stderr_tail, self.runner.secrets.mask(text)])[-10:]
            self.runner._log(self.run, Level.ERROR, text, "stderr", self.attempt)
            return
        try:
            message = parse_line(text)
        except ProtocolError as exc:
            self.runner._log(
                self.run,
                Level.WARN,
                f"ignored a malformed protocol line: {exc}",
                attempt=self.attempt,
            )
            message = None
        if message is None:
            self.runner._log(self.run, Level.INFO, text, "stdout", self.attempt)
            return
        if message.outputs:
            merge_outputs(self.outputs.setdefault("vars", {}), message.outputs)
        for metric in message.metrics:
            self.run.metrics.append(
                {
                    "name": metric.name,
                    "type": metric.type,
                    "value": metric.value,
                    "tags": metric.tags,
                    "timestamp": iso(now()),
                }
            )
        for entry in message.logs:
            level = Level(entry.level)  # the protocol parser already normalised it
            self.runner._log(self.run, level, entry.message, "stdout", self.attempt)
