"""The only walker of the task tree: every task with its place in the document and its parents."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from executor.flow.model import Flow, Task, WorkingDirectoryTask

DocPath = tuple[str | int, ...]


@dataclass(frozen=True)
class Visit:
    """One task met on the walk.

    Attributes:
        path: where the task sits in the document, e.g. ``("tasks", 0, "tasks", 2)``.
        task: the task.
        ancestors: the tasks that hold it, outermost first.
        branch: the property of the nearest ancestor (or flow) that lists it: tasks, errors...
    """

    path: DocPath
    task: Task
    ancestors: tuple[Task, ...]
    branch: str

    @property
    def workdir(self) -> WorkingDirectoryTask | None:
        """The WorkingDirectory this task runs in, if any."""
        for task in reversed(self.ancestors):
            if isinstance(task, WorkingDirectoryTask):
                return task
        return None


def walk_task(
    task: Task, path: DocPath, ancestors: tuple[Task, ...] = (), branch: str = "tasks"
) -> Iterator[Visit]:
    """``task`` and every task below it, depth first, in document order."""
    yield Visit(path, task, ancestors, branch)
    for key, children in task.children():
        for index, child in enumerate(children):
            yield from walk_task(
                child, (*path, *task.child_path(key, index)), (*ancestors, task), key.split(".")[0]
            )


def walk(flow: Flow) -> Iterator[Visit]:
    """Every task of the flow: ``tasks``, then ``errors``, then ``finally``, each depth first."""
    for key, tasks in (("tasks", flow.tasks), ("errors", flow.errors), ("finally", flow.finally_)):
        for index, task in enumerate(tasks):
            yield from walk_task(task, (key, index), (), key)
