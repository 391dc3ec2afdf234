"""Python's standard logging (uvicorn's, Celery's) written as the executor's own log lines.

``executor server`` and ``executor worker`` run libraries that log through :mod:`logging`, each
with its own format. With ``--log-format json`` every line a service writes must be one JSON
object, so :func:`route_stdlib` puts one handler on the root logger that hands each record to
structlog: the line then goes through whatever :func:`executor.log.configure` set up (renderer,
context, masking), exactly as the executor's own lines do.
"""

from __future__ import annotations

import logging

import structlog


class ToStructlog(logging.Handler):
    """A :mod:`logging` handler that re-emits each record through structlog."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            extra: dict[str, object] = {"logger": record.name}
            if record.exc_info:
                extra["exc_info"] = record.exc_info
            structlog.get_logger(record.name).log(record.levelno, record.getMessage(), **extra)
        except Exception:  # a broken line must not break the service (logging's own rule)
            self.handleError(record)


def route_stdlib(level: int = logging.WARNING) -> None:
    """Send every :mod:`logging` record at ``level`` or above through structlog, and only there.

    Python's warnings (a library's ``SecurityWarning``, a deprecation) go the same way, through
    the ``py.warnings`` logger, instead of being printed as they are.
    """
    logging.captureWarnings(True)
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    root.addHandler(ToStructlog())
    root.setLevel(level)
