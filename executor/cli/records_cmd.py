"""``executor executions``, ``show``, ``logs`` and ``kill``: what the record store knows.

Every command opens the store (which marks executions whose executor died), accepts an
unambiguous prefix of an execution id, and prints ``--json`` in Kestra's execution shape.
Results go to stdout; problems are raised as ExecutorError subclasses for the main CLI.
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import click
import structlog

from executor.cli.console import format_line, printable, run_name
from executor.cli.context import AppContext, pass_app
from executor.errors import ExecutorError, UsageError
from executor.model import Execution, LogLine, State, TaskRun, iso
from executor.store.db import Store
from executor.store.records import StoredExecution, StoredLogLine, output_files

log = structlog.get_logger(__name__)

FOLLOW_POLL_SECONDS = 0.2
OWNER_CHECK_SECONDS = 2.0
CHUNKS_PER_READ = 200  # memory stays bounded however long the log
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhdw])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def open_store(app: AppContext) -> Store:
    """Open the record store and mark executions whose executor died.

    Returns:
        The open store; close it when done.

    Raises:
        StoreError: the store is corrupt, locked for too long, or cannot be created.
    """
    store = app.stores().records.open(recover=False)
    try:
        for execution_id in store.recover_dead():
            log.warning("execution marked FAILED: its executor died", execution_id=execution_id)
    except ExecutorError:
        store.close()
        raise
    return store


def parse_since(text: str, now: datetime | None = None) -> datetime:
    """A ``--since`` value: an age (``30m``, ``2h``, ``7d``) or an ISO date/time (UTC if naive).

    Raises:
        UsageError: the value is neither.
    """
    now = now or datetime.now(UTC)
    match = _DURATION.match(text.strip())
    if match:
        return now - timedelta(**{_UNITS[match.group(2)]: float(match.group(1))})
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise UsageError(
            f"--since expects an age like 30m, 2h, 7d or an ISO date, got {text!r}"
        ) from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def _stamp(when: datetime | None) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S") if when else "-"


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.2f}s"
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}m{secs:02d}s" if minutes < 60 else f"{minutes // 60}h{minutes % 60:02d}m"


def _echo_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, default=str))


class _TakesExecutionId(click.Command):
    """A command whose ID argument may start with '-' (ids are URL-safe base64, like '-Qx3…').

    A token that starts with '-' but is none of the command's options is the id, not an
    unknown option.
    """

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        options = {
            name: param
            for param in self.params
            if isinstance(param, click.Option)
            for name in (*param.opts, *param.secondary_opts)
        }
        known = set(options) | set(ctx.help_option_names)
        kept: list[str] = []
        execution_id: str | None = None
        takes_value = False
        for index, arg in enumerate(args):
            if arg == "--":
                kept.extend(args[index:])
                break
            if takes_value:
                takes_value = False
            elif (
                execution_id is None
                and arg.startswith("-")
                and len(arg) > 1
                and arg.split("=", 1)[0] not in known
            ):
                execution_id = arg
                continue
            elif arg in options and not options[arg].is_flag and not options[arg].count:
                takes_value = True
            kept.append(arg)
        if execution_id is not None:
            kept += ["--", execution_id] if "--" not in kept else [execution_id]
        return super().parse_args(ctx, kept)


# ----- executions


@click.command("executions")
@click.option("--flow", help="Only executions of this flow id.")
@click.option("--namespace", help="Only this namespace and the namespaces below it.")
@click.option(
    "--state",
    "states",
    multiple=True,
    metavar="STATE",
    type=click.Choice([s.value for s in State], case_sensitive=False),
    help="Only executions in this state; repeat for several.",
)
@click.option(
    "--since",
    metavar="AGE|DATE",
    help="Only executions started since: 30m, 2h, 7d or an ISO date/time (UTC).",
)
@click.option(
    "-n",
    "--limit",
    type=click.IntRange(min=1),
    default=50,
    show_default=True,
    help="At most this many.",
)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list of executions.")
@pass_app
def executions(
    app: AppContext,
    flow: str | None,
    namespace: str | None,
    states: tuple[str, ...],
    since: str | None,
    limit: int,
    as_json: bool,
) -> None:
    """List executions, newest first.

    \b
    Examples:
      executor executions --state FAILED --since 1d
      executor executions --namespace company.team --flow etl
    """
    since_at = parse_since(since) if since else None
    with open_store(app) as store:
        found = store.list_executions(
            flow=flow,
            namespace=namespace,
            states=[State(s.upper()) for s in states],
            since=since_at,
            limit=limit,
        )
        if as_json:
            _echo_json([store.get_execution(e.id).execution.to_json() for e in found])
            return
    if not found:
        click.echo(
            "no executions" + (" match" if flow or namespace or states or since else ""), err=True
        )
        return
    flow_width = max(4, *(len(f"{e.namespace}.{e.flow_id}") for e in found))
    click.echo(
        f"{'ID':<22}  {'FLOW':<{flow_width}}  {'STATE':<8}  {'STARTED (UTC)':<19}  "
        f"{'DURATION':>8}  REASON"
    )
    for e in found:
        click.echo(
            f"{e.id:<22}  {e.namespace + '.' + e.flow_id:<{flow_width}}  "
            f"{e.state.value:<8}  {_stamp(e.start):<19}  {_duration(e.duration):>8}  "
            f"{e.reason or ''}".rstrip()
        )


# ----- show


@click.command("show", cls=_TakesExecutionId)
@click.argument("execution_id", metavar="ID")
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print the execution as JSON (Kestra's execution shape, like `run --json`).",
)
@pass_app
def show(app: AppContext, execution_id: str, as_json: bool) -> None:
    """Show execution ID (or an unambiguous start of it): its tasks, states, outputs, files."""
    with open_store(app) as store:
        stored = store.get_execution(store.resolve_id(execution_id))
    if as_json:
        _echo_json(stored.execution.to_json())
        return
    click.echo("\n".join(describe(stored)))


def describe(stored: StoredExecution) -> list[str]:
    """The human-readable description of a stored execution, as ``executor show`` prints it.

    Args:
        stored: the execution read from the store.

    Returns:
        The lines: header, inputs, images, then the task tree with attempts, outputs and files.
    """
    e = stored.execution
    lines = [
        f"execution {e.id}  {e.namespace}.{e.flow_id}  {e.state.current.value}"
        + (f" in {_duration(e.state.duration)}" if e.state.duration is not None else "")
    ]
    lines.append(
        f"  started   {_stamp(e.state.start)} UTC"
        + (f"   ended {_stamp(e.state.end)} UTC" if e.state.end else "")
    )
    running = "" if e.state.current.terminal else "  (running)"
    lines.append(f"  executor  pid {stored.owner.pid} on {stored.owner.host}{running}")
    if e.reason:
        lines.append(f"  reason    {e.reason}")
    if e.inputs:
        lines.append(f"  inputs    {json.dumps(e.inputs, default=str)}")
    for ref, image_id in sorted(e.images.items()):
        digest = e.image_digests.get(ref)
        lines.append(f"  image     {ref} -> {image_id}" + (f" ({digest})" if digest else ""))
    lines.append("tasks")
    children: dict[str | None, list[TaskRun]] = {}
    known = {run.id for run in e.task_runs}
    for run in e.task_runs:
        parent = run.parent_task_run_id if run.parent_task_run_id in known else None
        children.setdefault(parent, []).append(run)
    _describe_runs(children, None, "  ", _name_width(children, None, 0), lines)
    return lines


def _name_width(children: dict[str | None, list[TaskRun]], parent: str | None, depth: int) -> int:
    """The width that lines up every state column: each level of the tree indents by 3."""
    width = 12
    for run in children.get(parent, []):
        width = max(
            width,
            3 * depth + len(_name(run)),
            _name_width(children, run.id, depth + 1),
        )
    return width


def _describe_runs(
    children: dict[str | None, list[TaskRun]],
    parent: str | None,
    prefix: str,
    width: int,
    lines: list[str],
) -> None:
    runs = children.get(parent, [])
    for index, run in enumerate(runs):
        last = index == len(runs) - 1
        branch = "" if parent is None else ("└─ " if last else "├─ ")
        lines.append(prefix + branch + _task_line(run, width - len(prefix + branch) + 2))
        inner = prefix + ("" if parent is None else ("   " if last else "│  "))
        detail = inner + ("│    " if children.get(run.id) else "     ")
        lines.extend(detail + text for text in _task_details(run))
        _describe_runs(children, run.id, inner, width, lines)


def _name(run: TaskRun) -> str:
    return run_name(run.task_id, () if run.value is None else (run.value,))


def _task_line(run: TaskRun, width: int) -> str:
    state = run.state.current
    name = _name(run)
    text = f"{name:<{max(width, len(name))}}  {state.value:<8}"
    text += f"  {_duration(run.state.duration):>7}" if run.state.duration is not None else ""
    last = run.attempts[-1] if run.attempts else None
    if last is not None and last.exit_code is not None:
        text += f"  exit {last.exit_code}"
    if last is not None and last.oom_killed:
        text += "  OOM-killed"
    if run.reason and state != State.SUCCESS:
        text += f"  ({run.reason})"
    return text.rstrip()


def _task_details(run: TaskRun) -> Iterable[str]:
    if len(run.attempts) > 1:
        for a in run.attempts:
            yield (
                f"attempt {a.number}  {a.state.current.value:<8}  "
                f"{_duration(a.state.duration):>7}"
                + (f"  exit {a.exit_code}" if a.exit_code is not None else "")
                + ("  OOM-killed" if a.oom_killed else "")
                + (f"  ({a.reason})" if a.reason else "")
            )
    files = output_files(run.outputs)
    outputs = {k: v for k, v in run.outputs.items() if k not in ("outputFiles", "uris")}
    if outputs:
        yield f"outputs  {json.dumps(outputs, default=str)}"
    for name, uri in sorted(files.items()):
        yield f"file     {name}  {uri}"
    for metric in run.metrics:
        yield (f"metric   {metric.get('name')} = {metric.get('value')} ({metric.get('type')})")
    if run.state.current.failed:
        yield from (f"stderr | {printable(text)}" for text in run.stderr_tail[-5:])


# ----- logs


def _log_json(line: LogLine, execution: Execution) -> str:
    """A log line in the shape of Kestra's log entries, one JSON object per line."""
    return json.dumps(
        {
            "namespace": execution.namespace,
            "flowId": execution.flow_id,
            "executionId": line.execution_id,
            "taskId": line.task_id,
            "taskRunId": line.task_run_id,
            "attemptNumber": line.attempt,
            "timestamp": iso(line.timestamp),
            "level": line.level.value,
            "stream": line.stream,
            "message": line.message,
        },
        ensure_ascii=False,
    )


@click.command("logs", cls=_TakesExecutionId)
@click.argument("execution_id", metavar="ID")
@click.option("-t", "--task", "task_id", metavar="TASK", help="Only the lines of this task.")
@click.option(
    "-f", "--follow", is_flag=True, help="Keep printing new lines until the execution ends."
)
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="One JSON object per line, in the shape of Kestra's log entries.",
)
@pass_app
def logs(
    app: AppContext, execution_id: str, task_id: str | None, follow: bool, as_json: bool
) -> None:
    """Print the log of execution ID (or an unambiguous start of it), oldest line first."""
    with open_store(app) as store:
        full_id = store.resolve_id(execution_id)
        execution = store.get_execution(full_id).execution
        if (
            task_id is not None
            and execution.state.current.terminal
            and not any(r.task_id == task_id for r in execution.task_runs)
        ):
            known = ", ".join(dict.fromkeys(r.task_id for r in execution.task_runs)) or "none"
            raise UsageError(f"execution {full_id} has no task {task_id!r} (tasks: {known})")

        def render(line: LogLine) -> str:
            return _log_json(line, execution) if as_json else format_line(line, date=True)

        try:
            _print_logs(store, full_id, task_id, follow, render)
        except BrokenPipeError:
            # `executor logs ID | head`: the reader left; that is not an error
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            sys.exit(0)


def _print_logs(
    store: Store,
    execution_id: str,
    task_id: str | None,
    follow: bool,
    render: Callable[[LogLine], str],
) -> None:
    last = 0
    ending = False
    owner_checked = time.monotonic()
    while True:
        rows: list[StoredLogLine] = store.logs(
            execution_id, task_id=task_id, after=last, limit=CHUNKS_PER_READ
        )
        if rows:
            sys.stdout.write("".join(render(r.line) + "\n" for r in rows))
            sys.stdout.flush()
            last = rows[-1].row_id
            continue
        if not follow or ending:
            return
        # a line is committed before the state that follows it: read once more after the end
        if store.execution_state(execution_id).terminal:
            ending = True
            continue
        if time.monotonic() - owner_checked > OWNER_CHECK_SECONDS:
            owner_checked = time.monotonic()
            if execution_id in store.recover_dead():
                ending = True
                continue
        time.sleep(FOLLOW_POLL_SECONDS)


# ----- kill


@click.command("kill", cls=_TakesExecutionId)
@click.argument("execution_id", metavar="ID")
@click.option(
    "--wait",
    "wait_seconds",
    type=click.FloatRange(min=0),
    default=60.0,
    show_default=True,
    help="Seconds to wait for the execution to end.",
)
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print the ended execution as JSON (Kestra's execution shape).",
)
@pass_app
def kill(app: AppContext, execution_id: str, wait_seconds: float, as_json: bool) -> None:
    """Kill running execution ID: its processes stop, its containers and volume are removed.

    The executor that runs it gets SIGTERM and ends it KILLED, as Ctrl-C would; this
    waits until it has cleaned up. Only an execution started on this host can be killed.
    """
    from executor import app as root

    with open_store(app) as store:
        full_id = store.resolve_id(execution_id)
    killed = root.kill_execution(
        full_id,
        KILLED_REASON,
        records=lambda: open_store(app),
        signal_wait=wait_seconds,
    )
    if killed.kill == root.Kill.REFUSED:
        raise UsageError(killed.message)
    if killed.kill == root.Kill.ALREADY_ENDED and killed.state is not None:
        click.echo(
            f"execution {full_id} already ended {killed.state.value}; nothing to kill", err=True
        )
    with open_store(app) as store:
        e = store.get_execution(full_id).execution
    if as_json:
        _echo_json(e.to_json())
    elif killed.kill != root.Kill.ALREADY_ENDED:
        click.echo(
            f"execution {full_id} {e.state.current.value}" + (f" ({e.reason})" if e.reason else "")
        )


KILLED_REASON = "killed with `executor kill`"


COMMANDS = (executions, show, logs, kill)
