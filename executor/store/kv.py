"""The KV store: typed values per namespace and key, in the record store's ``kv`` table.

Kestra's KV store, on one host: ``core.kv.Set``/``Get``/``GetKeys``/``Delete``, the ``kv()``
template function and ``executor kv`` all come here. A value keeps the type it was set with
(``kvType``: STRING, NUMBER, BOOLEAN, DATETIME, DATE, DURATION, JSON), stored as JSON text. A
value past its TTL reads as missing and is removed by the next write to its namespace.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from executor.errors import StoreError, UsageError
from executor.names import check_key as check_key  # the one name rule, re-exported
from executor.names import check_namespace as check_namespace
from executor.store.db import DEFAULT_BUSY_TIMEOUT, Store, parse_ts, ts

TYPES = ("STRING", "NUMBER", "BOOLEAN", "DATETIME", "DATE", "DURATION", "JSON")


class KeyExists(StoreError):
    """``overwrite: false`` and the key has a value."""


@dataclass(frozen=True)
class KvEntry:
    """One stored value and what is known of it."""

    namespace: str
    key: str
    type: str
    value: Any
    description: str | None
    updated: datetime
    expires: datetime | None


def typed(value: Any, kv_type: str | None) -> tuple[str, Any]:
    """``value`` converted to ``kv_type`` (guessed from the value when ``None``), and the type.

    Raises:
        UsageError: the value cannot be read as that type; the message says which.
    """
    if kv_type is None:
        return _guess(value), value
    if kv_type not in TYPES:
        raise UsageError(f"unknown kvType {kv_type!r}; one of {', '.join(TYPES)}")
    if not isinstance(value, str):
        return kv_type, value
    text = value.strip()
    try:
        if kv_type == "NUMBER":
            number = json.loads(text)
            if not isinstance(number, int | float) or isinstance(number, bool):
                raise ValueError
            return kv_type, number
        if kv_type == "BOOLEAN":
            return kv_type, text.lower() == "true"
        if kv_type == "JSON":
            return kv_type, json.loads(text)
        if kv_type in ("DATETIME", "DATE"):
            datetime.fromisoformat(text.replace("Z", "+00:00"))
            return kv_type, text
        if kv_type == "DURATION":
            if not re.match(r"^-?P(?=\d|T\d)", text, re.IGNORECASE):
                raise ValueError
            return kv_type, text.upper()
    except ValueError:
        raise UsageError(f"{value!r} is not a {kv_type} value") from None
    return kv_type, value


def _guess(value: Any) -> str:
    if isinstance(value, bool):
        return "BOOLEAN"
    if isinstance(value, int | float):
        return "NUMBER"
    if isinstance(value, dict | list):
        return "JSON"
    return "STRING"


class KvStore(Store):
    """The record store, seen as a KV store; one connection, for the thread that opened it."""

    def __enter__(self) -> KvStore:
        return self

    @classmethod
    def at(cls, path: Path | str, *, busy_timeout: float = DEFAULT_BUSY_TIMEOUT) -> KvStore:
        return cls(path, busy_timeout=busy_timeout)

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
