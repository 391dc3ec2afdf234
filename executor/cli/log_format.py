"""``--log-format`` after a service's command (``executor server --log-format json``).

The top-level ``executor --log-format`` sets the format for every command; services take the
option after their own name too, where an operator writing a unit file or a compose command
looks for it. Either way the executor's own lines, and with JSON the lines of the libraries a
service runs (uvicorn, Celery), come out in one format.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from executor.cli.context import AppContext

F = TypeVar("F", bound=Callable[..., Any])


def _apply(ctx: click.Context, _param: click.Parameter, value: str | None) -> None:
    if value is None:
        return
    from executor import log as logging_setup

    logging_setup.configure("json" if value == "json" else "console")
    app = ctx.find_object(AppContext)
    if app is not None:
        app.json_logs = value == "json"


def log_format_option(command: F) -> F:
    """Add ``--log-format console|json`` to a service command (default: the top-level one)."""
    return click.option(
        "--log-format",
        type=click.Choice(["console", "json"]),
        default=None,
        expose_value=False,
        callback=_apply,
        help="How this service's log lines look on stderr [default: the top-level "
        "--log-format]; json also turns uvicorn's and Celery's lines into JSON.",
    )(command)


def service_logs(app: AppContext, logger_name: str) -> Callable[[str], None]:
    """Set up a service's logs; return how it says it is up: a line on stderr, or a JSON event.

    With JSON, the standard library's loggers (uvicorn, Celery) are routed through structlog.
    """
    if not app.json_logs:
        return lambda line: click.echo(line, err=True)
    import structlog

    from executor.log_bridge import route_stdlib

    route_stdlib()
    log = structlog.get_logger(logger_name)
    return lambda line: log.info(line)
