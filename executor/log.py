"""The executor's own logs, through structlog; configured by the CLI only, never at import.

Readable key=value lines on stderr by default, one JSON object per line with ``--log-format
json``. :class:`LogContext` is a run listener that binds ``execution_id`` and the running
``task_id`` into structlog's context variables, so every line the runner (or anything it calls)
logs carries them without passing them around.
"""

from __future__ import annotations

import logging
import sys
from typing import Literal, TextIO

import structlog

from executor.model import Execution, LogBatch, LogLine, State, TaskRun

_log = structlog.get_logger(__name__)

LogFormat = Literal["console", "json"]
FORMATS: tuple[LogFormat, ...] = ("console", "json")


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
        renderer = structlog.dev.ConsoleRenderer(colors=colors)
    processors: list[structlog.typing.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.StackInfoRenderer(),
    ]
    if fmt == "json":
        processors.append(structlog.processors.format_exc_info)
    processors.append(renderer)
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping()[level.upper()]
        ),
        logger_factory=structlog.WriteLoggerFactory(file=out),
        cache_logger_on_first_use=False,
    )


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
