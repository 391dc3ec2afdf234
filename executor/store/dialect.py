"""Where the records live (a SQLite file or a PostgreSQL database) and the SQL that differs.

Every module of ``store/`` writes its SQL once, with ``?`` placeholders, and runs it through a
:class:`Connection`, which has sqlite3's shape on both databases. On SQLite it is sqlite3 itself
(what the store always used: nothing is loaded on top, so a command starts as fast as before and
a loud task's lines cost what they cost); on PostgreSQL it is a SQLAlchemy engine over psycopg,
and SQLAlchemy (with Alembic) is imported only then, or when a SQLite home must be migrated.

The few things that are not the same SQL on both are here and nowhere else:

- placeholders (``?`` for sqlite3, ``%s`` for psycopg) and ``%`` escaping;
- the write lock: SQLite's ``BEGIN IMMEDIATE``; on PostgreSQL a transaction-scoped advisory lock,
  so read-then-write transactions (claims, revisions) stay serialized across processes as on
  SQLite;
- JSON field access, substring search, the insertion-order tiebreak (``rowid``) and byte-wise
  comparison (prefix ranges);
- the ``log_lines`` view (``json_each`` on SQLite, ``jsonb_array_elements_text`` on PostgreSQL).

A PostgreSQL engine (a small pool) is made once per process and URL.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import sqlalchemy as sa
    from sqlalchemy.engine import URL, Engine

# Any number will do as long as it is always the same: the lock every write transaction of one
# PostgreSQL database takes, as SQLite's BEGIN IMMEDIATE takes the file's write lock.
_WRITE_LOCK_KEY = 0x6578_6563  # "exec"
POSTGRES_SCHEMES = ("postgresql", "postgres", "postgresql+psycopg")


@dataclass(frozen=True)
class Location:
    """Where a store lives.

    Attributes:
        path: the SQLite file, ``None`` for PostgreSQL.
        url: the SQLAlchemy URL of a PostgreSQL database (its password is never printed: see
            ``str()``), ``None`` for SQLite.
    """

    path: Path | None
    url: URL | None = None

    @property
    def is_sqlite(self) -> bool:
        return self.path is not None

    @property
    def address(self) -> str:
        """``host:port`` of a PostgreSQL server (for messages)."""
        host, port = (self.url.host, self.url.port) if self.url is not None else (None, None)
        return f"{host or 'localhost'}:{port or 5432}"

    def __str__(self) -> str:
        if self.url is None:
            return str(self.path)
        return self.url.set(drivername="postgresql").render_as_string(hide_password=True)


def location_of(target: Path | str) -> Location:
    """The location of ``target``: a SQLite file path, or a ``postgresql://`` URL.

    Raises:
        ValueError: the URL is not one this executor can use (the message says why).
    """
    if isinstance(target, Path):
        return Location(target)
    scheme = target.split("://", 1)[0].lower() if "://" in target else ""
    if scheme == "sqlite":
        path = target.split(":///", 1)[1] if ":///" in target else ""
        if not path:
            raise ValueError("a SQLite URL is sqlite:///ABSOLUTE/PATH/executor.db")
        return Location(Path(path))
    if scheme not in POSTGRES_SCHEMES:
        raise ValueError(
            f"unsupported database URL scheme {scheme or target[:20]!r}: "
            "use postgresql://USER:PASSWORD@HOST:PORT/DATABASE (or leave it unset for SQLite)"
        )
    import sqlalchemy as sa

    try:
        url = sa.make_url(target)
    except sa.exc.ArgumentError:
        raise ValueError(
            "the database URL cannot be read: use postgresql://USER:PASSWORD@HOST:PORT/DATABASE"
        ) from None
    if not url.database:
        raise ValueError("the database URL names no database: add /DATABASE at its end")
    return Location(None, url.set(drivername="postgresql+psycopg"))


def driver_errors(where: Location) -> tuple[type[BaseException], ...]:
    """The exceptions of the drivers that may talk to ``where`` (the store translates them)."""
    if "sqlalchemy" not in __import__("sys").modules:
        return (sqlite3.Error,)
    import sqlalchemy as sa

    return (sqlite3.Error, sa.exc.SQLAlchemyError)


def connect(where: Location, busy_timeout: float) -> Connection:
    """A new connection to the store at ``where`` (one per :class:`Store`)."""
    if where.path is not None:
        raw = sqlite3.connect(str(where.path), timeout=busy_timeout, isolation_level=None)
        return SqliteConnection(raw)
    return PostgresConnection(_engine_for(where, busy_timeout).connect())


# ----- PostgreSQL engines

_engines: dict[tuple[str, float], Engine] = {}
_engines_lock = threading.Lock()
_fork_hook: list[bool] = []  # registered with the first engine, not at import


def _engine_for(location: Location, busy_timeout: float) -> Engine:
    """The process's engine for ``location`` (made on first use)."""
    assert location.url is not None
    key = (location.url.render_as_string(hide_password=False), busy_timeout)
    with _engines_lock:
        found = _engines.get(key)
        if found is None:
            if not _fork_hook:
                os.register_at_fork(after_in_child=_after_fork)
                _fork_hook.append(True)
            found = _make_engine(location.url, busy_timeout)
            _engines[key] = found
        return found


def forget(location: Location) -> None:
    """Close and drop the engines of ``location`` (a test dropping its database calls this)."""
    if location.url is None:
        return
    url = location.url.render_as_string(hide_password=False)
    with _engines_lock:
        for key in [k for k in _engines if k[0] == url]:
            _engines.pop(key).dispose()


def _after_fork() -> None:
    # A child must not use its parent's pooled sockets: forget them without closing them.
    for engine in _engines.values():
        engine.dispose(close=False)
    _engines.clear()


def _make_engine(url: URL, busy_timeout: float) -> Engine:
    import sqlalchemy as sa

    millis = int(busy_timeout * 1000)
    # isolation_level=AUTOCOMMIT: the store issues BEGIN / COMMIT itself, as it does on SQLite
    return sa.create_engine(
        url,
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

    ``execute`` and ``executemany`` have sqlite3's shape (a cursor with ``fetchone``,
    ``fetchall``, ``rowcount``), so the store's modules read the same on both databases; the
    dialect-specific fragments are its other methods.
    """

    sqlite = True

    def execute(self, sql: str, args: Sequence[Any] = ()) -> Any:
        raise NotImplementedError

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        raise NotImplementedError

    def begin(self, *, exclusive: bool) -> None:
        """Start a transaction; ``exclusive`` takes the store's write lock at once."""
        raise NotImplementedError

    def commit(self) -> None:
        self.execute("COMMIT")

    def rollback(self) -> None:
        self.execute("ROLLBACK")

    def close(self) -> None:
        raise NotImplementedError

    def scalar(self, sql: str, args: Sequence[Any] = ()) -> Any:
        """The first column of the first row (``None`` when there is no row)."""
        row = self.execute(sql, args).fetchone()
        return row[0] if row is not None else None

    @contextmanager
    def alchemy(self) -> Iterator[sa.Connection]:
        """This connection as a SQLAlchemy one, in its current transaction (for Alembic)."""
        raise NotImplementedError
        yield

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

    def bytewise(self, column: str) -> str:
        """``column`` compared byte by byte, so a range ``>= prefix AND < next`` holds exactly the
        values that start with ``prefix`` (PostgreSQL's language collations ignore punctuation
        and case at first; the indexes of such ranges are ``COLLATE "C"`` too)."""
        return column if self.sqlite else f'{column} COLLATE "C"'

    @property
    def is_null_safe_equal(self) -> str:
        """``IS`` for a comparison where NULL equals NULL."""
        return "IS" if self.sqlite else "IS NOT DISTINCT FROM"


class SqliteConnection(Connection):
    """sqlite3 itself, in autocommit mode: the store issues BEGIN IMMEDIATE / COMMIT."""

    sqlite = True

    def __init__(self, raw: sqlite3.Connection) -> None:
        self.raw = raw

    def execute(self, sql: str, args: Sequence[Any] = ()) -> Any:
        return self.raw.execute(sql, args)

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        self.raw.executemany(sql, rows)

    def begin(self, *, exclusive: bool) -> None:
        # always IMMEDIATE: a deferred transaction that later writes can fail at once with
        # SQLITE_BUSY instead of waiting busy_timeout
        self.raw.execute("BEGIN IMMEDIATE")

    def close(self) -> None:
        self.raw.close()

    @contextmanager
    def alchemy(self) -> Iterator[sa.Connection]:
        import sqlalchemy as sa
        from sqlalchemy.pool import StaticPool

        engine = sa.create_engine(
            "sqlite://", creator=lambda: _Lent(self.raw), poolclass=StaticPool
        )
        try:
            with engine.connect() as conn:
                yield conn
        finally:
            engine.dispose(close=False)


class _Lent:
    """The store's sqlite3 connection lent to SQLAlchemy (for Alembic) inside the store's
    transaction: SQLAlchemy's commit, rollback, close and isolation level changes (setting it
    would commit) leave that transaction alone; the store ends it."""

    def __init__(self, raw: sqlite3.Connection) -> None:
        self._raw = raw

    def __getattr__(self, name: str) -> Any:
        return getattr(self._raw, name)

    @property
    def isolation_level(self) -> str | None:
        return self._raw.isolation_level

    @isolation_level.setter
    def isolation_level(self, value: str | None) -> None:
        pass

    def commit(self) -> None:
        pass

    def rollback(self) -> None:
        pass

    def close(self) -> None:
        pass


class PostgresConnection(Connection):
    """A pooled SQLAlchemy connection over psycopg, in autocommit mode (BEGIN is ours)."""

    sqlite = False

    def __init__(self, conn: sa.Connection) -> None:
        self.sa = conn

    def execute(self, sql: str, args: Sequence[Any] = ()) -> Any:
        if self.sa.invalidated:
            # The server dropped this connection (a restart, a killed backend) and the statement
            # that noticed failed: let SQLAlchemy reconnect now instead of refusing for good.
            self.sa.rollback()
        return self.sa.exec_driver_sql(_pyformat(sql), tuple(args))

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        batch = [tuple(row) for row in rows]
        if batch:  # SQLAlchemy would run the statement once, without parameters
            self.sa.exec_driver_sql(_pyformat(sql), batch)

    def begin(self, *, exclusive: bool) -> None:
        self.execute("BEGIN")
        if exclusive:
            self.execute(f"SELECT pg_advisory_xact_lock({_WRITE_LOCK_KEY})")

    def close(self) -> None:
        self.sa.close()

    @contextmanager
    def alchemy(self) -> Iterator[sa.Connection]:
        yield self.sa


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
