"""The executor's own logs, through structlog; configured by the CLI only, never at import.

Readable key=value lines on stderr by default, one JSON object per line with ``--log-format
json``. :class:`LogContext` is a run listener that binds ``execution_id`` and the running
``task_id`` into structlog's context variables, so every line the runner (or anything it calls)
logs carries them without passing them around.

A server's and a worker's logs must never hold a caller's credentials: tracebacks are rendered
without their frames' locals (an ASGI ``scope`` holds every request header), credential headers
(``Authorization``, ``Proxy-Authorization``, ``Cookie``) are masked in any mapping or header
list logged, and a finished line is scrubbed of ``Bearer``/``Basic`` credentials and of header
values written out (:func:`scrub_text`; :class:`ScrubFilter` does the same for the standard
``logging`` lines of uvicorn and celery).
"""

from __future__ import annotations

import logging
import re
import sys
import traceback
from collections.abc import Mapping
from typing import Any, Literal, TextIO

import structlog

from executor.masking import MASK
from executor.model import Execution, LogBatch, LogLine, State, TaskRun

_log = structlog.get_logger(__name__)

LogFormat = Literal["console", "json"]
FORMATS: tuple[LogFormat, ...] = ("console", "json")


CREDENTIAL_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", "set-cookie"})
_MAX_DEPTH = 8
_BEARER = re.compile(r"\b(Bearer|BEARER)(\s+)[^\s'\",;)\]}]+")
_BASIC = re.compile(r"\b(Basic|BASIC)(\s+)(?=[A-Za-z]*[0-9+/=])[A-Za-z0-9+/]{4,}=*")
_HEADER_IN_REPR = re.compile(
    r"""(b?['"](?:proxy-authorization|authorization|set-cookie|cookie)['"]\s*[:,]\s*b?)"""
    r"""(['"])(?:\\.|(?!\2).)*\2""",
    re.IGNORECASE,
)
_HEADER_LINE = re.compile(
    r"^(\s*(?:proxy-authorization|authorization|set-cookie|cookie)\s*:\s*).+$",
    re.IGNORECASE | re.MULTILINE,
)


def scrub_text(text: str) -> str:
    """``text`` with credentials masked: ``Bearer``/``Basic`` values, and the values of
    credential headers written as ``'authorization': '...'`` or ``Authorization: ...``."""
    text = _HEADER_IN_REPR.sub(lambda m: f"{m[1]}{m[2]}{MASK}{m[2]}", text)
    text = _HEADER_LINE.sub(lambda m: m[1] + MASK, text)
    text = _BEARER.sub(lambda m: m[1] + m[2] + MASK, text)
    return _BASIC.sub(lambda m: m[1] + m[2] + MASK, text)


def _is_credential(name: object) -> bool:
    if isinstance(name, bytes):
        name = name.decode("latin-1")
    return isinstance(name, str) and name.lower() in CREDENTIAL_HEADERS


def scrub_value(value: Any, depth: int = 0) -> Any:
    """``value`` with credential headers masked wherever a mapping or a list of
    ``(name, value)`` pairs holds them (an ASGI scope, request headers); a copy when changed."""
    if depth > _MAX_DEPTH:
        return value
    if isinstance(value, Mapping):
        return {
            k: MASK if _is_credential(k) else scrub_value(v, depth + 1) for k, v in value.items()
        }
    if type(value) in (list, tuple):
        if len(value) == 2 and _is_credential(value[0]) and isinstance(value[1], str | bytes):
            return type(value)((value[0], MASK))
        return type(value)(scrub_value(v, depth + 1) for v in value)
    if isinstance(value, str):
        return scrub_text(value)
    return value


def _scrub_event(_: Any, __: str, event_dict: Any) -> Any:
    """structlog processor: credential headers masked in every value logged."""
    return {key: scrub_value(value) for key, value in event_dict.items()}


def _scrub_line(_: Any, __: str, line: Any) -> Any:
    """structlog's last step: the rendered line (traceback included) scrubbed once more."""
    return scrub_text(line) if isinstance(line, str) else line


class ScrubFilter(logging.Filter):
    """For the standard ``logging`` handlers (uvicorn's, celery's): message and traceback
    scrubbed with :func:`scrub_text` before any formatter sees them."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        scrubbed = scrub_text(message)
        if scrubbed != message:
            record.msg, record.args = scrubbed, None
        if record.exc_info and not record.exc_text:
            record.exc_text = "".join(traceback.format_exception(*record.exc_info)).rstrip("\n")
        if record.exc_text:
            record.exc_text = scrub_text(record.exc_text)
        return True


def scrub_handlers(*names: str) -> None:
    """Add :class:`ScrubFilter` to every handler of the named loggers (``""``: the root), and
    to ``logging``'s last resort (what prints when no handler is set: celery's task errors)."""
    handlers = [h for name in names for h in logging.getLogger(name).handlers]
    if logging.lastResort is not None:
        handlers.append(logging.lastResort)
    for handler in handlers:
        if not any(isinstance(f, ScrubFilter) for f in handler.filters):
            handler.addFilter(ScrubFilter())


class _Stderr:
    """Writes to whatever ``sys.stderr`` is at the time (the live view redirects it)."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()

    def isatty(self) -> bool:
        return sys.stderr.isatty()


def configure(
    fmt: LogFormat = "console", level: str = "info", stream: TextIO | None = None
) -> None:
    """Configure structlog for the executor's own log lines.

    Args:
        fmt: ``console`` for readable lines (colours in a terminal), ``json`` for JSON lines.
        level: the lowest level shown: debug, info, warning or error.
        stream: where lines go (default: the current ``sys.stderr`` at each write).
    """
    out: TextIO = stream if stream is not None else _Stderr()  # type: ignore[assignment]
    renderer: structlog.typing.Processor
    if fmt == "json":
        renderer = structlog.processors.JSONRenderer()
    else:
        colors = bool(getattr(out, "isatty", lambda: False)())
        renderer = structlog.dev.ConsoleRenderer(
            colors=colors,
            # never the frames' locals: a request's scope holds its Authorization header
            exception_formatter=structlog.dev.RichTracebackFormatter(
                color_system="truecolor" if colors else None, show_locals=False
            ),
        )
    processors: list[structlog.typing.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.StackInfoRenderer(),
        _scrub_event,
    ]
    if fmt == "json":
        processors.append(structlog.processors.format_exc_info)
    processors += [renderer, _scrub_line]
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping()[level.upper()]
        ),
        logger_factory=structlog.WriteLoggerFactory(file=out),
        cache_logger_on_first_use=False,
    )
    scrub_handlers("")


class LogContext:
    """A run listener that binds ``execution_id`` and the running ``task_id`` for structlog.

    When a child task ends, ``task_id`` goes back to its WorkingDirectory (while that runs).
    """

    def __init__(self) -> None:
        self._running: dict[str, TaskRun] = {}

    def execution_changed(self, execution: Execution) -> None:
        """Bind the execution id while it runs; unbind both ids once it has ended."""
        if execution.state.current.terminal:
            structlog.contextvars.unbind_contextvars("execution_id", "task_id")
            self._running.clear()
        else:
            structlog.contextvars.bind_contextvars(execution_id=execution.id)

    def task_changed(self, execution: Execution, task_run: TaskRun) -> None:
        """Bind the task that now runs, or its parent once it ended."""
        structlog.contextvars.bind_contextvars(execution_id=execution.id)
        state = task_run.state.current
        if state in (State.RUNNING, State.RETRYING):
            self._running[task_run.id] = task_run
            structlog.contextvars.bind_contextvars(task_id=task_run.task_id)
            _log.debug("task state", state=state.value)
            return
        if state != State.CREATED:
            _log.debug(
                "task state", state=state.value, task_id=task_run.task_id, reason=task_run.reason
            )
        self._running.pop(task_run.id, None)
        parent = self._running.get(task_run.parent_task_run_id or "")
        if parent is not None:
            structlog.contextvars.bind_contextvars(task_id=parent.task_id)
        else:
            structlog.contextvars.unbind_contextvars("task_id")

    def log_batch(self, batch: LogBatch) -> None:
        """Task log lines are not the executor's own logs: nothing to do."""

    def log_many(self, lines: list[LogLine]) -> None:
        """Task log lines are not the executor's own logs: nothing to do."""

    def log(self, line: LogLine) -> None:
        """Task log lines are not the executor's own logs: nothing to do."""
