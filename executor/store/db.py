"""The record store: every execution, task run, attempt and log line, in SQLite or PostgreSQL.

A :class:`Store` is one connection and belongs to the thread that opened it: open one per thread
(through the services ``app.py`` builds: ``LocalRecords.connect``). Its jobs live in modules of
their own, composed here:

- :mod:`executor.store.connection`: opening, the schema, transactions, errors translated;
- :mod:`executor.store.writes`: snapshots and log lines written, resumes asked and taken;
- :mod:`executor.store.recovery`: executions whose executor died, marked FAILED;
- :mod:`executor.store.queries`: executions and log lines read back;
- :mod:`executor.store.log_chunks`: log lines stored in chunks;
- :mod:`executor.store.purge`: ended executions and old log lines removed, in batches;
- :mod:`executor.store.records`: the values written and read, and their encoding.
"""

from __future__ import annotations

from pathlib import Path

from executor.errors import StoreError
from executor.store.connection import DEFAULT_BUSY_TIMEOUT
from executor.store.purge import Purges
from executor.store.queries import Queries
from executor.store.recovery import Recovery
from executor.store.writes import RecordWrites


class Store(Queries, Recovery, RecordWrites, Purges):
    """One connection to the record store, with all its jobs (see the module's docstring).

    Args:
        path: the SQLite database file (its directory is created when missing), or a
            ``postgresql://`` URL.
        busy_timeout: seconds to wait for another process's lock before giving up.
        migrate: bring the schema up to date now (``False`` only to look at it: ``executor db``).

    Raises:
        StoreError: the directory cannot be created, the server cannot be reached, or the
            database is not a usable store.
    """

    @classmethod
    def open(
        cls, path: Path | str, *, busy_timeout: float = DEFAULT_BUSY_TIMEOUT, recover: bool = True
    ) -> Store:
        """Open the store and mark executions whose executor died (see :meth:`recover_dead`).

        Args:
            path: the database file or URL.
            busy_timeout: seconds to wait for a lock.
            recover: whether to run crash recovery now.

        Returns:
            The open store.

        Raises:
            StoreError: the store cannot be used.
        """
        store = cls(path, busy_timeout=busy_timeout)
        if recover:
            try:
                store.recover_dead()
            except StoreError:
                store.close()
                raise
        return store
