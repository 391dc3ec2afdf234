"""Where the records live (a SQLite file or a PostgreSQL database) and the SQL that differs.

Every module of ``store/`` writes its SQL once, with ``?`` placeholders, and runs it through a
:class:`Connection`: SQLAlchemy's engine underneath, so one code path talks to both databases.
The few things that are not the same SQL on both are here and nowhere else:

- placeholders (``?`` for sqlite3, ``%s`` for psycopg) and ``%`` escaping;
- the write lock: SQLite's ``BEGIN IMMEDIATE``; on PostgreSQL a transaction-scoped advisory lock,
  so read-then-write transactions (claims, revisions) stay serialized across processes as on
  SQLite;
- JSON field access, substring search and the insertion-order tiebreak (``rowid``);
- the ``log_lines`` view (``json_each`` on SQLite, ``jsonb_array_elements_text`` on PostgreSQL).

Engines are made once per process and location. SQLite keeps one connection per :class:`Store`
(no pool: a store is one thread's connection, as before); PostgreSQL keeps a small pool.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import URL, Engine
from sqlalchemy.pool import NullPool

# Any number will do as long as it is always the same: the lock every write transaction of one
# PostgreSQL database takes, as SQLite's BEGIN IMMEDIATE takes the file's write lock.
_WRITE_LOCK_KEY = 0x6578_6563  # "exec"
POSTGRES_SCHEMES = ("postgresql", "postgres", "postgresql+psycopg")


@dataclass(frozen=True)
class Location:
    """Where a store lives.

    Attributes:
        url: the SQLAlchemy URL (its password is never printed: see ``str()``).
        path: the SQLite file, ``None`` for PostgreSQL.
    """

    url: URL
    path: Path | None

    @property
    def is_sqlite(self) -> bool:
        return self.path is not None

    @property
    def address(self) -> str:
        """``host:port`` of a PostgreSQL server (for messages)."""
        return f"{self.url.host or 'localhost'}:{self.url.port or 5432}"

    def __str__(self) -> str:
        if self.path is not None:
            return str(self.path)
        shown = self.url.set(drivername="postgresql")
        return shown.render_as_string(hide_password=True)


def location_of(target: Path | str) -> Location:
    """The location of ``target``: a SQLite file path, or a ``postgresql://`` URL.

    Raises:
        ValueError: the URL is not one this executor can use (the message says why).
    """
    if isinstance(target, Path):
        return Location(URL.create("sqlite", database=str(target)), target)
    scheme = target.split("://", 1)[0].lower() if "://" in target else ""
    if scheme == "sqlite":
        path = Path(target.split(":///", 1)[1]) if ":///" in target else None
        if path is None or not str(path):
            raise ValueError("a SQLite URL is sqlite:///ABSOLUTE/PATH/executor.db")
        return location_of(path)
    if scheme not in POSTGRES_SCHEMES:
        raise ValueError(
            f"unsupported database URL scheme {scheme or target[:20]!r}: "
            "use postgresql://USER:PASSWORD@HOST:PORT/DATABASE (or leave it unset for SQLite)"
        )
    try:
        url = sa.make_url(target)
    except sa.exc.ArgumentError:
        raise ValueError(
            "the database URL cannot be read: use postgresql://USER:PASSWORD@HOST:PORT/DATABASE"
        ) from None
    if not url.database:
        raise ValueError("the database URL names no database: add /DATABASE at its end")
    return Location(url.set(drivername="postgresql+psycopg"), None)


# ----- engines

_engines: dict[tuple[str, float], Engine] = {}
_engines_lock = threading.Lock()


def engine_for(location: Location, busy_timeout: float) -> Engine:
    """The process's engine for ``location`` (made on first use)."""
    key = (location.url.render_as_string(hide_password=False), busy_timeout)
    with _engines_lock:
        found = _engines.get(key)
        if found is None:
            found = _make_engine(location, busy_timeout)
            _engines[key] = found
        return found


def forget(location: Location) -> None:
    """Close and drop the engines of ``location`` (a test dropping its database calls this)."""
    url = location.url.render_as_string(hide_password=False)
    with _engines_lock:
        for key in [k for k in _engines if k[0] == url]:
            _engines.pop(key).dispose()


def _after_fork() -> None:
    # A child must not use its parent's pooled sockets: forget them without closing them.
    for engine in _engines.values():
        engine.dispose(close=False)
    _engines.clear()


os.register_at_fork(after_in_child=_after_fork)


def _make_engine(location: Location, busy_timeout: float) -> Engine:
    if location.is_sqlite:
        # isolation_level=AUTOCOMMIT: sqlite3 runs in autocommit mode and the store issues
        # BEGIN IMMEDIATE / COMMIT itself, exactly as it did before SQLAlchemy.
        return sa.create_engine(
            location.url,
            poolclass=NullPool,
            isolation_level="AUTOCOMMIT",
            connect_args={"timeout": busy_timeout, "check_same_thread": False},
        )
    millis = int(busy_timeout * 1000)
    return sa.create_engine(
        location.url,
        isolation_level="AUTOCOMMIT",
        pool_size=4,
        max_overflow=28,
        pool_timeout=max(busy_timeout, 1.0),
        pool_pre_ping=True,
        connect_args={
            "connect_timeout": max(int(busy_timeout), 2),
            # a lock held past busy_timeout is an error, as SQLite's busy_timeout makes it
            "options": f"-c lock_timeout={millis} -c client_encoding=UTF8",
            "application_name": "executor",
        },
    )


# ----- SQL that differs


@lru_cache(maxsize=512)
def _pyformat(sql: str) -> str:
    """``?`` placeholders as psycopg's ``%s`` (and a literal ``%`` doubled)."""
    return sql.replace("%", "%%").replace("?", "%s")


class Connection:
    """One connection to the store, with the store's SQL (``?`` placeholders) on either database.

    ``execute`` and ``executemany`` have sqlite3's shape, so the store's modules read the same on
    both databases; the dialect-specific fragments are its other methods.
    """

    def __init__(self, conn: sa.Connection, *, sqlite: bool) -> None:
        self.sa = conn
        self.sqlite = sqlite

    # -- statements

    def execute(self, sql: str, args: Sequence[Any] = ()) -> Any:  # a CursorResult

        if not self.sqlite:
            sql = _pyformat(sql)
        return self.sa.exec_driver_sql(sql, tuple(args))

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        batch = [tuple(row) for row in rows]
        if not batch:
            return  # SQLAlchemy would run the statement once without parameters
        if not self.sqlite:
            sql = _pyformat(sql)
        self.sa.exec_driver_sql(sql, batch)

    def begin(self, *, exclusive: bool) -> None:
        """Start a transaction; ``exclusive`` takes the store's write lock at once."""
        if self.sqlite:
            self.execute("BEGIN IMMEDIATE" if exclusive else "BEGIN")
        else:
            self.execute("BEGIN")
            if exclusive:
                self.execute(f"SELECT pg_advisory_xact_lock({_WRITE_LOCK_KEY})")

    def commit(self) -> None:
        self.execute("COMMIT")

    def rollback(self) -> None:
        self.execute("ROLLBACK")

    def close(self) -> None:
        self.sa.close()

    # -- fragments

    @property
    def insertion_order(self) -> str:
        """A column that grows with each inserted execution row (a tiebreak after start_date)."""
        return "rowid" if self.sqlite else "id"

    def json_key(self, column: str) -> tuple[str, Any]:
        """SQL for ``column``'s top-level JSON field named by the next parameter, and a function
        turning a key into that parameter."""
        if self.sqlite:
            return f"json_extract({column}, ?)", _sqlite_key
        return f"({column}::jsonb ->> ?)", str

    def json_path(self, column: str, *path: str) -> str:
        """SQL for the text at a constant JSON path of ``column`` (keys of ``[a-zA-Z]`` only)."""
        if self.sqlite:
            return f"json_extract({column}, '$.{'.'.join(path)}')"
        return f"({column}::jsonb #>> '{{{','.join(path)}}}')"

    def contains(self, haystack: str) -> str:
        """SQL that is true when ``haystack`` contains the next parameter."""
        return f"instr({haystack}, ?) > 0" if self.sqlite else f"strpos({haystack}, ?) > 0"

    @property
    def is_null_safe_equal(self) -> str:
        """``IS`` for a comparison where NULL equals NULL."""
        return "IS" if self.sqlite else "IS NOT DISTINCT FROM"


def _sqlite_key(key: str) -> str:
    return '$."' + key.replace('"', '""') + '"'


LOG_LINES_VIEW = {
    "sqlite": """
CREATE VIEW IF NOT EXISTS log_lines AS
    SELECT c.id AS chunk_id, CAST(m.key AS INTEGER) AS line_in_chunk, c.execution_id,
           c.task_id, c.task_run_id, c.attempt, c.stream, c.level,
           json_extract(c.ts_us, '$[' || m.key || ']') AS ts_us, m.value AS message
    FROM log_chunks c, json_each(c.messages) m
""",
    "postgresql": """
CREATE VIEW log_lines AS
    SELECT c.id AS chunk_id, (m.ord - 1)::integer AS line_in_chunk, c.execution_id,
           c.task_id, c.task_run_id, c.attempt, c.stream, c.level,
           (c.ts_us::jsonb ->> (m.ord - 1)::integer)::bigint AS ts_us, m.message
    FROM log_chunks c,
         jsonb_array_elements_text(c.messages::jsonb) WITH ORDINALITY AS m(message, ord)
""",
}
