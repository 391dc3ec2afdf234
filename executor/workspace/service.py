"""What goes into a workspace and what comes out: the runner's hooks around children.

Into the volume, before the first child (one archive each): the cache, then namespace files and
inputFiles together (inline content wins). A script child's own namespaceFiles and inputFiles are
seeded just before it runs; a git Clone streams the host-side clone in as one archive.

Out of the volume, after the children (also after a failure): outputFiles into the artifact
store, then the cache when the run succeeded and what matches its patterns changed. What comes
out is listed first and only the matches are streamed (see ``workspace.container``).

Python venvs (outside the workspace, per container) follow the cache too: restored into a
container before its first python child with dependencies, saved per image after a success
(``venv_cache_wanted`` says when).
"""

from __future__ import annotations

import functools
import io
import json
import os
import tarfile
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import timedelta
from pathlib import Path, PurePosixPath
from typing import Any

from executor.engine.api import Workdir
from executor.engine.container_paths import VENVS
from executor.errors import (
    ExecutorError,
    StoreError,
    TemplateError,
    UnsafePathError,
    WorkspaceError,
)
from executor.flow.checks import task_paths
from executor.flow.durations import parse_duration
from executor.flow.host_access import check_git_url
from executor.flow.model import (
    CloneTask,
    LocalFilesTask,
    NamespaceFiles,
    ScriptTask,
    Task,
    WorkingDirectoryTask,
)
from executor.flow.tasks_exec import ExecScript
from executor.flow.walk import walk_task
from executor.model import Level, State
from executor.paths import check_safe, from_namespace_root, unsafe_reason
from executor.settings import Settings
from executor.store.api import CacheStore, HostFiles
from executor.store.files.artifacts import SCHEME, LocalArtifactStore
from executor.store.files.cache import CacheKey
from executor.tar_writer import CHUNK, Entry, tar_stream, tree_entries
from executor.workspace import git
from executor.workspace.container import Listing, WorkspaceReader, cover
from executor.workspace.globs import GlobSet, glob_regex
from executor.workspace.hooks import Job, WorkspaceHooks
from executor.workspace.tarstream import (
    ChunkReader,
    Extracted,
    Prefetch,
    tar_members,
    write_members,
)


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
    for visit in walk_task(task, ()):
        for _, value, what in task_paths(visit.task, ()):
            reason = unsafe_reason(value, templated=True)
            if reason is not None:
                raise UnsafePathError(f"task '{visit.task.id}': {what} {value!r} {reason}")


def _is_text(name: str) -> bool:
    """Whether a listed name is valid UTF-8 (undecodable bytes arrive as surrogates)."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _shown(name: str) -> str:
    """A name with its undecodable bytes written as ``\\xNN``."""
    return repr(name.encode("utf-8", "surrogateescape"))[2:-1]


def _close(stream: object) -> None:
    closer = getattr(stream, "close", None)
    if closer is not None:
        closer()


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


def venv_cache_wanted(task: ScriptTask, wd: WorkingDirectoryTask | None) -> bool:
    """Whether the task's venv is kept for the next execution.

    It is when its WorkingDirectory has a ``cache``, or when the task says
    ``dependencyCacheEnabled: true``; ``dependencyCacheEnabled: false`` opts out of both. Left
    unset without a ``cache`` it is not: nothing would bound the entry's age.
    """
    if not (task.dependencies or task.requirements):
        return False
    if "dependencyCacheEnabled" in task.model_fields_set:
        return task.dependencyCacheEnabled
    return wd is not None and wd.cache is not None


class WorkspaceService(WorkspaceHooks):
    """Seeds workspaces before children run and harvests output files after.

    Args:
        settings: the executor's settings.
        files: this host's artifact directory (outputs are streamed into it) and the namespace
            files workspaces are seeded from.
        cache: the WorkingDirectory caches.
    """

    def __init__(self, settings: Settings, files: HostFiles, cache: CacheStore) -> None:
        self.settings = settings
        self.artifacts = files.artifacts
        self.namespaces = files.namespaces
        self.cache = cache
        self._venv_images: dict[str, str] = {}  # container -> image, its venvs to be saved
        self._venv_lock = threading.Lock()

    # ----- hooks called by the runner

    def before_children(self, job: Job, workdir: Workdir, wd: WorkingDirectoryTask) -> None:
        """Restore the cache, then seed namespace files and inputFiles (one archive each).

        With an engine on this host and nothing in the workspace yet, namespace files are not
        copied: their versions become the overlay's read-only lower layer (``_layer``).
        """
        check_task_paths(wd)
        placed: set[str] = set()
        if wd.cache is not None:
            placed = self._restore_cache(job, workdir, wd)
        if not placed and self._layer(job, workdir, wd.namespaceFiles):
            self.seed(job, workdir, None, wd.inputFiles, placed)
            return
        self.seed(job, workdir, wd.namespaceFiles, wd.inputFiles, placed)

    def after_children(
        self, job: Job, workdir: Workdir, wd: WorkingDirectoryTask, state: State
    ) -> tuple[State, dict[str, str] | None]:
        """Collect outputFiles (also after a failure), then save the cache after a success.

        Returns:
            The WorkingDirectory's state and its outputFiles (path -> URI) when it asks for any.
        """
        succeeded = state in (State.SUCCESS, State.WARNING)
        with self._venv_lock:
            venvs = [
                (c, self._venv_images.pop(c)) for c in workdir.containers if c in self._venv_images
            ]
        if succeeded:
            for container, image in venvs:
                self._save_venvs(
                    job, workdir, container, CacheKey(job.namespace, job.flow_id, wd.id, image)
                )
        save_cache = wd.cache is not None and succeeded
        if not wd.outputFiles and not save_cache:
            return state, None
        if not workdir.containers:
            if wd.outputFiles:
                job.log(Level.WARN, "outputFiles: no container ran, nothing to collect")
            return state, None
        reader = self._reader(job, workdir)
        listing = reader.listing()
        files = None
        if wd.outputFiles:
            try:
                patterns = [job.render(p) for p in wd.outputFiles]
                files = self.harvest(job, reader, listing, patterns, "outputFiles")
            except ExecutorError as exc:
                job.log(Level.ERROR, f"collecting outputFiles failed: {exc}")
                return State.FAILED, None
        if save_cache:
            try:
                self._save_cache(job, wd, reader, listing)
            except ExecutorError as exc:
                job.log(Level.WARN, f"cache not saved: {exc}")
        return state, files

    def before_script(
        self,
        job: Job,
        workdir: Workdir,
        task: ExecScript,
        container: str,
        wd: WorkingDirectoryTask | None = None,
    ) -> None:
        """Restore the container's cached venvs (once), then seed the child's own
        namespaceFiles and inputFiles, just before it runs."""
        if wd is not None and isinstance(task, ScriptTask) and venv_cache_wanted(task, wd):
            self._restore_venvs(job, workdir, container, wd)
        if task.namespaceFiles is None and not task.inputFiles:
            return
        self.seed(job, workdir, task.namespaceFiles, task.inputFiles, None, container)

    def place_stored_files(
        self, job: Job, workdir: Workdir, container: str, files: dict[str, str]
    ) -> None:
        """Copy stored files (workspace path -> ``kestra:///`` URI) into the workspace.

        Raises:
            NotFoundError: a URI names no stored file.
        """
        store = self.artifacts.for_reader(job.reader)  # only what the execution may read
        entries = [self._stored_entry(store, path, uri) for path, uri in files.items()]
        counter = _Counter()
        self._put(workdir, container, counter.through(entries))
        job.log(
            Level.INFO,
            f"copied {len(entries)} stored file(s) ({human_size(counter.bytes)}) named in the "
            "commands into the workspace",
        )

    def _stored_entry(self, store: LocalArtifactStore, name: str, uri: str) -> Entry:
        with store.open(uri) as fh:  # NotFoundError names a missing URI
            size = os.fstat(fh.fileno()).st_size
        return Entry(name, "file", size, 0o644, opener=functools.partial(store.open, uri))

    def after_script(
        self,
        job: Job,
        workdir: Workdir,
        task: ExecScript,
        container: str,
        output_dir: str | None = None,
        extra: list[str] | None = None,
    ) -> dict[str, str] | None:
        """A script child's outputFiles as path -> URI (``None`` when it asks for none).

        Args:
            output_dir: the task's ``outputDir`` relative to the workspace, when it wrote there:
                its files are collected too, keyed by their path inside it.
            extra: more globs to collect (a task kind's own files).
        """
        globs = [*task.output_globs, *(extra or [])]
        if not globs and output_dir is None:
            return None
        reader = WorkspaceReader(workdir, container)
        listing = reader.listing()
        found: dict[str, str] = {}
        if globs:
            patterns = [job.render(p) for p in globs]
            found.update(self.harvest(job, reader, listing, patterns, "outputFiles"))
        if output_dir is not None:
            prefix = output_dir.rstrip("/") + "/"
            if any(path.startswith(prefix) for path in listing.paths):
                collected = self.harvest(job, reader, listing, [prefix + "**"], "outputDir")
                found.update({rel[len(prefix) :]: uri for rel, uri in collected.items()})
        return found

    def run_task(
        self, job: Job, workdir: Workdir, task: CloneTask | LocalFilesTask
    ) -> dict[str, Any]:
        """Run a git Clone or a LocalFiles task; returns its outputs."""
        if isinstance(task, CloneTask):
            return self.clone(job, workdir, task)
        outputs: dict[str, Any] = {}
        if task.inputs:
            self.seed(job, workdir, None, task.inputs, None)
        if task.outputs:
            patterns = [job.render(p) for p in task.outputs]
            outputs["uris"] = self.harvest(
                job, self._reader(job, workdir), None, patterns, "outputs"
            )
        return outputs

    # ----- containers

    def _reader(self, job: Job, workdir: Workdir) -> WorkspaceReader:
        return WorkspaceReader(workdir, workdir.any_container())

    def _put(self, workdir: Workdir, container: str, entries: Iterable[Entry]) -> None:
        """Stream entries into the workspace as one tar archive."""
        with io.BufferedReader(ChunkReader(Prefetch(tar_stream(entries))), CHUNK) as body:
            workdir.put_tar(container, workdir.workspace, body)

    # ----- seeding

    def seed(
        self,
        job: Job,
        workdir: Workdir,
        namespace_files: NamespaceFiles | None,
        input_files: dict[str, str] | str | None,
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
        inline = self._input_entries(job, input_files)
        from_namespaces: dict[str, Entry] = {}
        used: list[str] = []
        if namespace_files is not None and namespace_files.enabled:
            from_namespaces, used = self._namespace_entries(job, namespace_files)
            for path in inline:
                from_namespaces.pop(path, None)
            if from_namespaces and namespace_files.ifExists != "OVERWRITE":
                if placed is None:
                    target = container or workdir.any_container()
                    reader = WorkspaceReader(workdir, target)
                    placed = reader.listing().paths
                self._if_exists(job, namespace_files.ifExists, from_namespaces, placed)
        if not inline and not from_namespaces:
            if used:
                job.log(
                    Level.WARN,
                    f"namespaceFiles: no file of {', '.join(used)} matches the globs",
                )
            return
        counter = _Counter()
        target = container or workdir.any_container()
        self._put(workdir, target, counter.through([*from_namespaces.values(), *inline.values()]))
        parts = []
        if used:
            parts.append(f"{len(from_namespaces)} namespace file(s) from {', '.join(used)}")
        if inline:
            parts.append(f"{len(inline)} inputFile(s)")
        job.log(
            Level.INFO,
            f"seeded {' and '.join(parts)} ({human_size(counter.bytes)}) in one archive",
        )

    def _layer(self, job: Job, workdir: Workdir, spec: NamespaceFiles | None) -> bool:
        """Mount the chosen namespaces' current versions beneath the workspace; no copy.

        Only when every file of each namespace is chosen, at its own path (no globs, no
        ``folderPerNamespace``); later namespaces win, as when they are copied. Returns
        whether it was done; when not, the files are copied as usual.
        """
        if spec is None or not spec.enabled or spec.folderPerNamespace:
            return False
        if spec.include or spec.exclude:
            return False
        names = [job.render(n) for n in spec.namespaces or [job.namespace]]
        lower: list[Path] = []
        for name in reversed(names):  # the top layer first: the last namespace wins
            version = self.namespaces.mountable(name)
            if version is None:
                return False
            if version not in lower:
                lower.append(version)
        started = time.monotonic()
        why = workdir.layer_over(lower, self.settings.overlays_dir)
        if why is not None:
            job.log(Level.DEBUG, f"namespaceFiles: copying them ({why})")
            return False
        job.log(
            Level.INFO,
            f"seeded the namespace files of {', '.join(names)} without copying: their "
            f"versions are the workspace's read-only lower layer "
            f"({time.monotonic() - started:.2f}s, with the container start)",
        )
        return True

    def _if_exists(
        self,
        job: Job,
        mode: str,
        entries: dict[str, Entry],
        placed: set[str],
    ) -> None:
        clashes = sorted(p for p in entries if p in placed)
        if not clashes:
            return
        shown = ", ".join(clashes[:5]) + (
            f" and {len(clashes) - 5} more" if len(clashes) > 5 else ""
        )
        if mode == "FAIL":
            raise WorkspaceError(
                f"namespaceFiles: already in the workspace (ifExists: FAIL): {shown}",
                where=job.where,
            )
        if mode == "WARN":
            job.log(Level.WARN, f"namespaceFiles: kept the existing {shown} (ifExists: WARN)")
        for path in clashes:
            entries.pop(path)

    def _namespace_entries(
        self, job: Job, spec: NamespaceFiles
    ) -> tuple[dict[str, Entry], list[str]]:
        render = job.render
        names = [render(n) for n in spec.namespaces or [job.namespace]]
        globs = GlobSet.of(
            [from_namespace_root(render(p)) for p in spec.include],
            [from_namespace_root(render(p)) for p in spec.exclude],
        )
        chosen: dict[str, Entry] = {}
        for namespace in names:
            for found in self.namespaces.select(namespace, globs):
                path = f"{namespace}/{found.path}" if spec.folderPerNamespace else found.path
                chosen[path] = Entry.host_file(path, found.host)
        return chosen, names

    def _input_entries(
        self,
        job: Job,
        files: dict[str, str] | str | None,
    ) -> dict[str, Entry]:
        if not files:
            return {}
        render, where = job.render, job.where
        if isinstance(files, str):
            text = render(files)
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
            path = render(raw_path)
            try:
                name = str(PurePosixPath(check_safe(path, "inputFiles path")))
            except UnsafePathError as exc:
                raise UnsafePathError(exc.message, where=job.where) from None
            text = render(content)
            if text.startswith(SCHEME + "/"):
                uri = text.strip()
                store = self.artifacts.for_reader(job.reader)  # only what the execution may read
                with store.open(uri) as fh:  # NotFoundError names a missing URI
                    size = os.fstat(fh.fileno()).st_size
                entries[name] = Entry(
                    name, "file", size, 0o644, opener=functools.partial(store.open, uri)
                )
            else:
                entries[name] = Entry.inline(name, text.encode())
        return entries

    # ----- harvesting

    def harvest(
        self,
        job: Job,
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
        regexes = [glob_regex(p) for p in patterns]
        listing = listing or reader.listing()
        matched = {p for p in listing.paths if any(r.match(p) for r in regexes)}
        for pattern, regex in zip(patterns, regexes, strict=True):
            if not any(regex.match(p) for p in matched):
                job.log(Level.WARN, f"{what}: nothing matches {pattern!r}")
        undecodable = sorted(p for p in matched if not _is_text(p))
        for name in undecodable:
            job.log(
                Level.WARN,
                f"{what}: '{_shown(name)}' is not collected: its name is not valid UTF-8, and "
                "outputs and storage URIs are text; rename it in the task",
            )
        matched -= set(undecodable)
        links = sorted(p for p in matched if p in listing.links)
        files = sorted(matched - set(links))
        refused: dict[str, str] = {p: "a symbolic link" for p in links}
        found: dict[str, str] = {}
        if files:
            prefix = self.artifacts.prefix(
                job.namespace, job.flow_id, job.execution_id, job.task_id, job.task_run_id
            )
            roots = cover(files, listing.paths) if listing.by_find else ["."]
            done = self._collect(reader, roots, prefix, set(files))
            refused.update(done.refused)
            found = {rel: self.artifacts.uri(prefix, rel) for rel in sorted(done.written)}
            size = sum(p.stat().st_size for p in done.written.values())
            job.log(
                Level.INFO,
                f"{what}: collected {len(found)} file(s) "
                f"({human_size(size)}) in {len(roots)} stream(s)",
            )
        for rel, why in sorted(refused.items()):
            job.log(Level.WARN, f"{what}: {rel} is {why}; not collected (links are never followed)")
        return found

    def _collect(
        self, reader: WorkspaceReader, roots: list[str], prefix: PurePosixPath, wanted: set[str]
    ) -> Extracted:
        """Stream ``wanted`` into the store under ``prefix``; all of them or none.

        On any failure (disk full, Ctrl-C) the archive streams are closed at once, so the engine
        stops copying and lets the container go, and the files this call wrote are removed:
        nothing half-collected stays in the store.

        Raises:
            StoreError: the artifact store cannot be written (no space left, read-only, ...).
            WorkspaceError: the engine's archive ended before its end-of-archive block.
        """
        done = Extracted()
        members = reader.stream(roots)
        try:
            write_members(members, self.artifacts.root / prefix, wanted.__contains__, done)
        except BaseException as exc:
            _close(members)
            for path in done.written.values():
                path.unlink(missing_ok=True)
            if isinstance(exc, OSError):
                reason = (exc.strerror or str(exc)).lower()
                raise StoreError(
                    f"cannot write to the artifact store {self.artifacts.root}: {reason}"
                ) from None
            if isinstance(exc, tarfile.ReadError):  # the engine's stream has no framing of its own
                raise WorkspaceError(
                    f"the workspace's archive ended early ({exc}): the engine stopped or the"
                    " connection to it was cut; no file of it was collected"
                ) from None
            raise
        finally:
            _close(members)
        return done

    # ----- cache

    def _cache_key(self, job: Job, wd: WorkingDirectoryTask) -> CacheKey:
        return CacheKey(job.namespace, job.flow_id, wd.id)

    def _restore_cache(self, job: Job, workdir: Workdir, wd: WorkingDirectoryTask) -> set[str]:
        assert wd.cache is not None
        key = self._cache_key(job, wd)
        ttl = wd.cache.ttl.total_seconds() if wd.cache.ttl else None
        entry, why = self.cache.fresh(key, ttl)
        if entry is None:
            job.log(Level.INFO, f"cache miss for {key}: {why}")
            return set()
        started = time.monotonic()
        try:
            with entry.tar.open("rb") as fh:
                workdir.put_tar(workdir.any_container(), workdir.workspace, fh)
        except (ExecutorError, OSError) as exc:
            job.log(Level.WARN, f"cache restore failed ({exc}); going on without it")
            return set()
        job.log(
            Level.INFO,
            f"cache hit for {key}: restored {len(entry.paths)} file(s) "
            f"({human_size(entry.size)}, saved {entry.age():.0f}s ago) "
            f"in {time.monotonic() - started:.2f}s",
        )
        return set(entry.paths)

    def _save_cache(
        self,
        job: Job,
        wd: WorkingDirectoryTask,
        reader: WorkspaceReader,
        listing: Listing,
    ) -> None:
        assert wd.cache is not None
        key = self._cache_key(job, wd)
        globs = GlobSet.of([job.render(p) for p in wd.cache.patterns])
        chosen = {p for p in listing.paths if globs(p)}
        if not chosen:
            job.log(
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
            job.log(
                Level.INFO,
                f"cache saved for {key}: {result.files} file(s) "
                f"({human_size(result.size)}, {result.reason})",
            )
        else:
            job.log(Level.INFO, f"cache for {key} {result.reason}; not saved again")

    # ----- venvs

    def _restore_venvs(
        self, job: Job, workdir: Workdir, container: str, wd: WorkingDirectoryTask
    ) -> None:
        """Put the image's saved venvs into the container before its first child uses them.

        Held under the lock, so a concurrent child of the same container waits for the venv
        instead of installing it again.
        """
        image = workdir.image_of(container)
        with self._venv_lock:
            if image is None or container in self._venv_images:
                return
            self._venv_images[container] = image
            key = CacheKey(job.namespace, job.flow_id, wd.id, image)
            ttl = wd.cache.ttl.total_seconds() if wd.cache and wd.cache.ttl else None
            entry, why = self.cache.fresh(key, ttl)
            if entry is None:
                job.log(Level.INFO, f"no cached Python environment for {key}: {why}")
                return
            try:
                with entry.tar.open("rb") as fh:
                    workdir.put_tar(container, str(PurePosixPath(VENVS).parent), fh)
            except (ExecutorError, OSError) as exc:
                job.log(Level.WARN, f"restoring the Python environment failed ({exc}); going on")
                return
            job.log(
                Level.INFO,
                f"Python environment restored from cache for {key}: {len(entry.paths)} file(s) "
                f"({human_size(entry.size)}, saved {entry.age():.0f}s ago); no install needed",
            )

    def _save_venvs(self, job: Job, workdir: Workdir, container: str, key: CacheKey) -> None:
        """Save the venvs this container has (under ``VENVS``) as the image's entry."""
        found = workdir.admin_exec(container, ["/bin/sh", "-c", f"ls -A {VENVS}"])
        if found is not None and (found[0] != 0 or not found[1].strip()):
            return  # no venv was made here
        try:
            chunks = workdir.get_tar(container, VENVS)
            with ChunkReader(Prefetch(chunks)) as reader:
                result = self.cache.save(key, tar_members(reader, require_end=True))
        except (ExecutorError, OSError, tarfile.TarError) as exc:
            job.log(Level.WARN, f"Python environment not cached for {key}: {exc}")
            return
        if result.saved:
            job.log(
                Level.INFO,
                f"Python environment cached for {key}: {result.files} file(s) "
                f"({human_size(result.size)}, {result.reason})",
            )
        else:
            job.log(Level.INFO, f"cached Python environment for {key} {result.reason}")

    # ----- git

    def clone(
        self,
        job: Job,
        workdir: Workdir,
        task: CloneTask,
    ) -> dict[str, Any]:
        """Clone on the host, stream the tree into the workspace; outputs ``directory``."""

        def render(value: str | None) -> str | None:
            return job.render(value) if value is not None else None

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
            allow_file=self.settings.allow_host_options,
        )
        job.remember_secrets(*request.secrets())
        check_git_url(request.url, request.allow_file, job.where)  # known once rendered
        directory = render(task.directory) or ""
        if directory:
            try:
                directory = str(PurePosixPath(check_safe(directory, "Clone directory")))
            except UnsafePathError as exc:
                raise UnsafePathError(exc.message, where=job.where) from None
        timeout = _clone_timeout(task.timeout, render, job.where)
        with tempfile.TemporaryDirectory(prefix="executor-clone-") as tmp:
            try:
                result = git.clone(
                    request,
                    Path(tmp),
                    timeout=timeout,
                    log=lambda line: job.log(Level.INFO, line),
                )
            except ExecutorError as exc:
                raise type(exc)(exc.message, where=job.where) from None
            counter = _Counter()
            self._put(
                workdir,
                workdir.any_container(),
                counter.through(tree_entries(result.path, directory)),
            )
        job.log(
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


def _clone_timeout(
    value: timedelta | str | None, render: Callable[[str | None], str | None], where: str
) -> float | None:
    """The clone's ``timeout`` in seconds, a template rendered now."""
    if value is None or isinstance(value, timedelta):
        return value.total_seconds() if value else None
    rendered = (render(value) or "").strip()
    if not rendered:
        return None
    try:
        return parse_duration(rendered).total_seconds()
    except ValueError as exc:
        raise TemplateError(f"timeout: {exc}", where=where) from None
