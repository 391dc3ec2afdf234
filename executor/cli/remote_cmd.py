"""``executor run FLOW --server URL`` and ``executor flows push DIR --server URL``.

``run --server`` checks the flow locally (the same messages as a local run), stores it on the
server, submits it and shows it with the same view as a local run: log lines from the server's
log stream, task states from the execution. Ctrl-C kills the remote execution. Exit codes are
those of a local run: 0 SUCCESS or WARNING, 1 otherwise, 130 interrupted.
"""

from __future__ import annotations

import queue
import sys
import threading
import time
from pathlib import Path

import click

from executor.cli.console import summary
from executor.cli.context import AppContext, pass_app
from executor.cli.remote import RemoteServer, log_from_json
from executor.cli.remote_timeline import Timeline
from executor.errors import ExecutorError, Interrupted, UsageError
from executor.model import Execution, Level, LogLine, RunListener, State
from executor.model.from_json import execution_from_json

POLL_SECONDS = 0.3
KILL_WAIT_SECONDS = 60


def run_on_server(
    flow: Path, given: dict[str, str], url: str, *, quiet: bool, debug: bool, as_json: bool
) -> None:
    """Submit FLOW to the server at ``url`` and follow it to its end (exits with its code)."""
    import json

    from executor import app as root
    from executor.cli.live import make_view

    loaded = root.load_flow(flow)
    spec = loaded.flow
    server = RemoteServer(url)
    server.push_flow(loaded.text, spec.namespace, spec.id)
    files = {
        i.id: Path(given.pop(i.id)).expanduser()
        for i in spec.inputs
        if i.type == "FILE" and i.id in given
    }
    for name, path in files.items():
        if not path.is_file():
            raise UsageError(f"input '{name}' (FILE): no such file {path}")
    execution_id = server.submit(spec.namespace, spec.id, given, files)["id"]
    view = make_view(spec, min_level=Level.DEBUG if debug else Level.INFO, quiet=quiet)
    interrupted = False
    with view:
        try:
            execution = _follow(server, execution_id, view)
        except KeyboardInterrupt:
            interrupted = True
            server.kill(execution_id)
            execution = _until_ended(server, execution_id, KILL_WAIT_SECONDS)
    click.echo(summary(execution), err=True)
    if interrupted:
        raise Interrupted(f"interrupted: execution {execution_id} killed on the server")
    if as_json:
        click.echo(json.dumps(server.execution(execution_id), indent=2))
    ok = execution.state.current in (State.SUCCESS, State.WARNING)
    sys.exit(0 if ok else 1)


def _follow(server: RemoteServer, execution_id: str, view: RunListener) -> Execution:
    """Feed the view until the execution ends: every log line once, everything in the order it
    happened on the server."""
    lines: queue.SimpleQueue[LogLine] = queue.SimpleQueue()

    def read_stream() -> None:
        try:
            for entry in server.follow_logs(execution_id):
                lines.put(log_from_json(entry))
        except ExecutorError:
            return  # the state poll goes on; the missing lines are fetched at the end

    threading.Thread(target=read_stream, name="log-stream", daemon=True).start()
    timeline = Timeline(view)
    while True:
        execution = execution_from_json(server.execution(execution_id))
        while not lines.empty():
            timeline.line(lines.get())
        timeline.snapshot(execution)
        if execution.state.current.terminal:
            for entry in server.logs(execution_id):
                timeline.line(log_from_json(entry))
            timeline.release(everything=True)
            return execution
        timeline.release()
        time.sleep(POLL_SECONDS)


def _until_ended(server: RemoteServer, execution_id: str, timeout: float) -> Execution:
    deadline = time.monotonic() + timeout
    while True:
        execution = execution_from_json(server.execution(execution_id))
        if execution.state.current.terminal or time.monotonic() > deadline:
            return execution
        time.sleep(POLL_SECONDS)


@click.group("flows")
def flows() -> None:
    """Flows kept by a server."""


@flows.command("push")
@click.argument("directory", type=click.Path(path_type=Path, file_okay=False, exists=True))
@click.option("--server", "url", required=True, help="The server, e.g. http://127.0.0.1:8080.")
@click.option("--namespace", default=None, help="Only this namespace (every flow must be in it).")
@click.option(
    "--no-delete",
    is_flag=True,
    help="Keep the server's flows of the namespace that DIRECTORY does not hold.",
)
@pass_app
def push(
    app: AppContext, directory: Path, url: str, namespace: str | None, no_delete: bool
) -> None:
    """Make each namespace's flows on the server those of DIRECTORY (*.yml, *.yaml).

    Like Kestra's `flow namespace update`: every flow is checked here first; then
    per namespace the server stores them (a changed flow gets a new revision) and,
    unless --no-delete, deletes that namespace's flows DIRECTORY does not hold.
    """
    from executor import app as root

    by_namespace: dict[str, list[str]] = {}
    problems: list[str] = []
    for path in sorted([*directory.rglob("*.yml"), *directory.rglob("*.yaml")]):
        try:
            loaded = root.load_flow(path)
        except ExecutorError as exc:
            problems.append(str(exc))
            continue
        if namespace is not None and loaded.flow.namespace != namespace:
            problems.append(f"{path}: namespace {loaded.flow.namespace}, not {namespace}")
            continue
        by_namespace.setdefault(loaded.flow.namespace, []).append(loaded.text)
    if problems:
        raise UsageError("nothing pushed:\n  " + "\n  ".join(problems))
    if not by_namespace:
        raise UsageError(f"no flow (*.yml, *.yaml) in {directory}")
    server = RemoteServer(url)
    for ns, texts in sorted(by_namespace.items()):
        stored = server.update_namespace(ns, texts, delete=not no_delete)
        shown = ", ".join(f"{f['id']} (revision {f['revision']})" for f in stored)
        click.echo(f"{ns}: {shown}")
