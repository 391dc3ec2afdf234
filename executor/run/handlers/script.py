"""Script-shaped tasks (shell, Python, the other languages, CLIs): one exec in the container."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import PurePosixPath
from typing import Any, Protocol

from executor.engine.api import ExecRequest, Line, Stream
from executor.engine.container_paths import run_dir
from executor.errors import WorkspaceError
from executor.flow import model as m
from executor.flow.model import ScriptTask
from executor.flow.tasks_exec import ExecScript
from executor.flow.tasks_scripts import JBangScriptTask, LanguageCommandsTask, LanguageScriptTask
from executor.model import Attempt, Level, State, TaskRun, iso, now
from executor.run.context import RunContext
from executor.run.durations import resolve_duration
from executor.run.handlers.attempts import AttemptResult, Handler, with_attempts
from executor.run.handlers.images import container_options
from executor.run.handlers.workdir import TaskJob, in_own_workdir
from executor.run.protocol import ProtocolError, merge_outputs, parse_line
from executor.run.scope import Scope
from executor.run.script import plan_script
from executor.run.script_vars import uses_output_dir
from executor.run.stored_files import StoredFiles
from executor.run.supervise import ExecOutcome, supervise


class ScriptKind(Protocol):
    """What a kind of script task adds around its exec (dbt: profiles, its log, its results).

    The plain kind adds nothing; :mod:`executor.run.handlers.cli` holds those that do.
    """

    def commands(self, task: Any, commands: list[str], render: Render) -> list[str]:
        """The rendered commands as they run."""
        ...

    def files(self, task: Any, render: Render, ctx: RunContext) -> dict[str, bytes]:
        """Files to write into the workspace first (relative path -> bytes)."""
        ...

    def sink(self, task: Any, sink: LineSink) -> Callable[[list[Line]], None]:
        """What receives the exec's lines (the plain sink, or one that reads them first)."""
        ...

    def collect(self, task: Any, render: Render) -> list[str]:
        """Extra globs of the workspace to collect as outputFiles."""
        ...

    def finish(self, job: FinishedScript) -> AttemptResult:
        """Adjust the attempt's result once the exec has ended and outputFiles are in."""
        ...


Render = Callable[[str], str]


@dataclass
class FinishedScript:
    """An ended script exec, for :meth:`ScriptKind.finish`."""

    task: Any
    run: TaskRun
    attempt: Attempt
    scope: Scope
    ctx: RunContext
    result: AttemptResult


class PlainScript:
    """A script task with nothing around its exec."""

    def commands(self, task: Any, commands: list[str], render: Render) -> list[str]:
        return commands

    def files(self, task: Any, render: Render, ctx: RunContext) -> dict[str, bytes]:
        return {}

    def sink(self, task: Any, sink: LineSink) -> Callable[[list[Line]], None]:
        return sink

    def collect(self, task: Any, render: Render) -> list[str]:
        return []

    def finish(self, job: FinishedScript) -> AttemptResult:
        return job.result


PLAIN = PlainScript()


def script_attempt(
    task: ExecScript, run: TaskRun, attempt: Attempt, scope: Scope, ctx: RunContext
) -> AttemptResult:
    """One attempt of a plain script task."""
    return run_script(task, run, attempt, scope, ctx, PLAIN)


def run_script(
    task: ExecScript,
    run: TaskRun,
    attempt: Attempt,
    scope: Scope,
    ctx: RunContext,
    kind: ScriptKind,
) -> AttemptResult:
    """One exec of a script-shaped task in the WorkingDirectory's container, ``kind`` around it."""
    workdir = scope.workdir
    assert workdir is not None, "script tasks run inside a WorkingDirectory"
    variables = ctx.variables(run, task, scope)
    where = ctx.where(task)
    timeout = resolve_duration(task.timeout, "timeout", task, run, scope, ctx)
    options = container_options(task, run, scope, ctx)
    run.image_id = options.image_id
    container = workdir.container(options)
    job = TaskJob(task, run, scope, ctx)
    if ctx.workspace is not None:
        ctx.workspace.before_script(job, workdir, task, container, scope.workdir_task)

    def render(text: str) -> str:
        return ctx.renderer.render(text, variables, where=where)

    workspace = ctx.settings.workspace_path
    stored = StoredFiles(workspace)
    token = f"{run.id}-{attempt.number}"
    commands = kind.commands(task, [stored.localize(render(c)) for c in task.command_list], render)
    script = task.script_text
    plan = plan_script(
        task,
        commands=commands,
        before=[stored.localize(render(c)) for c in task.beforeCommands],
        script=stored.localize(render(script)) if script is not None else None,
        env={k: render(v) for k, v in {**task.credential_env, **task.env}.items()},
        record_dir=run_dir(token),
        args=[render(a) for a in task.args] if isinstance(task, ScriptTask) and task.args else None,
        prelude=_prelude(task, variables),
        workspace=workspace,
    )
    if stored.files:
        if ctx.workspace is None:
            raise WorkspaceError("kestra:/// files in the commands need the run's stores")
        ctx.workspace.place_stored_files(job, workdir, container, stored.files)
    files = dict(plan.files)
    files.update(
        {f"{workspace}/{path}": data for path, data in kind.files(task, render, ctx).items()}
    )
    if isinstance(task, ScriptTask) and task.executionContext:
        files[f"{workspace}/{EXECUTION_CONTEXT_FILE}"] = execution_context(variables, ctx)
    if files:
        workdir.put_files(container, files)
    opts = task.docker_options
    user = opts.user if opts and opts.user else None
    if user:
        workdir.prepare_user(container, user)
    sink = LineSink(ctx, run, attempt.number)
    with workdir.slot(container, lambda: ctx.log(run, Level.DEBUG, "waiting for a free exec slot")):
        ctx.log(
            run,
            Level.DEBUG,
            f"exec in {container[:12]} (image {options.image_id[7:19]})",
            attempt=attempt.number,
        )
        handle = workdir.exec(container, ExecRequest(plan.argv, token, plan.env, None, user))
        outcome = supervise(
            handle,
            kind.sink(task, sink),
            timeout=timeout.total_seconds() if timeout else None,
            cancel=scope.cancel,
            kill_grace=ctx.settings.kill_grace_seconds,
            name=token,
        )
    sink.finish()
    if ctx.workspace is not None and not outcome.cancelled:
        out_dir = None
        if uses_output_dir(task):
            out_dir = str(PurePosixPath(variables["outputDir"]).relative_to(workspace))
        collected = ctx.workspace.after_script(
            job, workdir, task, container, out_dir, _legacy_dirs(task) + kind.collect(task, render)
        )
        if collected:
            sink.outputs["outputFiles"] = collected
    result = _judge(task, run, attempt, ctx, sink, outcome, scope, timeout)
    if outcome.cancelled:
        return result
    return kind.finish(FinishedScript(task, run, attempt, scope, ctx, result))


def _prelude(task: ExecScript, variables: dict[str, Any]) -> list[str]:
    """Directories the task's variables promise: its ``outputDir``, legacy ``outputDirs``."""
    lines = []
    if uses_output_dir(task):
        lines.append(task.remake_dir_line(variables["outputDir"]))
    for path in (variables.get("outputDirs") or {}).values():
        lines.append(task.make_dir_line(path))
    return lines


def _legacy_dirs(task: ExecScript) -> list[str]:
    """The legacy tasks' ``outputDirs``, collected whole."""
    if isinstance(task, ScriptTask) and task.is_legacy and task.outputDirs:
        return [f"{name}/**" for name in task.outputDirs]
    return []


EXECUTION_CONTEXT_FILE = ".kestra-execution-context.json"


def execution_context(variables: dict[str, Any], ctx: RunContext) -> bytes:
    """What ``executionContext: true`` gives the script (``from kestra import context``).

    The template context's public part, as JSON, secrets masked.
    """
    keys = ("flow", "execution", "inputs", "outputs", "vars", "labels", "task", "taskrun")
    shown = {key: variables[key] for key in keys if key in variables}
    if "parent" in variables:
        shown["parent"] = variables["parent"]
    return json.dumps(ctx.secrets.mask_value(shown), default=str).encode()


def _judge(
    task: ExecScript,
    run: TaskRun,
    attempt: Attempt,
    ctx: RunContext,
    sink: LineSink,
    outcome: ExecOutcome,
    scope: Scope,
    timeout: timedelta | None,
) -> AttemptResult:
    """The attempt's state from how the exec ended (Kestra 0.23+: stderr alone is fine)."""
    number, outputs, result = attempt.number, sink.outputs, outcome.result
    if outcome.kill is not None and not outcome.kill.complete:
        kill = outcome.kill
        left = ", ".join(str(p) for p in kill.survivors) or "unknown"
        ctx.log(
            run,
            Level.ERROR,
            f"the kill was not confirmed ({kill.error or 'still alive: pids ' + left})",
            attempt=number,
        )
    if outcome.cancelled:
        reason = f"stopped: {scope.cancel.reason}" if scope.cancel.reason else "stopped"
        ctx.log(run, Level.WARN, reason, attempt=number)
        return AttemptResult(
            scope.cancel.state or State.KILLED, reason, result.exit_code, False, outputs
        )
    if outcome.timed_out:
        assert timeout is not None
        killed = outcome.kill is not None and outcome.kill.complete
        reason = f"timed out after {iso_duration(timeout)}: " + (
            "every process of the task was killed" if killed else "the kill was not confirmed"
        )
        ctx.log(run, Level.ERROR, reason, attempt=number)
        return AttemptResult(State.FAILED, reason, result.exit_code, result.oom_killed, outputs)
    if result.error:
        ctx.log(run, Level.ERROR, result.error, attempt=number)
        return AttemptResult(State.FAILED, result.error, None, result.oom_killed, outputs)
    if result.exit_code != 0:
        reason = f"exit code {result.exit_code}"
        if result.oom_killed:
            reason += " (killed: out of memory)"
        elif result.exit_code == 127:
            reason += " (command not found: is it installed in the image?)"
        ctx.log(run, Level.ERROR, f"command failed with {reason}", attempt=number)
        return AttemptResult(State.FAILED, reason, result.exit_code, result.oom_killed, outputs)
    if sink.stderr_lines and task.warningOnStdErr is True:
        return AttemptResult(
            State.WARNING, f"{sink.stderr_lines} line(s) on stderr", 0, False, outputs
        )
    return AttemptResult(State.SUCCESS, None, 0, False, outputs)


def iso_duration(value: timedelta) -> str:
    """A timedelta as Kestra writes it (PT2S, PT1M30S)."""
    seconds = value.total_seconds()
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    text = "PT" + (f"{int(hours)}H" if hours else "") + (f"{int(minutes)}M" if minutes else "")
    if secs or text == "PT":
        text += f"{secs:g}S"
    return text


class LineSink:
    """Receives a task's lines: protocol lines become outputs and metrics, the rest logs.

    A cap (``Settings.max_task_log_bytes``) bounds what one attempt may log: every line counts
    toward it, protocol lines included, and past it lines are no longer logged (one WARN says
    so). Outputs and metrics in protocol lines are still taken, so the task's result never
    depends on the cap; :meth:`finish` logs what was dropped.
    """

    def __init__(self, ctx: RunContext, run: TaskRun, attempt: int) -> None:
        self.ctx = ctx
        self.run = run
        self.attempt = attempt
        self.outputs: dict[str, Any] = {}
        self.stderr_lines = 0
        self.cap = ctx.settings.max_task_log_bytes
        self.seen_bytes = 0
        self.dropped_lines = 0
        self.dropped_bytes = 0

    def __call__(self, lines: list[Line]) -> None:
        """Log runs of plain lines as batches; a possible protocol line on its own, in order."""
        stdout = Stream.STDOUT
        plain: list[str] = []
        plain_stream = stdout
        for stream, text in lines:
            if stream == stdout and text.startswith("::{"):
                self._plain(plain_stream, plain)
                plain = []
                self.line(stream, text)
                continue
            if stream != plain_stream:
                self._plain(plain_stream, plain)
                plain, plain_stream = [], stream
            plain.append(text)
        self._plain(plain_stream, plain)

    def _plain(self, stream: Stream, texts: list[str]) -> None:
        if not texts:
            return
        ctx, run = self.ctx, self.run
        if stream == Stream.STDERR:
            self.stderr_lines += len(texts)
            run.stderr_tail = [*run.stderr_tail, *ctx.secrets.mask_all(texts[-10:])][-10:]
        kept = self._within_cap(texts)
        if kept:
            level = Level.ERROR if stream == Stream.STDERR else Level.INFO
            ctx.log_many(run, level, kept, stream.value, self.attempt)

    def _within_cap(self, texts: list[str]) -> list[str]:
        """The lines of a batch still under the cap (one encode for a batch that fits)."""
        if not self.cap:
            return texts
        size = len("\n".join(texts).encode("utf-8", "surrogateescape")) + 1
        if self.seen_bytes + size <= self.cap:
            self.seen_bytes += size
            return texts
        return [text for text in texts if not self._over_cap(text)]

    def _over_cap(self, text: str) -> bool:
        """Count ``text``; whether it lies past the cap (the first time, say so once)."""
        size = len(text.encode("utf-8", "surrogateescape")) + 1
        self.seen_bytes += size
        if not self.cap or self.seen_bytes <= self.cap:
            return False
        if not self.dropped_lines:
            self.ctx.log(
                self.run,
                Level.WARN,
                f"log cap reached: this task logged more than {_size(self.cap)}; further lines "
                "are not stored or shown (outputs still are). Change the cap with "
                "EXECUTOR_MAX_TASK_LOG_BYTES (bytes, 0 for none)",
                attempt=self.attempt,
            )
        self.dropped_lines += 1
        self.dropped_bytes += size
        return True

    def finish(self) -> None:
        """Say how much the cap dropped, when it dropped anything."""
        if self.dropped_lines:
            self.ctx.log(
                self.run,
                Level.WARN,
                f"log cap: dropped {self.dropped_lines} line(s), {self.dropped_bytes} bytes "
                f"({_size(self.dropped_bytes)}) of this task's output",
                attempt=self.attempt,
            )

    def line(self, stream: Stream, text: str) -> None:
        ctx, run = self.ctx, self.run
        over = self._over_cap(text)
        if stream == Stream.STDERR:
            self.stderr_lines += 1
            run.stderr_tail = [*run.stderr_tail, ctx.secrets.mask(text)][-10:]
            if not over:
                ctx.log(run, Level.ERROR, text, "stderr", self.attempt)
            return
        try:
            message = parse_line(text)
        except ProtocolError as exc:
            if not over:
                ctx.log(
                    run,
                    Level.WARN,
                    f"ignored a malformed protocol line: {exc}",
                    attempt=self.attempt,
                )
            message = None
        if message is None:
            if not over:
                ctx.log(run, Level.INFO, text, "stdout", self.attempt)
            return
        if message.outputs:
            merge_outputs(self.outputs.setdefault("vars", {}), message.outputs)
        for metric in message.metrics:
            with ctx.lock:
                run.metrics.append(
                    {
                        "name": metric.name,
                        "type": metric.type,
                        "value": metric.value,
                        "tags": metric.tags,
                        "timestamp": iso(now()),
                    }
                )
        for entry in message.logs if not over else ():
            ctx.log(run, Level(entry.level), entry.message, "stdout", self.attempt)


def _size(count: int) -> str:
    return f"{count / (1024 * 1024):.1f} MB" if count >= 1024 * 1024 else f"{count} bytes"


HANDLES: dict[type[Any], Handler[Any]] = {
    m.ScriptTask: in_own_workdir(with_attempts(script_attempt)),
    LanguageCommandsTask: in_own_workdir(with_attempts(script_attempt)),
    LanguageScriptTask: in_own_workdir(with_attempts(script_attempt)),
    JBangScriptTask: in_own_workdir(with_attempts(script_attempt)),
}
"""What this module runs, by task model (``run.handlers`` collects it)."""
