"""``executor server``: serve Kestra's REST API, with a durable queue and execution slots."""

from __future__ import annotations

import click

from executor.cli.context import AppContext, pass_app
from executor.cli.log_format import log_format_option, service_logs


@click.command("server")
@click.option("--host", default=None, help="Address to listen on [default: 127.0.0.1].")
@click.option("--port", type=int, default=None, help="TCP port [default: 8080].")
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=None,
    help="Executions that run at once [default: the CPU count, at least 2].",
)
@click.option(
    "--broker",
    default=None,
    metavar="redis://HOST:PORT/DB",
    help="Send executions to `executor worker` processes through this Redis broker "
    "instead of running them here [env: EXECUTOR_BROKER_URL].",
)
@click.option(
    "--retention",
    default=None,
    metavar="DURATION",
    help="Purge executions that ended longer ago than this (ISO-8601: P90D), with their logs "
    "and files, at start and every hour [env: EXECUTOR_SERVER_RETENTION; default: keep all].",
)
@log_format_option
@pass_app
def server(
    app: AppContext,
    host: str | None,
    port: int | None,
    workers: int | None,
    broker: str | None,
    retention: str | None,
) -> None:
    """Serve Kestra's REST API (/api/v1 and /api/v1/main) and a web UI until Ctrl-C.

    \b
    The web UI is at http://HOST:PORT/ui (by default http://127.0.0.1:8080/ui),
    the API's documentation at http://HOST:PORT/api/docs.

    \b
    Executions submitted are queued on disk (in the store) and run by WORKERS
    slots; a server restarted runs what was queued. Ctrl-C kills the running
    executions (KILLED, "server stopped"), removes their containers and stops;
    queued ones stay queued for the next start.

    \b
    With --broker, executions go to workers on other hosts (`executor worker`),
    on the queue of the flow's workerGroup.key ("default" when none is set).

    \b
    Listening on anything but a loopback address needs users or tokens
    (EXECUTOR_SERVER_USERS=name:password, EXECUTOR_SERVER_TOKENS=token, or
    server.yaml in the home), else the server refuses to start (exit 6).

    \b
    Example (hello.yaml in flows/ holds a flow company.team.hello):
      executor server --port 8080
      executor flows push flows/ --server http://127.0.0.1:8080 --no-delete
      KESTRA_HOSTNAME=http://127.0.0.1:8080 python -c \\
        "from kestra import Flow; print(Flow().execute('company.team', 'hello'))"
    """
    from executor.server.config import ServerConfig
    from executor.server.serve import serve

    config = ServerConfig.load(
        app.settings.home,
        host=host,
        port=port,
        workers=workers,
        broker=broker,
        retention=retention,
    )
    serve(
        app.settings,
        config,
        announce=service_logs(app, "executor.server"),
        json_logs=app.json_logs,
    )
