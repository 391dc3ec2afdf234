"""CLI tasks around their exec: Ansible's config and log, Spark's stderr, and dbt.

dbt, as Kestra's plugin runs it: ``profiles`` written first (``profiles.yml``, or
``.profile/profiles.yml`` for the older tasks), the JSON log lines read for their level and
message (a ``warn`` makes the task WARNING) and their ``stats`` (counters), and afterwards,
with ``parseRunResults`` (the default), ``target/run_results.json`` and ``manifest.json``
become the outputFiles ``run_results.json`` and ``manifest.json``, each model one task run
under the task (its unique id, state and timing) with its ``rows.affected`` (and
``bytes.processed``) as that run's metrics.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from executor.engine.api import Line, Stream
from executor.errors import ExecutorError
from executor.flow.tasks_cli import (
    AnsibleTask,
    AnyCliTask,
    AnyDbtTask,
    AwsCliTask,
    DbtCliTask,
    DbtCommandTask,
    DbtTask,
    ModalTask,
    SparkTask,
    SqlMeshTask,
    TerraformTask,
    TrivyTask,
)
from executor.model import Attempt, Level, State, StateHistory, TaskRun, iso, now
from executor.run.context import RunContext
from executor.run.handlers.attempts import AttemptResult, Handler, with_attempts
from executor.run.handlers.script import (
    FinishedScript,
    LineSink,
    PlainScript,
    Render,
    run_script,
)
from executor.run.handlers.workdir import in_own_workdir
from executor.run.scope import Scope

RUN_RESULTS = "target/run_results.json"
MANIFEST = "target/manifest.json"


def cli_attempt(
    task: AnyCliTask, run: TaskRun, attempt: Attempt, scope: Scope, ctx: RunContext
) -> AttemptResult:
    """One attempt of a CLI task (Terraform, Ansible, SQLMesh, AWS, Modal, Spark)."""
    return run_script(task, run, attempt, scope, ctx, CliKind())


def dbt_attempt(
    task: AnyDbtTask, run: TaskRun, attempt: Attempt, scope: Scope, ctx: RunContext
) -> AttemptResult:
    """One attempt of ``DbtCLI`` or an older dbt task."""
    return run_script(task, run, attempt, scope, ctx, DbtKind(ctx.settings.workspace_path))


class CliKind(PlainScript):
    """Ansible's ``ansibleConfig`` and ``outputLogFile``; Spark's stderr read as INFO."""

    def files(self, task: Any, render: Render, ctx: RunContext) -> dict[str, bytes]:
        if isinstance(task, AnsibleTask) and task.ansibleConfig is not None:
            return {"ansible.cfg": render(task.ansibleConfig).encode()}
        return {}

    def collect(self, task: Any, render: Render) -> list[str]:
        return ["log"] if isinstance(task, AnsibleTask) and task.outputLogFile else []

    def sink(self, task: Any, sink: LineSink) -> Callable[[list[Line]], None]:
        if not isinstance(task, SparkTask):
            return sink
        # Spark writes every log line to stderr: Kestra reads them all as INFO.
        return lambda lines: sink([(Stream.STDOUT, text) for _, text in lines])


class DbtKind(PlainScript):
    """dbt around its exec: profiles, its JSON log, its run results (see the module)."""

    def __init__(self, workspace: str) -> None:
        self.workspace = workspace
        self.warned = False
        self.stats: dict[str, float] = {}
        self.project_dir: str | None = None

    def commands(self, task: Any, commands: list[str], render: Render) -> list[str]:
        self.project_dir = render(task.projectDir) if task.projectDir else None
        if isinstance(task, DbtCliTask):
            return task.dbt_commands(commands, self.project_dir)
        assert isinstance(task, DbtCommandTask)
        return [*commands, task.dbt_command(self.workspace, render)]

    def files(self, task: Any, render: Render, ctx: RunContext) -> dict[str, bytes]:
        found: dict[str, bytes] = {}
        if task.profiles:
            found[task.profiles_path] = render(task.profiles).encode()
        manifest = getattr(task, "loadManifest", None)
        if manifest is not None:
            have, value = ctx.kv_value(render(manifest.namespace), render(manifest.key))
            if have and value not in (None, ""):
                text = value if isinstance(value, str) else json.dumps(value)
                found[self._in_project(MANIFEST)] = text.encode()
        return found

    def sink(self, task: Any, sink: LineSink) -> Callable[[list[Line]], None]:
        if not task.json_logs:
            return sink

        def read(lines: list[Line]) -> None:
            plain: list[Line] = []
            for stream, text in lines:
                entry = _json_log(text) if text.startswith("{") else None
                if entry is None:
                    plain.append((stream, text))
                    continue
                sink(plain)
                plain = []
                self._log(sink, entry)
            sink(plain)

        return read

    def _log(self, sink: LineSink, entry: dict[str, Any]) -> None:
        nested = entry.get("info")
        info: dict[str, Any] = nested if isinstance(nested, dict) else entry
        level = str(info.get("level", "info")).lower()
        message = str(info.get("msg", ""))
        data = entry.get("data")
        stats = data.get("stats") if isinstance(data, dict) else None
        if isinstance(stats, dict):
            for name, value in stats.items():
                if isinstance(value, int | float):
                    self.stats[str(name)] = float(value)
        if level == "warn":
            self.warned = True
        shown = {"debug": Level.DEBUG, "info": Level.INFO, "warn": Level.WARN}.get(
            level, Level.ERROR
        )
        sink.ctx.log(sink.run, shown, message, "stdout", sink.attempt)

    def collect(self, task: Any, render: Render) -> list[str]:
        if not task.parseRunResults:
            return [self._in_project(MANIFEST)]
        return [self._in_project(RUN_RESULTS), self._in_project(MANIFEST)]

    def _in_project(self, path: str) -> str:
        return f"{self.project_dir.strip('/')}/{path}" if self.project_dir else path

    def finish(self, job: FinishedScript) -> AttemptResult:
        result, run, ctx = job.result, job.run, job.ctx
        files = dict(result.outputs.get("outputFiles") or {})
        renamed = {self._in_project(RUN_RESULTS): "run_results.json"}
        renamed[self._in_project(MANIFEST)] = "manifest.json"
        for found, name in renamed.items():
            if found in files:
                files[name] = files.pop(found)
        if files:
            result.outputs["outputFiles"] = files
        with ctx.lock:
            for name, value in sorted(self.stats.items()):
                run.metrics.append(_counter(name, value))
        if "run_results.json" in files and job.task.parseRunResults:
            self._model_runs(job, files["run_results.json"])
        storing = getattr(job.task, "storeManifest", None)
        if storing is not None:
            ctx.log(
                run,
                Level.WARN,
                "storeManifest: the manifest is the outputFile manifest.json; it is not put in "
                "the KV store (a task of this executor has no KV writer; use core.kv.Set)",
            )
        if self.warned and result.state == State.SUCCESS:
            result.state = State.WARNING
            result.reason = "dbt logged a warning"
        return result

    def _model_runs(self, job: FinishedScript, uri: str) -> None:
        """One task run per model of ``run_results.json``, under the dbt task's run."""
        ctx, run = job.ctx, job.run
        if ctx.services is None:
            return
        try:
            with ctx.services.artifacts.open(uri) as fh:
                results = json.load(fh).get("results") or []
        except (ExecutorError, OSError, ValueError, AttributeError) as exc:
            ctx.log(run, Level.WARN, f"run_results.json could not be read: {exc}")
            return
        for entry in results:
            if isinstance(entry, dict) and isinstance(entry.get("unique_id"), str):
                model = _model_run(job.task, run, entry)
                ctx.add_task_run(model)
                level = Level.ERROR if model.state.current == State.FAILED else Level.INFO
                summary = f"{model.task_id} => {entry.get('status')}"
                if isinstance(entry.get("execution_time"), int | float):
                    summary += f" in {entry['execution_time']:.2f}s"
                ctx.log(model, level, summary, "executor", 1)
                if entry.get("message"):
                    ctx.log(model, level, str(entry["message"]), "executor", 1)


_STATES = {
    "success": State.SUCCESS,
    "pass": State.SUCCESS,
    "skipped": State.SKIPPED,
    "skip": State.SKIPPED,
    "warn": State.WARNING,
    "error": State.FAILED,
    "fail": State.FAILED,
    "runtime error": State.FAILED,
}


def _model_run(task: DbtTask, parent: TaskRun, entry: dict[str, Any]) -> TaskRun:
    """The task run of one model's result, its times taken from dbt's timing."""
    state = _STATES.get(str(entry.get("status", "")).lower(), State.WARNING)
    starts, ends = [], []
    execute = None
    for timing in entry.get("timing") or []:
        if not isinstance(timing, dict):
            continue
        start, end = _when(timing.get("started_at")), _when(timing.get("completed_at"))
        if start:
            starts.append(start)
            if timing.get("name") == "execute":
                execute = start
        if end:
            ends.append(end)
    moment = now()
    created, done = min(starts, default=moment), max(ends, default=moment)
    history = [(State.CREATED, created), (State.RUNNING, execute or created), (state, done)]
    model = TaskRun(entry["unique_id"], task.type, parent.id)
    model.state = StateHistory(state, history)
    attempt = Attempt(1)
    attempt.state = StateHistory(state, list(history))
    model.attempts.append(attempt)
    response = entry.get("adapter_response") or {}
    for key, name in (("rows_affected", "rows.affected"), ("bytes_processed", "bytes.processed")):
        value = response.get(key) if isinstance(response, dict) else None
        if isinstance(value, int | float):
            model.metrics.append(_counter(name, float(value)))
    if state == State.FAILED and entry.get("message"):
        model.reason = str(entry["message"])
    return model


def _when(text: Any) -> datetime | None:
    if not isinstance(text, str) or not text:
        return None
    try:
        found = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if found.tzinfo is None:
        found = found.replace(tzinfo=UTC)
    return found


def _counter(name: str, value: float) -> dict[str, Any]:
    return {"name": name, "type": "counter", "value": value, "tags": {}, "timestamp": iso(now())}


def _json_log(text: str) -> dict[str, Any] | None:
    """A dbt JSON log line, or ``None`` for any other line."""
    try:
        entry = json.loads(text)
    except ValueError:
        return None
    if not isinstance(entry, dict) or not ("info" in entry or "level" in entry):
        return None
    return entry


HANDLES: dict[type[Any], Handler[Any]] = {
    **dict.fromkeys(
        (TerraformTask, AnsibleTask, SqlMeshTask, ModalTask, SparkTask, AwsCliTask, TrivyTask),
        in_own_workdir(with_attempts(cli_attempt)),
    ),
    DbtCliTask: in_own_workdir(with_attempts(dbt_attempt)),
    DbtCommandTask: in_own_workdir(with_attempts(dbt_attempt)),
}
"""What this module runs, by task model (``run.handlers`` collects it)."""
