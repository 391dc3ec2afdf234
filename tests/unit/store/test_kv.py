"""The KV store on a real SQLite file: types, TTL, overwrite, namespaces kept apart."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from executor.errors import UsageError
from executor.store.connection import SCHEMA_VERSION
from executor.store.db import Store
from executor.store.kv import KeyExists, typed
from executor.store.kv_sql import KvTable
from executor.store.migrations import HEAD

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def kv(store_at: Path | str) -> KvTable:
    store = KvTable(store_at)
    yield store
    store.close()


def test_values_keep_their_type_and_namespaces_are_apart(kv: KvTable) -> None:
    """A JSON value reads back as a dict, a number as a number; another namespace sees nothing."""
    kv.put("company.team", "orders", *typed('{"n": 3}', "JSON"))
    kv.put("company.team", "limit", *typed("42", "NUMBER"))
    kv.put("company.other", "limit", *typed("yes", None))
    assert kv.get("company.team", "orders").value == {"n": 3}
    entry = kv.get("company.team", "limit")
    assert (entry.type, entry.value) == ("NUMBER", 42)
    assert kv.get("company.other", "limit").value == "yes"
    assert kv.get("company.other", "orders") is None
    assert [e.key for e in kv.entries("company.team")] == ["limit", "orders"]
    assert [e.key for e in kv.entries("company.team", "ord")] == ["orders"]
    assert kv.namespaces() == ["company.other", "company.team"]


def test_ttl_makes_a_value_disappear(kv: KvTable) -> None:
    """Past its TTL a value reads as missing, is not listed, and cannot be deleted."""
    kv.put("ns", "token", "STRING", "abc", ttl=timedelta(minutes=5), now=T0)
    assert kv.get("ns", "token", now=T0 + timedelta(minutes=4)).value == "abc"
    assert kv.get("ns", "token", now=T0 + timedelta(minutes=6)) is None
    assert kv.entries("ns", now=T0 + timedelta(minutes=6)) == []
    assert kv.delete("ns", "token", now=T0 + timedelta(minutes=6)) is False


def test_overwrite_false_refuses_a_live_key_only(kv: KvTable) -> None:
    """overwrite: false fails on a live key and succeeds once it expired."""
    kv.put("ns", "k", "STRING", "one", ttl=timedelta(seconds=10), now=T0)
    with pytest.raises(KeyExists, match="already exists"):
        kv.put("ns", "k", "STRING", "two", overwrite=False, now=T0)
    kv.put("ns", "k", "STRING", "three", overwrite=False, now=T0 + timedelta(seconds=11))
    assert kv.get("ns", "k", now=T0 + timedelta(seconds=12)).value == "three"


def test_delete_says_whether_there_was_a_value(kv: KvTable) -> None:
    kv.put("ns", "k", "BOOLEAN", True)
    assert kv.delete("ns", "k") is True
    assert kv.delete("ns", "k") is False


@pytest.mark.parametrize(
    ("text", "kind", "expected"),
    [
        ("3.5", "NUMBER", 3.5),
        ("TRUE", "BOOLEAN", True),
        ("[1, 2]", "JSON", [1, 2]),
        ("pt5m", "DURATION", "PT5M"),
        ("2026-01-01T00:00:00Z", "DATETIME", "2026-01-01T00:00:00Z"),
    ],
)
def test_typed_reads_kestra_kv_types(text: str, kind: str, expected: object) -> None:
    assert typed(text, kind) == (kind, expected)


@pytest.mark.parametrize(("text", "kind"), [("abc", "NUMBER"), ("{", "JSON"), ("5m", "DURATION")])
def test_typed_refuses_a_value_of_the_wrong_type(text: str, kind: str) -> None:
    with pytest.raises(UsageError, match=f"is not a {kind} value"):
        typed(text, kind)


def test_bad_key_and_namespace_are_refused(kv: KvTable) -> None:
    with pytest.raises(UsageError, match="not a KV key"):
        kv.put("ns", "a key", "STRING", "x")
    with pytest.raises(UsageError, match="not a namespace"):
        kv.put("Company", "k", "STRING", "x")


def test_an_older_store_gains_the_kv_table(tmp_path: Path) -> None:
    """A schema-4 database from before Alembic (no kv) gains the kv table, and is stamped."""
    import sqlite3

    db = tmp_path / "executor.db"
    Store(db).close()
    conn = sqlite3.connect(db)
    conn.execute("DROP TABLE kv")
    conn.execute("DROP TABLE alembic_version")  # as executors before Alembic left it
    conn.execute("PRAGMA user_version = 4")
    conn.commit()
    conn.close()
    with KvTable(db) as store:
        store.put("ns", "k", "STRING", "v")
        assert store.get("ns", "k").value == "v"
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 5
    assert conn.execute("SELECT version_num FROM alembic_version").fetchall() == [(HEAD,)]
    conn.close()
