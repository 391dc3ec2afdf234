"""Validation of every workspace path a flow names, before anything runs.

:func:`check_workspace_paths` is meant for the loader, beside its reference checks: an
``inputFiles`` key, a namespace-file, output or cache glob, or a Clone ``directory`` that is
absolute or climbs out with ``..`` is a located problem, not a run-time surprise.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from executor.flow.model import (
    CloneTask,
    LocalFilesTask,
    NamespaceFiles,
    ScriptTask,
    Task,
    WorkingDirectoryTask,
)
from executor.workspace.globs import unsafe_reason

if TYPE_CHECKING:
    from executor.flow.loader import LoadedFlow

Where = tuple[str | int, ...]


def _namespace_globs(files: NamespaceFiles | None, base: Where) -> Iterator[tuple[Where, str]]:
    if files is None:
        return
    for key in ("include", "exclude"):
        for index, glob in enumerate(getattr(files, key)):
            yield (*base, "namespaceFiles", key, index), glob


def _input_keys(files: dict[str, str] | str | None, base: Where) -> Iterator[tuple[Where, str]]:
    if isinstance(files, dict):
        for key in files:
            yield (*base, key), key


def _listed(globs: list[str] | None, base: Where) -> Iterator[tuple[Where, str]]:
    for index, glob in enumerate(globs or []):
        yield (*base, index), glob


def task_paths(task: Task, at: Where) -> Iterator[tuple[Where, str, str]]:
    """Each workspace path a task names: (document path, value, what it is)."""
    if isinstance(task, WorkingDirectoryTask | ScriptTask):
        for where, value in _input_keys(task.inputFiles, (*at, "inputFiles")):
            yield where, value, "inputFiles path"
        for where, value in _listed(task.outputFiles, (*at, "outputFiles")):
            yield where, value, "outputFiles glob"
        for where, value in _namespace_globs(task.namespaceFiles, at):
            yield where, value, "namespaceFiles glob"
    if isinstance(task, WorkingDirectoryTask) and task.cache is not None:
        for where, value in _listed(task.cache.patterns, (*at, "cache", "patterns")):
            yield where, value, "cache pattern"
    if isinstance(task, LocalFilesTask):
        for where, value in _input_keys(task.inputs, (*at, "inputs")):
            yield where, value, "inputs path"
        for where, value in _listed(task.outputs, (*at, "outputs")):
            yield where, value, "outputs glob"
    if isinstance(task, CloneTask) and task.directory:
        yield (*at, "directory"), task.directory, "directory"


def check_workspace_paths(loaded: LoadedFlow) -> list[str]:
    """Every workspace path of the flow that is absolute or climbs out with ``..``.

    Args:
        loaded: a flow that passed model validation.

    Returns:
        One located problem per unsafe path (``file:line:col: field (task 'x'): ...``);
        empty when all are safe.
    """
    from executor.flow.loader import all_tasks

    problems: list[str] = []
    for at, task in all_tasks(loaded.flow):
        for where, value, what in task_paths(task, at):
            reason = unsafe_reason(value)
            if reason is not None:
                field = ".".join(str(p) for p in where[len(at) :])
                problems.append(
                    f"{loaded.where(where)}: {field} (task '{task.id}'): {what} {value!r} {reason}"
                )
    return problems
