"""Running the server under uvicorn until Ctrl-C or SIGTERM.

The socket is bound here, before uvicorn starts, so a port in use is one readable error (exit
6) rather than uvicorn's own exit. On Ctrl-C uvicorn stops accepting requests, closes open
event streams (sse-starlette ends them on shutdown) and then runs the app's shutdown: the queue
kills what runs, waits for its containers to go, and leaves queued work on disk.
"""

from __future__ import annotations

import contextlib
import resource
import socket
from collections.abc import Callable, Sequence

import click
import uvicorn
from fastapi import APIRouter
from uvicorn.config import LOGGING_CONFIG

from executor.errors import ServerConfigError
from executor.log import scrub_handlers
from executor.run.signals import interrupts_as_keyboard
from executor.server.app import create_app
from executor.server.config import ServerConfig
from executor.server.connections import guarded_http
from executor.server.ui import routes as web_ui
from executor.settings import Settings

GRACEFUL_SECONDS = 5


def bind(host: str, port: int) -> socket.socket:
    """A listening socket (raises ServerConfigError when the address cannot be used)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ServerConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    sock.set_inheritable(True)
    return sock


def _to_stderr(line: str) -> None:
    click.echo(line, err=True)


def serve(
    settings: Settings,
    config: ServerConfig,
    extra_routers: Sequence[APIRouter] = (),
    announce: Callable[[str], None] = _to_stderr,
    json_logs: bool = False,
) -> None:
    """Check the configuration, bind, and serve until stopped.

    ``extra_routers`` go to ``create_app`` (the web UI, webhooks); ``announce`` says the server
    is up and when it stopped; with ``json_logs`` uvicorn's own lines go through the executor's
    (JSON) logging instead of its own format.

    Raises:
        ServerConfigError: an open bind without authentication, or the address is unusable.
    """
    config.check_bind()
    sock = bind(config.host, config.port)
    app = create_app(settings, config, extra_routers=[web_ui.router, *extra_routers])
    shown_host = f"[{config.host}]" if ":" in config.host else config.host
    url = f"http://{shown_host}:{sock.getsockname()[1]}"
    auth = "authentication required" if config.auth_required else "no authentication (loopback)"
    runs = (
        f"executions go to workers through {config.broker}"
        if config.broker
        else f"{config.workers} execution slots"
    )
    announce(
        f"executor server on {url} ({runs}, {auth}); web UI: {url}/ui; "
        f"API docs: {url}/api/docs; Kestra clients: KESTRA_HOSTNAME={url}; Ctrl-C stops it"
    )
    limits = config.limits
    _allow_descriptors(limits.max_connections)
    uv_config = uvicorn.Config(
        app,
        http=guarded_http(limits.header_timeout_seconds, limits.max_connections),
        log_level="warning",
        lifespan="on",
        timeout_graceful_shutdown=GRACEFUL_SECONDS,
        access_log=False,
        # None: uvicorn keeps its hands off logging, its lines reach the root logger's handler
        log_config=None if json_logs else LOGGING_CONFIG,
    )
    scrub_handlers("uvicorn", "uvicorn.error", "uvicorn.access")  # set up by uvicorn.Config
    # uvicorn re-raises the signal that stopped it once it is done; as KeyboardInterrupt (SIGTERM
    # too, through interrupts_as_keyboard) it ends here, and the command exits 0.
    with interrupts_as_keyboard(), contextlib.suppress(KeyboardInterrupt):
        uvicorn.Server(uv_config).run(sockets=[sock])
    announce("executor server stopped")


def _allow_descriptors(connections: int) -> None:
    """Raise the soft limit of open files so ``connections`` sockets fit beside the rest
    (databases, artifacts, engine streams); as far as the hard limit allows."""
    wanted = connections + 1024
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        raised = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (raised, hard))
