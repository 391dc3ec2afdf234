"""``executor worker`` (run a server's executions on this host) and ``executor workers``."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import click

from executor.cli.context import AppContext, pass_app
from executor.cli.log_format import log_format_option, service_logs
from executor.errors import UsageError


@click.command("worker")
@click.option(
    "--broker", required=True, metavar="redis://HOST:PORT/DB", help="The server's Redis broker."
)
@click.option(
    "--server", "server_url", required=True, metavar="URL", help="The server, http://HOST:PORT."
)
@click.option(
    "--queue",
    "queues",
    multiple=True,
    help="A queue to take executions from (repeatable) [default: default].",
)
@click.option(
    "--label",
    "labels",
    multiple=True,
    help="A label such as gpu (repeatable): flows whose workerGroup.key names it land here.",
)
@click.option(
    "--slots", type=click.IntRange(min=1), default=2, show_default=True, help="Executions at once."
)
@click.option("--name", default=None, help="This worker's name [default: HOSTNAME-PID].")
@click.option(
    "--heartbeat",
    "heartbeat_seconds",
    type=click.FloatRange(min=0.2),
    default=5.0,
    show_default=True,
    help="Seconds between heartbeats to the server.",
)
@log_format_option
@click.option(
    "--token",
    envvar="EXECUTOR_WORKER_TOKEN",
    default=None,
    metavar="TOKEN",
    help="This worker's credential: one of the server's worker tokens "
    "(EXECUTOR_SERVER_WORKER_TOKENS). Also EXECUTOR_WORKER_TOKEN.",
)
@pass_app
def worker(
    app: AppContext,
    broker: str,
    server_url: str,
    queues: tuple[str, ...],
    labels: tuple[str, ...],
    slots: int,
    name: str | None,
    heartbeat_seconds: float,
    token: str | None,
) -> None:
    """Run the executions of an `executor server --broker` on this host's engine.

    \b
    The engine is DOCKER_HOST's (or the local socket); files live in this
    worker's own EXECUTOR_HOME; nothing is shared with the server but its API:
    flows, inputs, FILE inputs and namespace files come from it, states, task
    runs and logs go back to it, and so do output files. Its credential is a
    worker token of the server (--token or EXECUTOR_WORKER_TOKEN), never an
    API user's.

    \b
    Example (a second host joins):
      EXECUTOR_WORKER_TOKEN=... executor worker --broker redis://10.0.0.1:6379/0 \\
        --server http://10.0.0.1:8080
    """
    from executor.worker.service import WorkerOptions, default_name, serve

    if not broker.startswith(("redis://", "rediss://")):
        raise UsageError(f"--broker {broker!r}: expected a Redis URL (redis://host:port/db)")
    if not server_url.startswith(("http://", "https://")):
        raise UsageError(f"--server {server_url!r}: expected http://host:port")
    if not token:
        raise UsageError(
            "a worker needs its credential: --token TOKEN (or EXECUTOR_WORKER_TOKEN), one of "
            "the server's worker tokens (EXECUTOR_SERVER_WORKER_TOKENS)"
        )
    options = WorkerOptions(
        broker=broker,
        server=server_url,
        queues=queues or ("default",),
        labels=labels,
        slots=slots,
        name=name or default_name(),
        heartbeat_seconds=heartbeat_seconds,
        token=token,
    )
    announce = service_logs(app, "executor.worker")
    if app.json_logs:
        _celery_speaks_json()
    serve(app.settings, options, announce)


def _celery_speaks_json() -> None:
    """Keep Celery's own lines JSON: its logging, and the notices it prints at shutdown."""
    import celery.apps.worker
    import structlog
    from celery.signals import setup_logging

    # a receiver of setup_logging keeps Celery from installing its own format on the root
    # logger: its lines keep going through the JSON handler service_logs() put there
    setup_logging.connect(_keep_our_logging, weak=False)
    say = structlog.get_logger("celery.apps.worker")
    # Celery prints "worker: Warm shutdown" and the like straight to the terminal
    celery.apps.worker.safe_say = lambda msg, f=None: say.warning(str(msg).strip())


def _keep_our_logging(**_kwargs: Any) -> None:
    """Celery's ``setup_logging`` signal: logging is already set up (JSON), leave it so."""


@click.command("workers")
@click.option(
    "--server", "server_url", required=True, metavar="URL", help="The server, http://HOST:PORT."
)
@click.option("--json", "as_json", is_flag=True, help="The server's JSON, as is.")
def workers(server_url: str, as_json: bool) -> None:
    """The workers of a server: host, engine, slots busy/free, last heartbeat, what they run."""
    import json

    from executor.worker.client import WorkerClient

    rows: list[dict[str, Any]] = WorkerClient(server_url, patience=0).call("GET", "/workers").json()
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo("no worker has reported to this server")
        return
    now = datetime.now(UTC)
    click.echo(f"{'NAME':24} {'HOST':16} {'ENGINE':14} {'BUSY/SLOTS':10} {'HEARTBEAT':12} RUNNING")
    for row in rows:
        age = (now - datetime.fromisoformat(row["lastHeartbeat"])).total_seconds()
        beat = f"{age:.0f}s ago" + ("" if row["alive"] else " LOST")
        busy = f"{row['busy']}/{row['slots']}"
        click.echo(
            f"{row['name']:24} {row['host']:16} {row['engineId'][:14]:14} {busy:10} {beat:12} "
            + (", ".join(row["running"]) or "-")
        )
