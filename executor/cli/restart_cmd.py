"""``executor restart ID`` and ``executor replay ID``: run an ended execution again.

Locally, the execution is taken from this home's store and run here with the live view, like
``executor run``; its flow is the file it ran (``--flow`` names another). With ``--server URL``
the server restarts or replays it (its slots or workers run it) and this command follows it.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from executor.cli.context import AppContext, pass_app
from executor.errors import UsageError

if TYPE_CHECKING:
    from executor.flow.loaded import LoadedFlow
    from executor.model import Execution

_POLL = 0.3
_FLOW_HELP = "The flow file to run [default: the file the execution ran]."
_SERVER_HELP = (
    "Ask this `executor server` (its slots or workers run it) and wait for its end. "
    "Credentials: KESTRA_USER/KESTRA_PASSWORD or KESTRA_API_TOKEN."
)


def _flow_option(f: Any) -> Any:
    return click.option(
        "--flow", "flow_file", type=click.Path(path_type=Path, dir_okay=False), help=_FLOW_HELP
    )(f)


def _common(f: Any) -> Any:
    f = click.option("--server", "server_url", default=None, metavar="URL", help=_SERVER_HELP)(f)
    f = click.option("-q", "--quiet", is_flag=True, help="Print only the final summary.")(f)
    return click.option(
        "--json", "as_json", is_flag=True, help="Print the execution as one JSON document."
    )(f)


@click.command("restart")
@click.argument("execution_id", metavar="ID")
@_flow_option
@_common
@pass_app
def restart(
    app: AppContext,
    execution_id: str,
    flow_file: Path | None,
    as_json: bool,
    quiet: bool,
    server_url: str | None,
) -> None:
    """Restart execution ID (FAILED or KILLED) in itself: what failed runs again.

    Task runs that ended well are kept with their outputs and are not run
    again; each failed (or killed) task runs again as a new attempt of the same
    task run, then the tasks after it run as they would have. A WorkingDirectory
    is the unit: its container is gone, so when one of its tasks failed, the
    whole WorkingDirectory runs again. `errors` and `finally` tasks run again.
    Fix the cause first (a KV key, a file, the flow: its file is read again).

    Exit code: 0 when it ends SUCCESS or WARNING, 1 otherwise, 2 when it
    cannot be restarted (it is not FAILED or KILLED).

    \b
    Example:
      executor kv set company.team api_key s3cr3t
      executor restart 5Iw8dTlC0aWbGhWTYGDzd
    """
    if server_url is not None:
        _on_server(server_url, f"/executions/{execution_id}/restart", {}, as_json, quiet)
        return
    from executor import app as root
    from executor.cli.records_cmd import open_store
    from executor.host import Owner

    flows = _FlowFiles(app, flow_file)
    with open_store(app) as store:
        full_id = store.resolve_id(execution_id)
        execution = root.restart_execution(store, full_id, flows, Owner.current())
    click.echo(f"execution {full_id} restarted", err=True)
    _run(app, flows, execution, as_json, quiet)


@click.command("replay")
@click.argument("execution_id", metavar="ID")
@click.option(
    "--from",
    "from_task",
    default=None,
    metavar="TASK",
    help="The task id to start at (its first task run) [default: the start of the flow].",
)
@click.option(
    "--revision",
    type=click.IntRange(min=1),
    default=None,
    metavar="N",
    help="With --server: the flow revision to run [default: the one the execution ran].",
)
@_flow_option
@_common
@pass_app
def replay(
    app: AppContext,
    execution_id: str,
    from_task: str | None,
    revision: int | None,
    flow_file: Path | None,
    as_json: bool,
    quiet: bool,
    server_url: str | None,
) -> None:
    """Replay execution ID as a new execution, from task TASK on.

    The task runs of the tasks before TASK (in the flow's order) are copied
    into the new execution with their outputs and do not run; TASK and
    everything after it run again, with the original's inputs. A task inside
    a WorkingDirectory replays the whole WorkingDirectory. The new execution
    names the original (`originalId`) and carries the label system.replay.

    \b
    Examples:
      executor replay 5Iw8dTlC0aWbGhWTYGDzd --from transform
      executor replay 5Iw8dTlC0aWbGhWTYGDzd --from transform --server http://127.0.0.1:8080
    """
    from executor import app as root
    from executor.cli.records_cmd import open_store

    if server_url is not None:
        params: dict[str, Any] = {}
        if revision is not None:
            params["revision"] = revision
        if from_task is not None:
            params["taskRunId"] = _remote_task_run(server_url, execution_id, from_task)
        _on_server(server_url, f"/executions/{execution_id}/replay", params, as_json, quiet)
        return
    if revision is not None:
        raise UsageError("--revision: a local execution ran a flow file; use --flow FILE")
    flows = _FlowFiles(app, flow_file)
    with open_store(app) as store:
        full_id = store.resolve_id(execution_id)
        execution = root.replay_execution(store, full_id, flows, task_id=from_task)
    click.echo(f"replaying execution {full_id} as {execution.id}", err=True)
    _run(app, flows, execution, as_json, quiet)


class _FlowFiles:
    """The flow file an execution ran (or the one ``--flow`` names), loaded once."""

    def __init__(self, app: AppContext, given: Path | None) -> None:
        self.app = app
        self.given = given
        self.loaded: LoadedFlow | None = None

    def __call__(self, execution: Execution, revision: int | None) -> LoadedFlow:
        from executor import app as root

        path = self.given or (Path(execution.flow_file) if execution.flow_file else None)
        if path is None:
            where = (
                f" (it ran on a server, revision {execution.flow_revision}: add --server URL)"
                if execution.flow_revision is not None
                else ""
            )
            raise UsageError(
                f"execution {execution.id}: no flow file is recorded for it{where};"
                " name it with --flow FILE"
            )
        if not path.is_file():
            raise UsageError(f"--flow: no such flow file {path} (the execution ran it)")
        self.loaded = root.load_flow(path, self.app.settings.envs)
        return self.loaded


def _run(
    app: AppContext, flows: _FlowFiles, execution: Execution, as_json: bool, quiet: bool
) -> None:
    from executor.cli.local_run import run_here

    assert flows.loaded is not None  # the restart or replay loaded it
    run_here(
        app,
        flows.loaded,
        execution,
        {},
        flows_dir=None,
        quiet=quiet,
        debug=False,
        as_json=as_json,
        again=True,
    )


def _remote_task_run(url: str, execution_id: str, task_id: str) -> str:
    from executor.cli.remote import RemoteServer

    execution = RemoteServer(url).execution(execution_id)
    for run in execution.get("taskRunList") or []:
        if run.get("taskId") == task_id:
            return str(run["id"])
    raise UsageError(f"--from: execution {execution_id} has no task run of task '{task_id}'")


def _on_server(url: str, path: str, params: dict[str, Any], as_json: bool, quiet: bool) -> None:
    """Ask the server, wait for the execution's end, say how it ended; exit with its code."""
    from executor.cli.console import summary
    from executor.cli.remote import RemoteServer
    from executor.model import State
    from executor.model.from_json import execution_from_json

    server = RemoteServer(url)
    answer = server.request("POST", path, params=params).json()
    execution_id = str(answer["id"])
    if not quiet:
        click.echo(f"execution {execution_id} {answer['state']['current']} on {url}", err=True)
    while True:
        data = server.execution(execution_id)
        execution = execution_from_json(data)
        if execution.state.current.terminal:
            break
        time.sleep(_POLL)
    click.echo(summary(execution), err=True)
    if as_json:
        click.echo(json.dumps(data, indent=2))
    sys.exit(0 if execution.state.current in (State.SUCCESS, State.WARNING) else 1)
