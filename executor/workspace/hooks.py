"""What the runner asks of the workspace layer around the tasks it runs: typed hooks.

The runner (``run/handlers``) calls these around a WorkingDirectory's children and each script
child; :class:`~executor.workspace.service.WorkspaceService` implements them (declared against
:class:`WorkspaceHooks`, so mypy checks it), and a run without a workspace layer has none.
"""

from __future__ import annotations

from typing import Any, Protocol

from executor.engine.api import Workdir
from executor.flow.model import CloneTask, LocalFilesTask, WorkingDirectoryTask
from executor.flow.tasks_exec import ExecScript
from executor.model import Level, State
from executor.store.files.artifacts import Reader


class Job(Protocol):
    """The task run the workspace works for: its ids, its log, its templates."""

    namespace: str
    flow_id: str
    execution_id: str
    task_id: str
    task_run_id: str
    where: str
    reader: Reader  # the execution as a reader of stored files (inputFiles URIs)

    def log(self, level: Level, message: str) -> None:
        """A line in the task run's log."""
        ...

    def render(self, template: str) -> str:
        """Render a template in the task run's context."""
        ...

    def remember_secrets(self, *values: str | None) -> None:
        """Mask these values wherever they would be shown."""
        ...


class WorkspaceHooks(Protocol):
    """The workspace layer: files into a workspace before its tasks, and out after them."""

    def before_children(self, job: Job, workdir: Workdir, wd: WorkingDirectoryTask) -> None:
        """Restore the cache, then seed namespace files and inputFiles."""
        ...

    def after_children(
        self, job: Job, workdir: Workdir, wd: WorkingDirectoryTask, state: State
    ) -> tuple[State, dict[str, str] | None]:
        """Collect outputFiles, save the cache; the WorkingDirectory's state and its files."""
        ...

    def before_script(
        self,
        job: Job,
        workdir: Workdir,
        task: ExecScript,
        container: str,
        wd: WorkingDirectoryTask | None = None,
    ) -> None:
        """Restore cached venvs, seed the script child's own namespaceFiles and inputFiles."""
        ...

    def place_stored_files(
        self, job: Job, workdir: Workdir, container: str, files: dict[str, str]
    ) -> None:
        """Copy stored files (workspace path -> ``kestra:///`` URI) into the workspace."""
        ...

    def after_script(
        self,
        job: Job,
        workdir: Workdir,
        task: ExecScript,
        container: str,
        output_dir: str | None = None,
        extra: list[str] | None = None,
    ) -> dict[str, str] | None:
        """A script child's outputFiles as path -> URI (``None`` when it asks for none)."""
        ...

    def run_task(
        self, job: Job, workdir: Workdir, task: CloneTask | LocalFilesTask
    ) -> dict[str, Any]:
        """Run a git Clone or a LocalFiles task; its outputs."""
        ...
