"""Which handler runs which task: each handler module says what it runs in its ``HANDLES``.

A handler is ``(task, task_run, scope, ctx) -> State``: it does the task's work and says how it
ended; ``run.runner.run_task`` does what every task shares around it. Adding a task type is its
model (in ``flow/``, one member of ``flow.model.Task``) and a module here whose ``HANDLES`` maps
the model to its handler: the registry finds it, and ``tests/unit/run/test_registry.py`` fails
while a model of ``Task`` has no handler.
"""

from __future__ import annotations

import importlib
import pkgutil
import threading
from collections.abc import Mapping
from typing import Any

from executor.errors import ExecutorError
from executor.flow import model as m
from executor.run.handlers.attempts import Handler

_lock = threading.Lock()
_registry: dict[type[Any], Handler[Any]] = {}


def handlers() -> Mapping[type[Any], Handler[Any]]:
    """Every handler, by task model: the ``HANDLES`` of every module of this package.

    Raises:
        ExecutorError: two modules handle the same model.
    """
    with _lock:
        if not _registry:
            _registry.update(_collect())
        return _registry


def _collect() -> dict[type[Any], Handler[Any]]:
    found: dict[type[Any], Handler[Any]] = {}
    owners: dict[type[Any], str] = {}
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
        module = importlib.import_module(f"{__name__}.{info.name}")
        for kind, handler in getattr(module, "HANDLES", {}).items():
            if kind in found:
                raise ExecutorError(
                    f"{kind.__name__} is handled twice: by {owners[kind]} and {info.name}"
                )
            found[kind], owners[kind] = handler, info.name
    return found


def handler_for(task: m.Task) -> Handler[Any]:
    """The handler of ``task``'s kind."""
    try:
        return handlers()[type(task)]
    except KeyError:
        raise ExecutorError(f"task type {task.type} has no handler") from None
