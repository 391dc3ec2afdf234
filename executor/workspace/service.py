"""What goes into a workspace and what comes out: the runner's hooks around children.

Into the volume, before the first child (one archive each): the cache, then namespace files and
inputFiles together (inline content wins). A script child's own namespaceFiles and inputFiles are
seeded just before it runs; a git Clone streams the host-side clone in as one archive.

Out of the volume, after the children (also after a failure): outputFiles into the artifact
store, then the cache when the run succeeded and what matches its patterns changed. What comes
out is listed first and only the matches are streamed (see ``workspace.container``).
"""

from __future__ import annotations

import functools
import io
import json
import os
import tempfile
import time
from collections.abc import Iterable, Iterator
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from executor.engine.api import Engine
from executor.errors import ExecutorError, UnsafePathError, WorkspaceError
from executor.flow.model import (
    CloneTask,
    LocalFilesTask,
    NamespaceFiles,
    ScriptTask,
    Task,
    WorkingDirectoryTask,
)
from executor.run.execution import Level, State, TaskRun
from executor.settings import Settings
from executor.store.artifacts import SCHEME, ArtifactStore
from executor.workspace import git
from executor.workspace.cache import CacheKey, CacheStore
from executor.workspace.container import Listing, WorkspaceReader, cover
from executor.workspace.globs import GlobSet, check_safe, glob_regex, unsafe_reason
from executor.workspace.namespaces import NamespaceStore
from executor.workspace.tarstream import (
    CHUNK,
    ChunkReader,
    Entry,
    Prefetch,
    tar_stream,
    tree_entries,
    write_members,
)
from executor.workspace.validation import task_paths

if TYPE_CHECKING:
    from executor.run.runner import FlowRunner, Scope


def human_size(size: float) -> str:
    """``1.5 MB`` style sizes for log lines."""
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GB"


def check_task_paths(task: Task) -> None:
    """Refuse a task (and its children) naming an absolute or climbing workspace path.

    The loader should refuse these already (:func:`executor.workspace.validation.
    check_workspace_paths`); this is the run-time guard, before anything is seeded.

    Raises:
        UnsafePathError: the first unsafe path, with what it is.
    """
    tasks: list[Task] = [task]
    while tasks:
        current = tasks.pop()
        for _, value, what in task_paths(current, ()):
            reason = unsafe_reason(value)
            if reason is not None:
                raise UnsafePathError(f"task '{current.id}': {what} {value!r} {reason}")
        if isinstance(current, WorkingDirectoryTask):
            tasks.extend([*current.tasks, *current.errors, *current.finally_])


class _Counter:
    """Counts the files and bytes of entries as they stream past."""

    def __init__(self) -> None:
        self.files = 0
        self.bytes = 0

    def through(self, entries: Iterable[Entry]) -> Iterator[Entry]:
        for entry in entries:
            if entry.kind == "file":
                self.files += 1
                self.bytes += entry.size
            yield entry


class WorkspaceService:
    """Seeds workspaces before children run and harvests output files after."""

    def __init__(self, settings: Settings, engine: Engine) -> None:
        self.settings = settings
        self.engine = engine
        self.artifacts = ArtifactStore(settings.artifacts_dir)
        self.namespaces = NamespaceStore(settings.namespaces_dir)
        self.cache = CacheStore(settings.cache_dir)

    # ----- hooks called by the runner

    def before_children(self, runner: FlowRunner, scope: Scope, run: TaskRun) -> None:
        """Restore the cache, then seed namespace files and inputFiles (one archive each)."""
        wd = scope.wd_task
        assert wd is not None and scope.wd is not None
        check_task_paths(wd)
        ctx = runner._context(run, wd)
        where = runner._where(wd)
        placed: set[str] = set()
        if wd.cache is not None:
            placed = self._restore_cache(runner, scope, run, wd)
        self.seed(runner, scope, run, wd.namespaceFiles, wd.inputFiles, ctx, where, placed)

    def after_children(self, runner: FlowRunner, scope: Scope, run: TaskRun, state: State) -> State:
        """Collect outputFiles (also after a failure), then save the cache after a success."""
        wd = scope.wd_task
        assert wd is not None
        save_cache = wd.cache is not None and state in (State.SUCCESS, State.WARNING)
        if not wd.outputFiles and not save_cache:
            return state
        if scope.wd is None or not scope.wd.containers:
            if wd.outputFiles:
                runner._log(run, Level.WARN, "outputFiles: no container ran, nothing to collect")
            return state
        ctx = runner._context(run, wd)
        where = runner._where(wd)
        reader = self._reader(runner, scope)
        listing = reader.listing()
        if wd.outputFiles:
            try:
                patterns = [runner.renderer.render(p, ctx, where=where) for p in wd.outputFiles]
                files = self.harvest(runner, run, reader, listing, patterns, "outputFiles")
            except ExecutorError as exc:
                runner._log(run, Level.ERROR, f"collecting outputFiles failed: {exc}")
                return State.FAILED
            run.outputs["outputFiles"] = files
            runner.outputs[wd.id] = run.outputs
        if save_cache:
            try:
                self._save_cache(runner, run, wd, reader, listing, ctx, where)
            except ExecutorError as exc:
                runner._log(run, Level.WARN, f"cache not saved: {exc}")
        return state

    def before_script(
        self,
        runner: FlowRunner,
        task: ScriptTask,
        run: TaskRun,
        scope: Scope,
        container: str,
        ctx: dict[str, Any],
        where: str,
    ) -> None:
        """Seed a script child's own namespaceFiles and inputFiles just before it runs."""
        if task.namespaceFiles is None and not task.inputFiles:
            return
        self.seed(
            runner, scope, run, task.namespaceFiles, task.inputFiles, ctx, where, None, container
        )

    def after_script(
        self,
        runner: FlowRunner,
        task: ScriptTask,
        run: TaskRun,
        scope: Scope,
        container: str,
        ctx: dict[str, Any],
        where: str,
    ) -> dict[str, str] | None:
        """A script child's outputFiles as path -> URI (``None`` when it asks for none)."""
        if not task.outputFiles:
            return None
        patterns = [runner.renderer.render(p, ctx, where=where) for p in task.outputFiles]
        reader = WorkspaceReader(self.engine, container, self.settings.workspace_path)
        return self.harvest(runner, run, reader, reader.listing(), patterns, "outputFiles")

    def run_task(
        self,
        runner: FlowRunner,
        task: CloneTask | LocalFilesTask,
        run: TaskRun,
        scope: Scope,
        ctx: dict[str, Any],
        where: str,
    ) -> dict[str, Any]:
        """Run a git Clone or a LocalFiles task; returns its outputs."""
        if isinstance(task, CloneTask):
            return self.clone(runner, task, run, scope, ctx, where)
        outputs: dict[str, Any] = {}
        if task.inputs:
            self.seed(runner, scope, run, None, task.inputs, ctx, where, None)
        if task.outputs:
            patterns = [runner.renderer.render(p, ctx, where=where) for p in task.outputs]
            outputs["uris"] = self.harvest(
                runner, run, self._reader(runner, scope), None, patterns, "outputs"
            )
        return outputs

    # ----- containers

    def _container(self, runner: FlowRunner, scope: Scope) -> str:
        """A running container on the workspace volume, started when there is none yet."""
        assert scope.wd is not None
        if scope.wd.containers:
            return next(iter(scope.wd.containers.values()))
        from executor.run.workdir import ContainerOptions

        children = scope.wd_task.tasks if scope.wd_task else []
        first = next((t for t in children if isinstance(t, ScriptTask)), None)
        if first is not None:
            options = runner.image_for(first, runner._context(), runner._where(first))
        else:
            image = runner.resolve_image(self.settings.default_shell_image, "IF_NOT_PRESENT")
            options = ContainerOptions(image)
        return scope.wd.container(options)

    def _reader(self, runner: FlowRunner, scope: Scope) -> WorkspaceReader:
        return WorkspaceReader(
            self.engine, self._container(runner, scope), self.settings.workspace_path
        )

    def _put(self, container: str, entries: Iterable[Entry]) -> None:
        """Stream entries into the workspace as one tar archive."""
        with io.BufferedReader(ChunkReader(Prefetch(tar_stream(entries))), CHUNK) as body:
            self.engine.put_archive(container, self.settings.workspace_path, body)

    # ----- seeding

    def seed(
        self,
        runner: FlowRunner,
        scope: Scope,
        run: TaskRun,
        namespace_files: NamespaceFiles | None,
        input_files: dict[str, str] | str | None,
        ctx: dict[str, Any],
        where: str,
        placed: set[str] | None,
        container: str | None = None,
    ) -> None:
        """Namespace files then inputFiles, as one archive; inline inputFiles win.

        Args:
            placed: files known to be in the workspace already (``None``: list it when
                ``ifExists`` needs to know).
            container: the container to seed through (a running one is picked when ``None``).

        Raises:
            UnsafePathError: a rendered path or glob escapes the workspace.
            NotFoundError: an unknown namespace or storage URI.
            WorkspaceError: ``ifExists: FAIL`` and a namespace file is already there.
        """
        inline = self._input_entries(runner, input_files, ctx, where)
        from_namespaces: dict[str, Entry] = {}
        used: list[str] = []
        if namespace_files is not None and namespace_files.enabled:
            from_namespaces, used = self._namespace_entries(runner, namespace_files, ctx, where)
            for path in inline:
                from_namespaces.pop(path, None)
            if from_namespaces and namespace_files.ifExists != "OVERWRITE":
                if placed is None:
                    target = container or self._container(runner, scope)
                    reader = WorkspaceReader(self.engine, target, self.settings.workspace_path)
                    placed = reader.listing().paths
                self._if_exists(
                    runner, run, namespace_files.ifExists, from_namespaces, placed, where
                )
        if not inline and not from_namespaces:
            if used:
                runner._log(
                    run,
                    Level.WARN,
                    f"namespaceFiles: no file of {', '.join(used)} matches the globs",
                )
            return
        counter = _Counter()
        target = container or self._container(runner, scope)
        self._put(target, counter.through([*from_namespaces.values(), *inline.values()]))
        parts = []
        if used:
            parts.append(f"{len(from_namespaces)} namespace file(s) from {', '.join(used)}")
        if inline:
            parts.append(f"{len(inline)} inputFile(s)")
        runner._log(
            run,
            Level.INFO,
            f"seeded {' and '.join(parts)} ({human_size(counter.bytes)}) in one archive",
        )

    def _if_exists(
        self,
        runner: FlowRunner,
        run: TaskRun,
        mode: str,
        entries: dict[str, Entry],
        placed: set[str],
        where: str,
    ) -> None:
        clashes = sorted(p for p in entries if p in placed)
        if not clashes:
            return
        shown = ", ".join(clashes[:5]) + (
            f" and {len(clashes) - 5} more" if len(clashes) > 5 else ""
        )
        if mode == "FAIL":
            raise WorkspaceError(
                f"namespaceFiles: already in the workspace (ifExists: FAIL): {shown}", where=where
            )
        if mode == "WARN":
            runner._log(
                run, Level.WARN, f"namespaceFiles: kept the existing {shown} (ifExists: WARN)"
            )
        for path in clashes:
            entries.pop(path)

    def _namespace_entries(
        self, runner: FlowRunner, spec: NamespaceFiles, ctx: dict[str, Any], where: str
    ) -> tuple[dict[str, Entry], list[str]]:
        render = runner.renderer.render
        assert runner.loaded is not None
        names = [
            render(n, ctx, where=where) for n in spec.namespaces or [runner.loaded.flow.namespace]
        ]
        globs = GlobSet.of(
            [render(p, ctx, where=where) for p in spec.include],
            [render(p, ctx, where=where) for p in spec.exclude],
        )
        chosen: dict[str, Entry] = {}
        for namespace in names:
            for found in self.namespaces.select(namespace, globs):
                path = f"{namespace}/{found.path}" if spec.folderPerNamespace else found.path
                chosen[path] = Entry.host_file(path, found.host)
        return chosen, names

    def _input_entries(
        self,
        runner: FlowRunner,
        files: dict[str, str] | str | None,
        ctx: dict[str, Any],
        where: str,
    ) -> dict[str, Entry]:
        if not files:
            return {}
        render = runner.renderer.render
        if isinstance(files, str):
            text = render(files, ctx, where=where)
            try:
                parsed = json.loads(text)
            except ValueError:
                parsed = None
            if not isinstance(parsed, dict):
                raise WorkspaceError(
                    "inputFiles given as a string must render to a JSON object of path -> content",
                    where=where,
                )
            files = {str(k): v if isinstance(v, str) else json.dumps(v) for k, v in parsed.items()}
        entries: dict[str, Entry] = {}
        for raw_path, content in files.items():
            path = render(raw_path, ctx, where=where)
            try:
                name = str(PurePosixPath(check_safe(path, "inputFiles path")))
            except UnsafePathError as exc:
                raise UnsafePathError(exc.message, where=where) from None
            text = render(content, ctx, where=where)
            if text.startswith(SCHEME + "/"):
                uri = text.strip()
                with self.artifacts.open(uri) as fh:  # NotFoundError names a missing URI
                    size = os.fstat(fh.fileno()).st_size
                entries[name] = Entry(
                    name, "file", size, 0o644, opener=functools.partial(self.artifacts.open, uri)
                )
            else:
                entries[name] = Entry.inline(name, text.encode())
        return entries

    # ----- harvesting

    def harvest(
        self,
        runner: FlowRunner,
        run: TaskRun,
        reader: WorkspaceReader,
        listing: Listing | None,
        patterns: list[str],
        what: str,
    ) -> dict[str, str]:
        """Stream the files matching the globs into the artifact store; returns path -> URI.

        Links are never followed or stored: a link that matches is reported and skipped.
        A glob that matches nothing is a warning line.

        Raises:
            UnsafePathError: a glob is absolute or climbs out with ``..``.
        """
        assert runner.execution is not None and runner.loaded is not None
        regexes = [glob_regex(p) for p in patterns]
        listing = listing or reader.listing()
        matched = {p for p in listing.paths if any(r.match(p) for r in regexes)}
        for pattern, regex in zip(patterns, regexes, strict=True):
            if not any(regex.match(p) for p in matched):
                runner._log(run, Level.WARN, f"{what}: nothing matches {pattern!r}")
        links = sorted(p for p in matched if p in listing.links)
        files = sorted(matched - set(links))
        refused: dict[str, str] = {p: "a symbolic link" for p in links}
        found: dict[str, str] = {}
        if files:
            flow = runner.loaded.flow
            prefix = self.artifacts.prefix(
                flow.namespace, flow.id, runner.execution.id, run.task_id, run.id
            )
            roots = cover(files, listing.paths) if listing.by_find else ["."]
            wanted = set(files)
            done = write_members(
                reader.stream(roots), self.artifacts.root / prefix, wanted.__contains__
            )
            refused.update(done.refused)
            found = {rel: self.artifacts.uri(prefix, rel) for rel in sorted(done.written)}
            size = sum(p.stat().st_size for p in done.written.values())
            runner._log(
                run,
                Level.INFO,
                f"{what}: collected {len(found)} file(s) "
                f"({human_size(size)}) in {len(roots)} stream(s)",
            )
        for rel, why in sorted(refused.items()):
            runner._log(
                run, Level.WARN, f"{what}: {rel} is {why}; not collected (links are never followed)"
            )
        return found

    # ----- cache

    def _cache_key(self, runner: FlowRunner, wd: WorkingDirectoryTask) -> CacheKey:
        assert runner.loaded is not None
        return CacheKey(runner.loaded.flow.namespace, runner.loaded.flow.id, wd.id)

    def _restore_cache(
        self, runner: FlowRunner, scope: Scope, run: TaskRun, wd: WorkingDirectoryTask
    ) -> set[str]:
        assert wd.cache is not None
        key = self._cache_key(runner, wd)
        ttl = wd.cache.ttl.total_seconds() if wd.cache.ttl else None
        entry, why = self.cache.fresh(key, ttl)
        if entry is None:
            runner._log(run, Level.INFO, f"cache miss for {key}: {why}")
            return set()
        started = time.monotonic()
        try:
            with entry.tar.open("rb") as fh:
                self.engine.put_archive(
                    self._container(runner, scope), self.settings.workspace_path, fh
                )
        except (ExecutorError, OSError) as exc:
            runner._log(run, Level.WARN, f"cache restore failed ({exc}); going on without it")
            return set()
        runner._log(
            run,
            Level.INFO,
            f"cache hit for {key}: restored {len(entry.paths)} file(s) "
            f"({human_size(entry.size)}, saved {entry.age():.0f}s ago) "
            f"in {time.monotonic() - started:.2f}s",
        )
        return set(entry.paths)

    def _save_cache(
        self,
        runner: FlowRunner,
        run: TaskRun,
        wd: WorkingDirectoryTask,
        reader: WorkspaceReader,
        listing: Listing,
        ctx: dict[str, Any],
        where: str,
    ) -> None:
        assert wd.cache is not None
        key = self._cache_key(runner, wd)
        globs = GlobSet.of([runner.renderer.render(p, ctx, where=where) for p in wd.cache.patterns])
        chosen = {p for p in listing.paths if globs(p)}
        if not chosen:
            runner._log(
                run,
                Level.WARN,
                f"cache for {key}: nothing matches {', '.join(wd.cache.patterns)}; not saved",
            )
            return
        dirs = {str(parent) for p in chosen for parent in PurePosixPath(p).parents}
        roots = cover(chosen, listing.paths) if listing.by_find else ["."]
        members = (
            m for m in reader.stream(roots) if m[0] in chosen or (m[1].isdir() and m[0] in dirs)
        )
        result = self.cache.save(key, members)
        if result.saved:
            runner._log(
                run,
                Level.INFO,
                f"cache saved for {key}: {result.files} file(s) "
                f"({human_size(result.size)}, {result.reason})",
            )
        else:
            runner._log(run, Level.INFO, f"cache for {key} {result.reason}; not saved again")

    # ----- git

    def clone(
        self,
        runner: FlowRunner,
        task: CloneTask,
        run: TaskRun,
        scope: Scope,
        ctx: dict[str, Any],
        where: str,
    ) -> dict[str, Any]:
        """Clone on the host, stream the tree into the workspace; outputs ``directory``."""

        def render(value: str | None) -> str | None:
            return runner.renderer.render(value, ctx, where=where) if value is not None else None

        request = git.CloneRequest(
            url=render(task.url) or "",
            branch=render(task.branch),
            tag=render(task.tag),
            commit=render(task.commit),
            depth=task.depth,
            submodules=task.cloneSubmodules,
            username=render(task.username),
            password=render(task.password),
            private_key=render(task.privateKey),
            passphrase=render(task.passphrase),
        )
        runner.secrets.remember(*request.secrets())
        directory = render(task.directory) or ""
        if directory:
            try:
                directory = str(PurePosixPath(check_safe(directory, "Clone directory")))
            except UnsafePathError as exc:
                raise UnsafePathError(exc.message, where=where) from None
        timeout = task.timeout.total_seconds() if task.timeout else None
        with tempfile.TemporaryDirectory(prefix="executor-clone-") as tmp:
            try:
                result = git.clone(
                    request,
                    Path(tmp),
                    timeout=timeout,
                    log=lambda line: runner._log(run, Level.INFO, line),
                )
            except ExecutorError as exc:
                raise type(exc)(runner.secrets.mask(exc.message), where=where) from None
            counter = _Counter()
            self._put(
                self._container(runner, scope),
                counter.through(tree_entries(result.path, directory)),
            )
        runner._log(
            run,
            Level.INFO,
            f"cloned {result.ref} at {result.commit[:12]} into "
            f"{directory or '.'}: {counter.files} file(s), "
            f"{human_size(counter.bytes)} streamed in one archive",
        )
        workspace = self.settings.workspace_path
        return {
            "directory": f"{workspace}/{directory}" if directory else workspace,
            "commit": result.commit,
        }
