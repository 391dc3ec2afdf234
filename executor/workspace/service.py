"""What goes into a workspace and what comes out: the runner's hooks around children."""

from __future__ import annotations

import io
import re
import tarfile
import time
from collections.abc import Iterator, Mapping
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Any

from executor.engine.api import Engine
from executor.errors import ExecutorError, UnsafePathError, WorkspaceError
from executor.flow.model import CloneTask, LocalFilesTask, ScriptTask
from executor.run.execution import Level, State, TaskRun
from executor.settings import Settings
from executor.store.artifacts import ArtifactStore, safe_relative

if TYPE_CHECKING:
    from executor.run.runner import FlowRunner, Scope


def glob_regex(pattern: str) -> re.Pattern[str]:
    """A workspace glob (``*``, ``?``, ``**``) as a regex over relative posix paths."""
    safe_relative(pattern.replace("*", "x").replace("?", "x") or "x")
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return re.compile(out + r"\Z")


def files_tar(files: Mapping[str, bytes], mode: int = 0o644) -> bytes:
    """A tar of relative paths, refusing any that would escape the workspace."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for path, data in files.items():
            info = tarfile.TarInfo(str(safe_relative(path)))
            info.size, info.mode, info.mtime = len(data), mode, int(time.time())
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


class WorkspaceService:
    """Seeds workspaces before children run and harvests output files after."""

    def __init__(self, settings: Settings, engine: Engine) -> None:
        self.settings = settings
        self.engine = engine
        self.artifacts = ArtifactStore(settings.artifacts_dir)

    # ----- hooks called by the runner

    def before_children(self, runner: FlowRunner, scope: Scope, run: TaskRun) -> None:
        wd = scope.wd_task
        assert wd is not None and scope.wd is not None
        ctx = runner._context(run, wd)
        where = runner._where(wd)
        if wd.inputFiles:
            self.write_input_files(runner, scope, wd.inputFiles, ctx, where)

    def after_children(self, runner: FlowRunner, scope: Scope, run: TaskRun, state: State) -> State:
        wd = scope.wd_task
        assert wd is not None
        if wd.outputFiles and scope.wd is not None and scope.wd.containers:
            ctx = runner._context(run, wd)
            patterns = [runner.renderer.render(p, ctx, where=runner._where(wd))
                        for p in wd.outputFiles]
            try:
                files = self.harvest(runner, scope, run, patterns)
            except ExecutorError as exc:
                runner._log(run, Level.ERROR, f"collecting outputFiles failed: {exc}")
                return State.FAILED
            run.outputs["outputFiles"] = files
            runner.outputs[wd.id] = run.outputs
        return state

    def before_script(self, runner: FlowRunner, task: ScriptTask, run: TaskRun, scope: Scope,
                      container: str, ctx: dict[str, Any], where: str) -> None:
        if task.inputFiles:
            self.write_input_files(runner, scope, task.inputFiles, ctx, where)

    def after_script(self, runner: FlowRunner, task: ScriptTask, run: TaskRun, scope: Scope,
                     container: str, ctx: dict[str, Any], where: str) -> dict[str, str] | None:
        if not task.outputFiles:
            return None
        patterns = [runner.renderer.render(p, ctx, where=where) for p in task.outputFiles]
        return self.harvest(runner, scope, run, patterns)

    def run_task(self, runner: FlowRunner, task: CloneTask | LocalFilesTask, run: TaskRun,
                 scope: Scope, ctx: dict[str, Any], where: str) -> dict[str, Any]:
        if isinstance(task, LocalFilesTask):
            outputs: dict[str, Any] = {}
            if task.inputs:
                self.write_input_files(runner, scope, task.inputs, ctx, where)
            if task.outputs:
                patterns = [runner.renderer.render(p, ctx, where=where) for p in task.outputs]
                outputs["uris"] = self.harvest(runner, scope, run, patterns)
            return outputs
        raise WorkspaceError("git Clone is not available yet", where=where)

    # ----- in and out

    def _container(self, runner: FlowRunner, scope: Scope) -> str:
        assert scope.wd is not None
        if scope.wd.containers:
            return next(iter(scope.wd.containers.values()))
        first = next((t for t in (scope.wd_task.tasks if scope.wd_task else [])
                      if isinstance(t, ScriptTask)), None)
        if first is not None:
            options = runner.image_for(first, runner._context(), runner._where(first))
        else:
            image = runner.resolve_image(self.settings.default_shell_image, "IF_NOT_PRESENT")
            from executor.run.workdir import ContainerOptions

            options = ContainerOptions(image)
        return scope.wd.container(options)

    def write_input_files(self, runner: FlowRunner, scope: Scope, files: dict[str, str] | str,
                          ctx: dict[str, Any], where: str) -> None:
        if isinstance(files, str):
            raise WorkspaceError("inputFiles as a single URI is not supported; give a map of "
                                 "path -> content", where=where)
        rendered: dict[str, bytes] = {}
        for path, content in files.items():
            name = runner.renderer.render(path, ctx, where=where)
            try:
                safe_relative(name)
            except UnsafePathError as exc:
                raise UnsafePathError(exc.message, where=where) from None
            text = runner.renderer.render(content, ctx, where=where)
            if text.startswith("kestra:///"):
                with self.artifacts.open(text) as fh:
                    rendered[name] = fh.read()
            else:
                rendered[name] = text.encode()
        container = self._container(runner, scope)
        self.engine.put_archive(container, self.settings.workspace_path, files_tar(rendered))

    def harvest(self, runner: FlowRunner, scope: Scope, run: TaskRun,
                patterns: list[str]) -> dict[str, str]:
        """Stream the workspace out once and keep regular files matching the globs."""
        assert runner.execution is not None and runner.loaded is not None
        regexes = [glob_regex(p.removeprefix("./")) for p in patterns]
        container = self._container(runner, scope)
        flow = runner.loaded.flow
        prefix = self.artifacts.prefix(flow.namespace, flow.id, runner.execution.id,
                                       run.task_id, run.id)
        found: dict[str, str] = {}
        stream = _ChunkReader(self.engine.get_archive(container, self.settings.workspace_path + "/."))
        with tarfile.open(fileobj=stream, mode="r|") as tar:
            for member in tar:
                rel = str(PurePosixPath(member.name)).removeprefix("./").lstrip("/")
                if rel in ("", ".") or not any(r.match(rel) for r in regexes):
                    continue
                if not member.isfile():
                    if member.issym() or member.islnk():
                        runner._log(run, Level.WARN, f"outputFiles: {rel} is a link; not collected")
                    continue
                data = tar.extractfile(member)
                assert data is not None
                found[rel] = self.artifacts.write(prefix, rel, data)
        for pattern, regex in zip(patterns, regexes, strict=True):
            if not any(regex.match(k) for k in found):
                runner._log(run, Level.WARN, f"outputFiles: nothing matches {pattern!r}")
        return found


class _ChunkReader(io.RawIOBase):
    """A file object over an iterator of byte chunks (for tarfile's stream mode)."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._buf = b""

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        while not self._buf:
            try:
                self._buf = next(self._chunks)
            except StopIteration:
                return 0
        n = min(len(b), len(self._buf))
        b[:n] = self._buf[:n]
        self._buf = self._buf[n:]
        return n



