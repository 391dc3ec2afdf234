"""One connection to the record store, SQLite or PostgreSQL, and the one place its errors are
translated (the base of :class:`executor.store.db.Store`).

By default the database lives at ``$EXECUTOR_HOME/executor.db`` in WAL mode, so readers
(``executor logs --follow``) never block the executor that writes, and several executors on the
same home each write in short ``BEGIN IMMEDIATE`` transactions, waiting (bounded,
``busy_timeout``) for one another instead of failing. With ``EXECUTOR_DATABASE_URL`` it is a
PostgreSQL database; the SQL that differs lives in :mod:`executor.store.dialect`, the schema and
its migrations in :mod:`executor.store.migrations` (applied when a connection opens).

Every driver error is translated to :class:`~executor.errors.StoreError` here (messages in
:mod:`executor.store.failures`: corrupt, locked, not writable, server unreachable, wrong
password...), and never escapes as a traceback.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any, Self

from executor.errors import StoreError, StoreUnavailable
from executor.store.dialect import Connection, Location, connect, driver_errors, location_of
from executor.store.failures import describe, is_transient
from executor.store.migrations import analyze, ensure_schema
from executor.store.migrations import current as current_revision

# The schema before Alembic (``PRAGMA user_version``): 2: log lines in chunks; 3: extra, resumes;
# 4: server mode's flows, queue, triggers; 5: kv. Alembic's baseline revision is that schema.
SCHEMA_VERSION = 5
DEFAULT_BUSY_TIMEOUT = 10.0


class Connected:
    """One connection to the record store; use it only in the thread that opened it.

    Args:
        path: the SQLite database file (its directory is created when missing), or a
            ``postgresql://`` URL (``EXECUTOR_DATABASE_URL``, see ``Settings.db_path``).
        busy_timeout: seconds to wait for another process's lock before giving up.
        migrate: bring the schema up to date now (``False`` only to look at it: ``executor db``).

    Raises:
        StoreError: the directory cannot be created, the server cannot be reached, or the
            database is not a usable store.
    """

    def __init__(
        self, path: Path | str, *, busy_timeout: float = DEFAULT_BUSY_TIMEOUT, migrate: bool = True
    ) -> None:
        self.path = path
        self.busy_timeout = busy_timeout
        try:
            self.where: Location = location_of(path)
        except ValueError as exc:
            raise StoreError(f"EXECUTOR_DATABASE_URL: {exc}") from None
        if self.where.path is not None:
            directory = self.where.path.parent
            try:
                directory.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreError(
                    f"cannot create the state directory {directory}: {exc.strerror or exc}"
                ) from None
        with self._translate():
            self._conn = connect(self.where, busy_timeout)
        try:
            with self._translate():
                self._setup(migrate)
        except StoreError:
            self._conn.close()
            raise

    def _setup(self, migrate: bool) -> None:
        conn = self._conn
        if conn.sqlite:
            conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout * 1000)}")
            mode = conn.scalar("PRAGMA journal_mode = WAL")
            if str(mode).lower() != "wal":
                raise StoreError(f"the record store {self.where} cannot use WAL mode (got {mode})")
            # WAL + NORMAL: a commit survives the process being killed; only power loss may
            # lose the last transactions, and no commit waits for an fsync.
            conn.execute("PRAGMA synchronous = NORMAL")
        if migrate:
            ensure_schema(conn, self.where)

    def schema_revision(self) -> str | None:
        """The Alembic revision of the database (``None``: never migrated), for ``executor db``."""
        with self._translate():
            return current_revision(self._conn)

    def refresh_statistics(self) -> None:
        """Refresh the planner's statistics (SQLite; PostgreSQL's autovacuum keeps its own)."""
        with self._translate():
            analyze(self._conn)

    @contextmanager
    def transaction(self, *, exclusive: bool = True) -> Iterator[Connection]:
        """A write transaction for the store's other modules (errors become StoreError).

        ``exclusive`` (the default) holds the store's write lock from the start, so a read then
        a write in it see no other writer in between (claims, revisions, compare-and-set).
        """
        with self._translate(), self._transaction(exclusive=exclusive) as conn:
            yield conn

    @property
    def dialect(self) -> Connection:
        """The connection, for its dialect fragments (``json_path``, ``insertion_order``...)."""
        return self._conn

    def read(self, sql: str, args: Sequence[Any] = ()) -> list[Any]:
        """Rows of one query, for the store's other modules (errors become StoreError)."""
        with self._translate():
            return list(self._conn.execute(sql, args).fetchall())

    def close(self) -> None:
        """Close the connection (a checkpoint of the WAL happens when it is the last one)."""
        with suppress(*driver_errors(self.where)):
            self._conn.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _translate(self) -> Iterator[None]:
        try:
            yield
        except driver_errors(self.where) as exc:
            kind = StoreUnavailable if is_transient(exc, self.where) else StoreError
            raise kind(describe(exc, self.where, self.busy_timeout)) from None

    @contextmanager
    def _transaction(self, *, exclusive: bool = True) -> Iterator[Connection]:
        """A write transaction; ``exclusive`` takes the write lock at once (busy_timeout applies).

        On PostgreSQL a non-exclusive one runs beside other writers (log lines, upserts).
        """
        conn = self._conn
        try:
            conn.begin(exclusive=exclusive or conn.sqlite)
            yield conn
            conn.commit()
        except BaseException:
            # also when BEGIN's lock or COMMIT failed: PostgreSQL would refuse every later
            # statement of an aborted transaction, SQLite would keep the failed one open
            with suppress(*driver_errors(self.where)):
                conn.rollback()
            raise
