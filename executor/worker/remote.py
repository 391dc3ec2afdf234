"""The stores of a run held by a worker: the server's, through its ``/api/v1/worker`` API.

``app.py`` chooses these for an ``http``/``https`` records URL (the server's, with a
:class:`~executor.store.api.Held` run): the same Protocols as the local stores, so a run does
on a worker exactly what it does on the server. Every call names the held execution (the
server checks the worker holds it now: 409 otherwise) and the execution that asks (it, or one
of the subflows it started: the server checks that too, and Kestra's namespace rule).

- records: written through a :class:`~executor.worker.sink.RemoteSink` (in order; an
  execution's files go up before its end); log lines and resumes read from the server.
- KV: the server's KV store.
- artifacts: files are written on this host (a workspace streams its outputs into a directory)
  and go up to the server as each execution ends; a file of another execution is fetched from
  the server on first read.
- namespace files: read and changed on the server; a workspace is seeded from copies fetched
  into this host's store before the run (``ExecutionRunner``).
- cache: this host's (a cache belongs to the engine that made it).
"""

from __future__ import annotations

import copy
import hashlib
import os
import shutil
import stat
import tempfile
import threading
import zipfile
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import IO, Any, Self, TypeVar
from urllib.parse import quote

from pydantic import BaseModel

from executor.errors import (
    ExecutorError,
    NotFoundError,
    ServerError,
    StoreError,
    StoreUnavailable,
    UsageError,
)
from executor.model import Level, LogLine
from executor.settings import Settings
from executor.store.api import (
    ArtifactStore,
    Held,
    HostFiles,
    KvStore,
    NamespaceStore,
    RecordStore,
    Services,
)
from executor.store.files.artifacts import LocalArtifactStore, Reader
from executor.store.files.cache import LocalCacheStore
from executor.store.files.namespaces import LocalNamespaceStore, PushResult
from executor.store.kv import KeyExists, KvEntry
from executor.store.purge import ExecutionSelection, LogSelection, PurgeCounts, PurgeParts
from executor.store.records import ExecutionRecord
from executor.worker.client import Refused, WorkerClient
from executor.worker.protocol import (
    KvDeleted,
    KvFound,
    KvList,
    KvPut,
    KvPutAnswer,
    KvValue,
    LogsPage,
    NamespacePaths,
    NamespacePushed,
    NamespaceRemoved,
    Namespaces,
    ResumeAnswer,
)
from executor.worker.sink import RemoteSink

M = TypeVar("M", bound=BaseModel)


class _Server:
    """The server a held run's stores reach, shared by the stores of one held run."""

    def __init__(self, held: Held) -> None:
        self.held = held
        self.client = WorkerClient(held.server, token=held.token)
        self.base = f"/executions/{quote(held.execution_id, safe='')}"
        self._known = {held.execution_id}  # executions the server has records of
        self._lock = threading.Lock()

    @property
    def where(self) -> str:
        return f"the server at {self.held.server}"

    def params(self, reader: Reader | None) -> dict[str, Any]:
        """Who asks: this worker, for its attempt, as ``reader`` (the held execution)."""
        asking = reader.execution_id if reader is not None else self.held.execution_id
        self.announce(asking)
        return {"worker": self.held.worker, "attempt": self.held.attempt, "reader": asking}

    def announce(self, execution_id: str) -> None:
        """Make sure the server has the records of ``execution_id`` (a subflow started here
        is known to it from its records: the recorder writes what it holds first)."""
        with self._lock:
            if execution_id in self._known:
                return
        self.held.flush()
        with self._lock:
            self._known.add(execution_id)

    def ask(
        self,
        method: str,
        route: str,
        answer: type[M],
        reader: Reader | None,
        body: BaseModel | bytes | IO[bytes] | None = None,
        **params: Any,
    ) -> M:
        """One call about the held run; the server's refusals as the local stores raise them.

        Raises:
            NotFoundError: 404 (no such file, namespace).
            UsageError: 403 or 422 (another namespace's, a bad key or path): the server's words.
            Refused: 409, this worker no longer holds the run.
            StoreUnavailable: the server could not be reached for the client's patience.
            StoreError: any other failure.
        """
        try:
            return self.client.ask(
                method, self.base + route, answer, body, **self.params(reader), **params
            )
        except ServerError as exc:
            raise _translated(exc) from None

    def download(self, route: str, dest: Path, reader: Reader | None, **params: Any) -> bool:
        """Stream a file of the held run into ``dest``; ``False`` when the server has none."""
        return self._download(self.base + route, dest, reader, **params)

    def fetch_artifact(self, uri: str, dest: Path, reader: Reader) -> bool:
        """A stored file the reader may read (another execution's), into ``dest``."""
        return self._download("/artifacts", dest, reader, uri=uri, execution=self.held.execution_id)

    def _download(self, route: str, dest: Path, reader: Reader | None, **params: Any) -> bool:
        try:
            return self.client.download(route, dest, **self.params(reader), **params)
        except ServerError as exc:
            raise _translated(exc) from None


def _translated(exc: ServerError) -> ExecutorError:
    if isinstance(exc, Refused):
        return exc
    if exc.status == 404:
        return NotFoundError(exc.detail)
    if exc.status in (403, 422):
        return UsageError(exc.detail)
    if exc.status is None or exc.status >= 500:
        return StoreUnavailable(exc.message)
    return StoreError(exc.message)


# ----- records


class RemoteRecords(RecordStore):
    """The server's records, for one held run."""

    def __init__(
        self, server: _Server, artifacts: RemoteArtifacts, reader: Reader | None = None
    ) -> None:
        self._server = server
        self._artifacts = artifacts
        self._reader = reader

    @property
    def where(self) -> str:
        return self._server.where

    def for_reader(self, reader: Reader) -> RemoteRecords:
        return RemoteRecords(self._server, self._artifacts, reader)

    def writer(self) -> RemoteSink:
        held = self._server.held
        return RemoteSink(
            self._server.client,
            held.execution_id,
            held.worker,
            held.attempt,
            held.on_refused,
            self._artifacts.upload,
            max_bytes=held.part_bytes,
        )

    def logs(self, execution_id: str) -> list[LogLine]:
        self._server.held.flush()  # lines of this run still on their way: the server first
        lines: list[LogLine] = []
        after: int | None = 0
        while after is not None:
            page = self._server.ask(
                "GET", "/logs", LogsPage, self._reader, of=execution_id, after=after
            )
            lines.extend(
                LogLine(
                    line.timestamp,
                    execution_id,
                    line.task_id,
                    line.task_run_id,
                    line.attempt,
                    line.stream,
                    Level(line.level),
                    line.message,
                )
                for line in page.lines
            )
            after = page.after
        return lines

    def take_resume(self, execution_id: str) -> dict[str, str] | None:
        try:
            answer = self._server.ask(
                "POST", "/resume", ResumeAnswer, self._reader, paused=execution_id
            )
        except StoreError as exc:
            raise StoreUnavailable(exc.message) from None  # the pause goes on; asked again
        return answer.inputs

    def purge(
        self,
        selection: ExecutionSelection,
        parts: PurgeParts,
        files: ArtifactStore | None,
        *,
        dry_run: bool = False,
        batch: int | None = None,
    ) -> PurgeCounts:
        raise UsageError(_NO_PURGE.format(what="executions"))

    def purge_logs(
        self, selection: LogSelection, *, dry_run: bool = False, batch: int | None = None
    ) -> int:
        raise UsageError(_NO_PURGE.format(what="logs"))


_NO_PURGE = (
    "a worker cannot purge the server's {what}: purge tasks run only where the records are "
    "(an `executor server` without --broker, or `executor run`); on a cluster set the "
    "server's retention (EXECUTOR_SERVER_RETENTION) or run `executor purge` on its host"
)


# ----- KV


def _entry(value: KvValue) -> KvEntry:
    return KvEntry(
        value.namespace,
        value.key,
        value.type,
        value.value,
        value.description,
        value.updated,
        value.expires,
    )


def _kv_path(namespace: str, key: str | None = None) -> str:
    path = f"/kv/{quote(namespace, safe='')}"
    return path if key is None else f"{path}/{quote(key, safe='')}"


class RemoteKv(KvStore):
    """The server's KV store, for one held run (its namespace, and those below it)."""

    def __init__(self, server: _Server, reader: Reader | None = None) -> None:
        self._server = server
        self._reader = reader

    def for_reader(self, reader: Reader) -> RemoteKv:
        return RemoteKv(self._server, reader)

    def get(self, namespace: str, key: str) -> KvEntry | None:
        found = self._server.ask("GET", _kv_path(namespace, key), KvFound, self._reader)
        return _entry(found.entry) if found.entry is not None else None

    def entries(self, namespace: str, prefix: str | None = None) -> list[KvEntry]:
        given: dict[str, Any] = {"prefix": prefix} if prefix is not None else {}
        found = self._server.ask("GET", _kv_path(namespace), KvList, self._reader, **given)
        return [_entry(e) for e in found.entries]

    def put(
        self,
        namespace: str,
        key: str,
        kv_type: str,
        value: Any,
        *,
        description: str | None = None,
        ttl: timedelta | None = None,
        overwrite: bool = True,
    ) -> None:
        body = KvPut(
            type=kv_type,
            value=value,
            description=description,
            ttl_seconds=ttl.total_seconds() if ttl is not None else None,
            overwrite=overwrite,
        )
        answer = self._server.ask("PUT", _kv_path(namespace, key), KvPutAnswer, self._reader, body)
        if not answer.written:
            raise KeyExists(answer.message)

    def delete(self, namespace: str, key: str) -> bool:
        found = self._server.ask("DELETE", _kv_path(namespace, key), KvDeleted, self._reader)
        return found.deleted


# ----- artifacts


class RemoteArtifacts(LocalArtifactStore):
    """This host's copy of the server's artifact store, for one held run.

    Files are written here (a workspace streams its outputs into this directory) and go up
    to the server when their execution ends (:meth:`upload`, before its final record); a file
    this copy lacks (another execution's) is fetched from the server, as the execution that
    reads it, on first read.
    """

    def __init__(self, root: Path, server: _Server, reader: Reader | None = None) -> None:
        super().__init__(root, reader)
        self._server = server

    def fetch_missing(self, uri: str, dest: Path) -> bool:
        if self.reader is None:
            return False  # only an execution reads through the server, under its rule
        return self._server.fetch_artifact(uri, dest, self.reader)

    def directory_of(self, namespace: str, flow_id: str, execution_id: str) -> Path:
        """Where the files of one execution are on this host."""
        return self.root.joinpath(*namespace.split("."), flow_id, "executions", execution_id)

    def upload(self, ended: ExecutionRecord) -> None:
        """Send every file an ended execution (the held one, or a subflow's) left here to the
        server, each in parts the server's body limit lets through."""
        base = self.directory_of(ended.namespace, ended.flow_id, ended.id)
        if not base.is_dir():
            return
        for path in sorted(p for p in base.rglob("*") if p.is_file() and not p.is_symlink()):
            if path.name.startswith(".") and path.name.endswith(".part"):
                continue
            rel = path.relative_to(self.root).as_posix()
            self._upload_file(path, f"/artifacts/{rel}")

    def _upload_file(self, path: Path, url: str) -> None:
        """One file, part after part; the last part carries the whole file's sha256."""
        held = self._server.held
        part_bytes = max(held.part_bytes, 1)
        digest = hashlib.sha256()
        with path.open("rb") as data:
            size = os.fstat(data.fileno()).st_size
            offset = 0
            while True:
                part = data.read(min(part_bytes, size - offset))
                if not part and offset < size:
                    raise ExecutorError(f"{path} shrank while it was uploaded")
                digest.update(part)
                last = offset + len(part) >= size
                params: dict[str, Any] = {"worker": held.worker, "attempt": held.attempt}
                params.update(offset=offset, size=size)
                if last:
                    params["sha256"] = digest.hexdigest()
                self._server.client.upload(self._server.base + url, part, **params)
                offset += len(part)
                if last:
                    return

    def discard(self, namespace: str, flow_id: str, execution_id: str) -> None:
        """Forget this host's copy of one execution's files (they are on the server now)."""
        shutil.rmtree(self.directory_of(namespace, flow_id, execution_id), ignore_errors=True)

    def discard_all(self) -> None:
        """Forget every copy here (nothing runs: nobody reads what was fetched)."""
        shutil.rmtree(self.root, ignore_errors=True)


# ----- namespace files


def _space(namespace: str) -> str:
    return f"/namespaces/{quote(namespace, safe='')}"


class RemoteNamespaces(NamespaceStore):
    """The server's namespace files, for one held run: read any namespace's, change those of
    its namespace and below (the server's rule; its checks of paths and sizes)."""

    def __init__(self, server: _Server, reader: Reader | None = None) -> None:
        self._server = server
        self._reader = reader

    def for_reader(self, reader: Reader) -> Self:
        bound = copy.copy(self)
        bound._reader = reader
        return bound

    def namespaces(self) -> list[str]:
        return self._server.ask("GET", "/namespaces", Namespaces, self._reader).namespaces

    def _listing(self, namespace: str) -> NamespacePaths:
        path = _space(namespace) + "/paths"
        return self._server.ask("GET", path, NamespacePaths, self._reader)

    def exists(self, namespace: str) -> bool:
        return self._listing(namespace).exists

    def paths(self, namespace: str) -> list[str]:
        listing = self._listing(namespace)
        if not listing.exists:
            raise NotFoundError(f"namespace {namespace!r} has no files on the server")
        return listing.paths

    def read(self, namespace: str, path: str) -> bytes:
        with tempfile.TemporaryDirectory(prefix="executor-ns-") as tmp:
            dest = Path(tmp) / "file"
            if not self._server.download(
                _space(namespace) + "/file", dest, self._reader, path=path
            ):
                raise NotFoundError(f"namespace {namespace!r} has no file {path!r}")
            return dest.read_bytes()

    def push(
        self, namespace: str, source: Path, prefix: str = "", *, replace: bool = False
    ) -> PushResult:
        if not source.is_dir():
            raise UsageError(f"{source} is not a directory")
        result = PushResult()
        with tempfile.TemporaryFile(prefix="executor-push-") as archive:
            with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
                for path in sorted(source.rglob("*")):
                    rel = path.relative_to(source).as_posix()
                    mode = path.lstat().st_mode
                    if stat.S_ISDIR(mode):
                        continue
                    if not stat.S_ISREG(mode):
                        result.skipped.append(f"{rel} (not a regular file)")
                        continue
                    zf.write(path, rel)
                    result.copied += 1
                    result.bytes += path.stat().st_size
            archive.seek(0)
            self._server.ask(
                "PUT",
                _space(namespace) + "/files",
                NamespacePushed,
                self._reader,
                archive,
                prefix=prefix,
                replace=replace,
            )
        return result

    def remove(self, namespace: str, path: str) -> int:
        found = self._server.ask(
            "DELETE", _space(namespace) + "/files", NamespaceRemoved, self._reader, path=path
        )
        return found.removed


def open_remote(
    settings: Settings,
    target: Path | str,
    held: Held | None,
    in_use: Callable[[], set[Path]],
) -> Services:
    """The stores of a run ``held`` from the server at ``target``.

    Args:
        settings: this worker's settings: its copies of files live in its home.
        target: the server's URL.
        held: the run, as the worker holds it.
        in_use: the namespace-file versions overlay workspaces mount now (kept).

    Raises:
        UsageError: no held run was given (a server's stores are a worker's only).
    """
    if held is None:
        raise UsageError(
            f"{target} is a server: only a worker's run uses its stores (`executor worker`)"
        )
    server = _Server(held)
    artifacts = RemoteArtifacts(settings.artifacts_dir, server)
    mirror = LocalNamespaceStore(settings.namespaces_dir, in_use)
    return Services(
        records=RemoteRecords(server, artifacts),
        kv=RemoteKv(server),
        artifacts=artifacts,
        namespaces=RemoteNamespaces(server),
        cache=LocalCacheStore(settings.cache_dir),
        host=HostFiles(artifacts, mirror),
    )
