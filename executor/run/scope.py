"""Where a task runs and what it inherits from the tasks above it; frozen, one per branch."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from executor.engine.api import Workdir
from executor.flow.model import WorkingDirectoryTask
from executor.model import TaskRun
from executor.run.cancel import CancelScope

NO_VALUE = object()


@dataclass(frozen=True)
class Scope:
    """A branch of the run.

    Attributes:
        cancel: the cancellation scope this branch stops with.
        workdir: the WorkingDirectory's resources when the task runs inside one.
        workdir_task: that WorkingDirectory.
        workdir_run: its task run (``None`` for a task run in a WorkingDirectory of its own):
            Kestra's ``workerTaskrun``, whose loop value its children see as theirs.
        ancestors: the task runs above, outermost first (the last is the parent).
        value: the loop value the next task run gets (only a loop's direct children have one).
        iteration: the 0-based index of that value.
    """

    cancel: CancelScope
    workdir: Workdir | None = None
    workdir_task: WorkingDirectoryTask | None = None
    workdir_run: TaskRun | None = None
    ancestors: tuple[TaskRun, ...] = ()
    value: Any = None
    iteration: int | None = None

    @property
    def parent(self) -> TaskRun | None:
        return self.ancestors[-1] if self.ancestors else None

    def under(self, run: TaskRun, *, value: Any = NO_VALUE, iteration: int | None = None) -> Scope:
        """The scope of ``run``'s children (with a loop value when given)."""
        return replace(
            self,
            ancestors=(*self.ancestors, run),
            value=None if value is NO_VALUE else value,
            iteration=None if value is NO_VALUE else iteration,
        )

    def with_cancel(self, cancel: CancelScope) -> Scope:
        return replace(self, cancel=cancel)

    def inside(
        self, workdir: Workdir | None, task: WorkingDirectoryTask, run: TaskRun | None = None
    ) -> Scope:
        """The scope of ``task``'s children (``workdir``: ``None`` while it is being opened)."""
        return replace(self, workdir=workdir, workdir_task=task, workdir_run=run)

    def value_path(self, run: TaskRun) -> list[Any]:
        """The loop values that key ``run``'s outputs: each valued ancestor's, root first."""
        return [r.value for r in (*self.ancestors, run) if r.value is not None]
