"""A stand-alone ``kestra`` module for scripts run by the executor.

It is copied into every container and put on ``PYTHONPATH``, so a script can do
``from kestra import Kestra`` without installing anything. It mirrors the API of Kestra's own
Python library and speaks the same stdout protocol: each call prints exactly one line
``::{...}::`` holding JSON, and flushes.

    Kestra.outputs({"rows": 42})
    Kestra.counter("rows", 42, {"table": "users"})
    Kestra.timer("load", 1.5)                  # seconds
    Kestra.timer("load", lambda: do_work())    # times the call
    Kestra.logger().warning("disk almost full")

With ``executionContext: true`` on the task, ``context`` reads the execution's metadata from
``.kestra-execution-context.json`` in the working directory: ``context.inputs.dataset``,
``context.outputs.extract.uri``, ``context.vars.threshold``, ``context.labels.env``.

Standard library only, and Python 3.7+ syntax: it runs with whatever Python the image has.
"""

import json
import logging
import sys
import threading
import time
from pathlib import Path

__all__ = ["Kestra", "context"]

CONTEXT_FILE = ".kestra-execution-context.json"

_write_lock = threading.Lock()


def _send(message):
    # One write per line under a lock, so lines from threads never interleave.
    line = "::" + json.dumps(message, default=str) + "::\n"
    with _write_lock:
        sys.stdout.write(line)
        sys.stdout.flush()


def _kestra_level(levelno):
    if levelno >= logging.ERROR:
        return "ERROR"
    if levelno >= logging.WARNING:
        return "WARN"
    if levelno >= logging.INFO:
        return "INFO"
    if levelno >= logging.DEBUG:
        return "DEBUG"
    return "TRACE"


class _ProtocolHandler(logging.Handler):
    """Print each record as a protocol ``logs`` line; looks up ``sys.stdout`` at each call."""

    def emit(self, record):
        try:
            message = record.getMessage()
            if record.exc_info:
                message = message + "\n" + logging.Formatter().formatException(record.exc_info)
            if record.stack_info:
                message = message + "\n" + record.stack_info
            _send({"logs": [{"level": _kestra_level(record.levelno), "message": message}]})
        except Exception:
            self.handleError(record)


class Kestra:
    """Send outputs, metrics and logs to the executor through stdout."""

    _logger = None

    @staticmethod
    def format(message):
        """Return ``message`` (a dict) as one protocol line, without the line ending."""
        return "::" + json.dumps(message, default=str) + "::"

    @staticmethod
    def outputs(map_):
        """Send outputs; they become ``outputs.<task>.vars.<key>`` (later calls merge in).

        Args:
            map_: a dict of JSON-serialisable values.
        """
        _send({"outputs": map_})

    @staticmethod
    def counter(name, value, tags=None):
        """Add ``value`` to the counter metric ``name``.

        Args:
            name: the metric's name.
            value: a number.
            tags: an optional dict of string tags.
        """
        Kestra._metric(name, "counter", value, tags)

    @staticmethod
    def timer(name, duration, tags=None):
        """Record a duration in seconds, or time a call when ``duration`` is callable.

        Args:
            name: the metric's name.
            duration: seconds (a number), or a callable taking no argument that is timed.
            tags: an optional dict of string tags.

        Returns:
            What the callable returned, or ``None`` for a number.
        """
        if callable(duration):
            start = time.perf_counter()
            try:
                return duration()
            finally:
                Kestra._metric(name, "timer", time.perf_counter() - start, tags)
        Kestra._metric(name, "timer", duration, tags)
        return None

    @staticmethod
    def logger():
        """Return the ``Kestra`` logger; each record becomes one protocol ``logs`` line.

        Returns:
            A :class:`logging.Logger` at DEBUG that does not propagate to the root logger.
        """
        if Kestra._logger is None:
            logger = logging.getLogger("Kestra")
            logger.setLevel(logging.DEBUG)
            logger.propagate = False
            if not any(isinstance(h, _ProtocolHandler) for h in logger.handlers):
                logger.addHandler(_ProtocolHandler(logging.DEBUG))
            Kestra._logger = logger
        return Kestra._logger

    @staticmethod
    def _metric(name, type_, value, tags):
        _send({"metrics": [{"name": name, "type": type_, "value": value, "tags": tags or {}}]})


class _Namespace(dict):
    """A mapping whose keys also read as attributes (``context.outputs.extract.uri``)."""

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(
                "no {!r} in the execution context (keys: {})".format(name, ", ".join(self))
            ) from None


def _wrap(value):
    if isinstance(value, dict):
        return _Namespace((k, _wrap(v)) for k, v in value.items())
    if isinstance(value, list):
        return [_wrap(v) for v in value]
    return value


class _LazyContext:
    """Reads the context file on first use, so importing ``kestra`` never needs it."""

    _loaded = None

    def _load(self):
        if _LazyContext._loaded is None:
            try:
                text = Path(CONTEXT_FILE).read_text()
            except FileNotFoundError:
                raise RuntimeError(
                    "no execution context: set 'executionContext: true' on the task"
                ) from None
            _LazyContext._loaded = _wrap(json.loads(text))
        return _LazyContext._loaded

    def __getattr__(self, name):
        return getattr(self._load(), name)

    def __getitem__(self, key):
        return self._load()[key]


context = _LazyContext()
