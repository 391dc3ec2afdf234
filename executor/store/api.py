"""What a run reaches outside its process, as Protocols: the seams between a run and its stores.

Each Protocol has a local implementation (the record database, SQLite or PostgreSQL; files under
``EXECUTOR_HOME``) and, where a worker on another host needs one, an implementation that goes
through the server's API (:mod:`executor.worker.remote`). ``app.py`` chooses them once, by the URL
scheme of where the records live, and a run receives them through its ``RunContext``: nothing in
``run/`` opens a store by path. Every implementation is declared against its Protocol (subclasses
it), so mypy checks each of them against the one signature the run calls.

- :class:`RecordStore`: executions, task runs and log lines written (through a
  :class:`RecordSink`), log lines read back (``log.Fetch``), resumes of paused runs taken,
  history purged (``PurgeExecutions``, ``PurgeLogs``).
- :class:`KvStore`: the KV store (``core.kv.*``, ``kv()``, dbt's manifest).
- :class:`ArtifactStore`: execution files (``kestra:///`` URIs).
- :class:`NamespaceStore`: namespace files (``read()``, ``namespace.*Files``, git sync).
- :class:`CacheStore`: WorkingDirectory caches (always this host's).

``for_reader`` binds a store to the execution that uses it: the artifact store refuses what that
execution may not read, and a remote store tells the server which execution asks (a worker
holds an execution and the subflows it starts; the server checks both).

This module imports nothing heavy: the values named in the signatures are only types here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path, PurePosixPath
from typing import IO, TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import tarfile

    from executor.model import LogLine
    from executor.store.files.artifacts import LocalArtifactStore, Reader
    from executor.store.files.cache import CacheEntry, CacheKey, SaveResult
    from executor.store.files.namespaces import LocalNamespaceStore, PushResult
    from executor.store.kv import KvEntry
    from executor.store.purge import ExecutionSelection, LogSelection, PurgeCounts, PurgeParts
    from executor.store.records import Write


class RecordSink(Protocol):
    """Where a recorder's writer thread puts batches, in order; opened in that thread.

    ``write`` raises StoreError when the batch could not be kept (StoreUnavailable while the
    store is away: the recorder tries again).
    """

    def write(self, writes: Sequence[Write]) -> None: ...

    def close(self) -> None: ...


class RecordStore(Protocol):
    """The records of executions, as a run reaches them."""

    @property
    def where(self) -> str:
        """Where the records are, as messages name it (never with a password)."""
        ...

    def for_reader(self, reader: Reader) -> RecordStore:
        """The same store, used by the execution ``reader`` names."""
        ...

    def writer(self) -> RecordSink:
        """A sink for a recorder's writer thread (call it in that thread).

        Raises:
            StoreError: the store cannot be reached or used.
        """
        ...

    def logs(self, execution_id: str) -> list[LogLine]:
        """Every log line of an execution, in the order written (``log.Fetch``).

        Raises:
            StoreError: the store cannot be read, or the reader may not read that execution.
        """
        ...

    def take_resume(self, execution_id: str) -> dict[str, str] | None:
        """The pending resume of a paused execution (taken: asked once), ``None`` while none.

        Raises:
            StoreUnavailable: the store is away for now (the pause goes on).
        """
        ...

    def purge(
        self,
        selection: ExecutionSelection,
        parts: PurgeParts,
        files: ArtifactStore | None,
        *,
        dry_run: bool = False,
        batch: int | None = None,
    ) -> PurgeCounts:
        """Remove ended executions (what ``parts`` names of them), ``batch`` at a time (by
        default :data:`executor.store.purge.BATCH`); what went (``dry_run``: would go).

        Raises:
            UsageError: this store cannot purge (a worker's: the server's host purges).
            StoreError: the store cannot be read or written.
        """
        ...

    def purge_logs(
        self, selection: LogSelection, *, dry_run: bool = False, batch: int | None = None
    ) -> int:
        """Remove log lines of ended executions, in batches; how many (``dry_run``: would go).

        Raises:
            UsageError: this store cannot purge (a worker's: the server's host purges).
            StoreError: the store cannot be read or written.
        """
        ...


class KvStore(Protocol):
    """Kestra's KV store: typed values per namespace and key (see :mod:`executor.store.kv`)."""

    def for_reader(self, reader: Reader) -> KvStore:
        """The same store, used by the execution ``reader`` names."""
        ...

    def get(self, namespace: str, key: str) -> KvEntry | None:
        """The live value of ``key``, or ``None`` (never set, deleted or expired)."""
        ...

    def entries(self, namespace: str, prefix: str | None = None) -> list[KvEntry]:
        """The live entries of ``namespace`` whose key starts with ``prefix``, by key."""
        ...

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
        """Set ``key`` in ``namespace``.

        Raises:
            KeyExists: ``overwrite`` is false and the key has a live value.
            StoreError: the store cannot be written.
        """
        ...

    def delete(self, namespace: str, key: str) -> bool:
        """Remove ``key``; whether it had a live value."""
        ...


class ArtifactStore(Protocol):
    """Execution files, addressed by ``kestra:///`` URIs (see :mod:`executor.store.files`)."""

    def for_reader(self, reader: Reader | None) -> ArtifactStore:
        """The same store read by ``reader`` (``None``: anything, for the CLI and the server)."""
        ...

    def prefix(
        self, namespace: str, flow_id: str, execution_id: str, task_id: str, task_run_id: str
    ) -> PurePosixPath:
        """The store directory of one task run's files."""
        ...

    def uri(self, prefix: PurePosixPath, relative: str) -> str:
        """The URI of ``relative`` under ``prefix``."""
        ...

    def write(
        self, prefix: PurePosixPath, relative: str, chunks: Iterable[bytes] | IO[bytes]
    ) -> str:
        """Store one file (whole, or not at all); its URI."""
        ...

    def open(self, uri: str) -> IO[bytes]:
        """A stored file, open for reading.

        Raises:
            NotFoundError: no such file.
            UnsafePathError: the URI leads out of the store, or the reader may not read it.
        """
        ...

    def size(self, uri: str) -> int:
        """The size in bytes of a stored file."""
        ...

    def delete(self, uri: str) -> bool:
        """Remove a stored file the reader may read; whether there was one."""
        ...

    def execution_files(self, namespace: str, flow_id: str, execution_id: str) -> list[str]:
        """The URIs of every file of one execution."""
        ...

    def purge(self, namespace: str, flow_id: str, execution_id: str) -> list[str]:
        """Remove every file of one execution; their URIs."""
        ...


class NamespaceStore(Protocol):
    """Namespace files: a tree of files per namespace."""

    def for_reader(self, reader: Reader) -> NamespaceStore:
        """The same store, used by the execution ``reader`` names."""
        ...

    def namespaces(self) -> list[str]:
        """The namespaces that have files (those the reader may use), sorted."""
        ...

    def exists(self, namespace: str) -> bool:
        """Whether the namespace has files (a directory in the store)."""
        ...

    def paths(self, namespace: str) -> list[str]:
        """The relative path of every file of the namespace, sorted.

        Raises:
            NotFoundError: the namespace has no files.
        """
        ...

    def read(self, namespace: str, path: str) -> bytes:
        """The bytes of one file (``path`` relative to the namespace; a leading ``/`` ok).

        Raises:
            NotFoundError: no such namespace or file.
        """
        ...

    def push(
        self, namespace: str, source: Path, prefix: str = "", *, replace: bool = False
    ) -> PushResult:
        """Copy the regular files under the host directory ``source`` in, published at once
        (``replace``: they become the namespace's only files)."""
        ...

    def remove(self, namespace: str, path: str) -> int:
        """Remove one file or directory; how many files went.

        Raises:
            NotFoundError: no such namespace or path.
        """
        ...


class CacheStore(Protocol):
    """WorkingDirectory caches (and Python venvs), on the host that runs the workspace."""

    def fresh(self, key: CacheKey, ttl: float | None) -> tuple[CacheEntry | None, str]:
        """The entry to restore, or ``None`` with why not."""
        ...

    def save(
        self,
        key: CacheKey,
        members: Iterable[tuple[str, tarfile.TarInfo, IO[bytes] | None]],
    ) -> SaveResult:
        """Keep the members as the entry of ``key`` unless they are what it holds already."""
        ...


@dataclass(frozen=True)
class HostFiles:
    """The file stores of this host that a workspace streams into and seeds from.

    Attributes:
        artifacts: where output files are written (on a worker, its copy of the server's
            store: they go up as each execution ends).
        namespaces: the namespace files a workspace is seeded with (on a worker, the copies
            fetched from the server for its run).
    """

    artifacts: LocalArtifactStore
    namespaces: LocalNamespaceStore


@dataclass(frozen=True)
class Services:
    """Every store a run reaches, chosen once by ``app.py``; a run receives them in its
    ``RunContext`` and never opens one itself."""

    records: RecordStore
    kv: KvStore
    artifacts: ArtifactStore
    namespaces: NamespaceStore
    cache: CacheStore
    host: HostFiles

    def for_reader(self, reader: Reader) -> Services:
        """The stores as the execution ``reader`` names uses them (see the module's docstring)."""
        return Services(
            records=self.records.for_reader(reader),
            kv=self.kv.for_reader(reader),
            artifacts=self.artifacts.for_reader(reader),
            namespaces=self.namespaces.for_reader(reader),
            cache=self.cache,
            host=self.host,
        )


def _ignore(_: str) -> None:
    return None


def _nothing() -> None:
    return None


@dataclass(frozen=True)
class Held:
    """A run that a worker holds on a server: what its stores need to reach the server's.

    Attributes:
        server: the server's URL (``http://host:port``): its scheme chooses the remote stores.
        token: the worker's token.
        worker: the worker's name.
        execution_id: the execution the worker claimed (its subflows run under it).
        attempt: the attempt the worker runs.
        part_bytes: the largest request body the server takes (files travel in parts).
        on_refused: called once when the server says the worker no longer holds the run.
        flush: writes what the run's recorder holds (the server learns of a subflow from its
            records before the subflow may use a store).
    """

    server: str
    token: str | None
    worker: str
    execution_id: str
    attempt: int
    part_bytes: int = 8 * 1024 * 1024
    on_refused: Callable[[str], None] = _ignore
    flush: Callable[[], None] = _nothing
