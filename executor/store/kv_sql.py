"""The KV store in the record database's ``kv`` table (SQLite or PostgreSQL).

:class:`KvTable` is one connection (for the thread that opened it); :class:`SqlKvStore` is the
:class:`~executor.store.api.KvStore` a run uses, a short connection per call, so it serves any
thread of the run (branches of a Parallel).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from executor.store.api import KvStore
from executor.store.connection import DEFAULT_BUSY_TIMEOUT
from executor.store.db import Store
from executor.store.files.artifacts import Reader
from executor.store.kv import KeyExists, KvEntry, check_key, check_namespace
from executor.store.records import parse_ts, ts


class KvTable(Store):
    """The record database's ``kv`` table; one connection, for the thread that opened it."""

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
        now: datetime | None = None,
    ) -> None:
        """Set ``key`` in ``namespace``.

        Raises:
            KeyExists: ``overwrite`` is false and the key has a live value.
            StoreError: the store cannot be written.
        """
        check_namespace(namespace)
        check_key(key)
        moment = now or datetime.now(UTC)
        expires = ts(moment + ttl) if ttl is not None else None
        encoded = json.dumps(value, default=str)
        with self._translate(), self._transaction() as conn:
            conn.execute(
                "DELETE FROM kv WHERE namespace = ? AND expires IS NOT NULL AND expires <= ?",
                (namespace, ts(moment)),
            )
            if not overwrite:
                found = conn.execute(
                    "SELECT 1 FROM kv WHERE namespace = ? AND key = ?", (namespace, key)
                ).fetchone()
                if found:
                    raise KeyExists(
                        f"cannot set key '{key}' in namespace '{namespace}': it already exists "
                        "and 'overwrite' is false"
                    )
            conn.execute(
                "INSERT INTO kv (namespace, key, type, value, description, updated, expires)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (namespace, key) DO UPDATE SET type = excluded.type,"
                " value = excluded.value, description = excluded.description,"
                " updated = excluded.updated, expires = excluded.expires",
                (namespace, key, kv_type, encoded, description, ts(moment), expires),
            )

    def get(self, namespace: str, key: str, *, now: datetime | None = None) -> KvEntry | None:
        """The live value of ``key``, or ``None`` (never set, deleted or expired)."""
        entries = self._select(namespace, key, now or datetime.now(UTC))
        return entries[0] if entries else None

    def entries(
        self, namespace: str, prefix: str | None = None, *, now: datetime | None = None
    ) -> list[KvEntry]:
        """The live entries of ``namespace`` (those whose key starts with ``prefix``), by key."""
        entries = self._select(namespace, None, now or datetime.now(UTC))
        return [e for e in entries if prefix is None or e.key.startswith(prefix)]

    def namespaces(self) -> list[str]:
        """Namespaces that hold at least one live value."""
        moment = ts(datetime.now(UTC))
        with self._translate():
            rows = self._conn.execute(
                "SELECT DISTINCT namespace FROM kv WHERE expires IS NULL OR expires > ?"
                " ORDER BY namespace",
                (moment,),
            ).fetchall()
        return [row[0] for row in rows]

    def delete(self, namespace: str, key: str, *, now: datetime | None = None) -> bool:
        """Remove ``key``; whether it had a live value."""
        moment = ts(now or datetime.now(UTC))
        with self._translate(), self._transaction() as conn:
            cursor = conn.execute(
                "DELETE FROM kv WHERE namespace = ? AND key = ?"
                " AND (expires IS NULL OR expires > ?)",
                (namespace, key, moment),
            )
            conn.execute(
                "DELETE FROM kv WHERE namespace = ? AND key = ? AND expires <= ?",
                (namespace, key, moment),
            )
            return bool(cursor.rowcount > 0)

    def _select(self, namespace: str, key: str | None, now: datetime) -> list[KvEntry]:
        """Live entries of ``namespace``: all of them, or the one of ``key``."""
        with self._translate():
            rows = self._conn.execute(
                "SELECT namespace, key, type, value, description, updated, expires FROM kv"
                " WHERE namespace = ? AND (expires IS NULL OR expires > ?)"
                + (" AND key = ?" if key is not None else "")
                + " ORDER BY key",
                (namespace, ts(now), *((key,) if key is not None else ())),
            ).fetchall()
        return [
            KvEntry(
                ns,
                key,
                kind,
                json.loads(value),
                description,
                parse_ts(updated),
                parse_ts(expires) if expires else None,
            )
            for ns, key, kind, value, description, updated, expires in rows
        ]


class SqlKvStore(KvStore):
    """The KV store of the record database at ``target`` (a SQLite file or a PostgreSQL URL).

    No rule of namespaces here: a run on this host uses any namespace's KV, as Kestra's open
    source edition lets it (a worker's run is held to its own namespace by the server).
    """

    def __init__(self, target: Path | str, busy_timeout: float = DEFAULT_BUSY_TIMEOUT) -> None:
        self._target = target
        self._busy_timeout = busy_timeout

    def table(self) -> KvTable:
        """One connection to the ``kv`` table (``with store.table() as kv``)."""
        return KvTable(self._target, busy_timeout=self._busy_timeout)

    def for_reader(self, reader: Reader) -> SqlKvStore:
        return self

    def get(self, namespace: str, key: str) -> KvEntry | None:
        with self.table() as kv:
            return kv.get(namespace, key)

    def entries(self, namespace: str, prefix: str | None = None) -> list[KvEntry]:
        with self.table() as kv:
            return kv.entries(namespace, prefix)

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
        with self.table() as kv:
            kv.put(
                namespace,
                key,
                kv_type,
                value,
                description=description,
                ttl=ttl,
                overwrite=overwrite,
            )

    def delete(self, namespace: str, key: str) -> bool:
        with self.table() as kv:
            return kv.delete(namespace, key)

    def namespaces(self) -> list[str]:
        """Namespaces that hold at least one live value."""
        with self.table() as kv:
            return kv.namespaces()
