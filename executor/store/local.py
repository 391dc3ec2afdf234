"""The stores of this host: the record database (SQLite in ``EXECUTOR_HOME``, or PostgreSQL) and
the file stores under ``EXECUTOR_HOME``.

What ``executor run``, the CLI's other commands and the server own and use. ``app.py`` builds
them (:func:`open_local`, chosen by the ``sqlite``/``postgresql`` scheme of where the records
live); nothing else opens a store by its path.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from executor.errors import UsageError
from executor.model import LogLine
from executor.settings import Settings
from executor.store.api import ArtifactStore, Held, HostFiles, RecordStore, Services
from executor.store.connection import DEFAULT_BUSY_TIMEOUT
from executor.store.db import Store
from executor.store.dialect import location_of
from executor.store.files.artifacts import LocalArtifactStore, Reader
from executor.store.files.cache import LocalCacheStore
from executor.store.files.namespaces import LocalNamespaceStore
from executor.store.kv_sql import SqlKvStore
from executor.store.purge import (
    BATCH,
    LOG_BATCH,
    ExecutionSelection,
    LogSelection,
    PurgeCounts,
    PurgeParts,
)


class LocalRecords(RecordStore):
    """The record database at ``target``: connections for the CLI and the server, and what a
    run on this host needs of it (a short connection per call: any thread may call).

    Args:
        target: the SQLite file, or a ``postgresql://`` URL.
        busy_timeout: seconds a connection waits for another process's lock (by default).
    """

    def __init__(self, target: Path | str, busy_timeout: float = DEFAULT_BUSY_TIMEOUT) -> None:
        self._target = target
        self.busy_timeout = busy_timeout

    @property
    def where(self) -> str:
        if isinstance(self._target, Path):
            return str(self._target)
        try:
            return str(location_of(self._target))
        except ValueError:
            return "the database of EXECUTOR_DATABASE_URL"

    @property
    def is_sqlite(self) -> bool:
        """Whether the records are a SQLite file (of this host)."""
        return isinstance(self._target, Path) or self._target.lower().startswith("sqlite:")

    def connect(self, *, busy_timeout: float | None = None, migrate: bool = True) -> Store:
        """One connection, for the thread that calls (``with records.connect() as store``).

        Raises:
            StoreError: the store cannot be reached or used.
        """
        wait = self.busy_timeout if busy_timeout is None else busy_timeout
        return Store(self._target, busy_timeout=wait, migrate=migrate)

    def open(self, *, recover: bool = True) -> Store:
        """:meth:`connect`, then mark FAILED the executions whose executor died (``recover``).

        Raises:
            StoreError: the store cannot be reached or used.
        """
        return Store.open(self._target, busy_timeout=self.busy_timeout, recover=recover)

    def ping(self, timeout: float) -> dict[str, Any]:
        """Connect and run one query (a readiness probe): the kind of database and where.

        Raises:
            StoreError: the store cannot be reached or used.
        """
        from executor.store.observe import ping

        return ping(self._target, timeout)

    # ----- RecordStore

    def for_reader(self, reader: Reader) -> LocalRecords:
        return self

    def writer(self) -> Store:
        return self.connect()

    def logs(self, execution_id: str) -> list[LogLine]:
        with self.connect() as store:
            return [stored.line for stored in store.logs(execution_id)]

    def take_resume(self, execution_id: str) -> dict[str, str] | None:
        with self.connect() as store:
            return store.take_resume(execution_id)

    def purge(
        self,
        selection: ExecutionSelection,
        parts: PurgeParts,
        files: ArtifactStore | None,
        *,
        dry_run: bool = False,
        batch: int | None = None,
    ) -> PurgeCounts:
        with self.connect() as store:
            return store.purge_executions(
                selection, parts, files, dry_run=dry_run, batch=batch or BATCH
            )

    def purge_logs(
        self, selection: LogSelection, *, dry_run: bool = False, batch: int | None = None
    ) -> int:
        with self.connect() as store:
            return store.purge_logs(selection, dry_run=dry_run, batch=batch or LOG_BATCH)


@dataclass(frozen=True)
class LocalServices(Services):
    """The stores of this host, as their own classes (what the CLI and the server also use)."""

    records: LocalRecords
    kv: SqlKvStore
    artifacts: LocalArtifactStore
    namespaces: LocalNamespaceStore
    cache: LocalCacheStore


def open_local(
    settings: Settings,
    target: Path | str,
    held: Held | None,
    in_use: Callable[[], set[Path]],
) -> LocalServices:
    """The stores of this host, the records at ``target``.

    Args:
        settings: where the file stores are (``EXECUTOR_HOME``).
        target: the record database (``Settings.db_path``).
        held: must be ``None``: a run held from a server uses that server's stores.
        in_use: the namespace-file versions overlay workspaces mount now (kept).

    Raises:
        UsageError: ``held`` was given.
    """
    if held is not None:
        raise UsageError(f"a run held from the server {held.server} cannot use a local database")
    artifacts = LocalArtifactStore(settings.artifacts_dir)
    namespaces = LocalNamespaceStore(settings.namespaces_dir, in_use)
    return LocalServices(
        records=LocalRecords(target),
        kv=SqlKvStore(target),
        artifacts=artifacts,
        namespaces=namespaces,
        cache=LocalCacheStore(settings.cache_dir),
        host=HostFiles(artifacts, namespaces),
    )
