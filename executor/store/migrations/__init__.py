"""The store's schema, one Alembic history for SQLite and PostgreSQL, applied when a store opens.

Opening a store costs one query when the schema is current (``alembic_version`` at :data:`HEAD`).
Otherwise, under the store's write lock (so two processes never migrate at once):

- an empty PostgreSQL database gets every revision;
- a SQLite file without ``alembic_version`` (new, or a home made before Alembic: ``PRAGMA
  user_version`` 1 to 5) is brought to schema 5 as those executors did (``legacy.py``), stamped
  at the baseline revision ``0005`` (the same schema), given the later revisions listed in
  :data:`SQLITE_WITHOUT_ALEMBIC` and upgraded from there, so Alembic is not even imported
  while those are the newest revisions;
- a database at an older revision is upgraded;
- a revision this executor does not know (a newer executor migrated it) is refused: upgrade.

No ``alembic.ini`` is needed: the configuration is built here, and ``env.py`` takes the store's
connection from it. ``executor db current`` / ``executor db upgrade`` show the revision and
migrate ahead of time.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from executor.errors import StoreError
from executor.store.dialect import Connection, Location
from executor.store.migrations.indexes import (
    HISTORY_SQLITE_UP,
    LOG_CHUNKS_SQLITE_UP,
    TRIGGERS_SQLITE_UP,
)
from executor.store.migrations.legacy import statements

if TYPE_CHECKING:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

HEAD = "0008"  # the newest revision in versions/ (a test checks that they agree)
BASELINE = "0005"
# What SQLite's user_version says after migrating. Executors from before Alembic open a home of
# user_version 5 as their own; raise this past 5 in a revision they could not use, so they refuse.
SQLITE_USER_VERSION = 5
# The revisions after the baseline that a new (or pre-Alembic) SQLite home gets without loading
# Alembic, in order: (revision, the revision it follows, its SQLite statements). They apply
# while each follows the one before (a revision chained in between stops them, and Alembic
# applies the rest); a test checks the result is the schema Alembic makes.
SQLITE_WITHOUT_ALEMBIC: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("0006", BASELINE, HISTORY_SQLITE_UP),
    ("0007", "0006", TRIGGERS_SQLITE_UP),
    ("0008", "0007", LOG_CHUNKS_SQLITE_UP),
)
ANALYSIS_ROWS = 1000  # index entries SQLite's ANALYZE samples per index (PRAGMA analysis_limit)


def ensure_schema(conn: Connection, where: Location) -> None:
    """Bring the database at ``where`` to :data:`HEAD` (nothing to do is one or two queries).

    Raises:
        StoreError: a newer executor's schema, or a migration failed (nothing of it is kept).
    """
    if conn.sqlite:
        version = int(conn.scalar("PRAGMA user_version") or 0)
        if version > SQLITE_USER_VERSION:
            raise _newer(where, f"schema {version}, this one knows {SQLITE_USER_VERSION}")
    if current(conn) == HEAD:
        return
    conn.begin(exclusive=True)
    try:
        _migrate(conn, where)
    except BaseException:
        conn.rollback()
        raise
    conn.commit()


def current(conn: Connection) -> str | None:
    """The database's revision, ``None`` when Alembic never ran on it."""
    if conn.sqlite:
        exists = "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?"
    else:  # a failed SELECT would abort the transaction this may run in: ask first
        exists = (
            "SELECT count(*) FROM pg_tables WHERE schemaname = current_schema() AND tablename = ?"
        )
    if not conn.scalar(exists, ("alembic_version",)):
        return None
    found = conn.scalar("SELECT version_num FROM alembic_version")
    return str(found) if found is not None else None


def _migrate(conn: Connection, where: Location) -> None:
    revision = current(conn)  # again, now that the lock is held
    if revision == HEAD:
        return
    if revision is not None and revision not in _known_revisions():
        raise _newer(where, f"revision {revision}, this one knows up to {HEAD}")
    if revision is None and conn.sqlite:
        _sqlite_baseline(conn)
        revision = BASELINE
        for later, follows, statements_of_later in SQLITE_WITHOUT_ALEMBIC:
            if follows != revision:  # the chain goes another way: Alembic takes it from here
                break
            for statement in statements_of_later:
                conn.execute(statement)
            conn.execute("UPDATE alembic_version SET version_num = ?", (later,))
            revision = later
    if revision != HEAD:
        run_alembic(conn, "upgrade", "head")
    if conn.sqlite:
        conn.execute(f"PRAGMA user_version = {SQLITE_USER_VERSION}")
        analyze(conn)


def analyze(conn: Connection) -> None:
    """Refresh SQLite's statistics of the tables and indexes (what its planner chooses by).

    Without them SQLite guesses, and a guess can sort a whole state's history to show ten
    rows. ``analysis_limit`` samples each index instead of reading all of it, so this takes
    milliseconds at any size; the server runs it again now and then (``server.maintenance``).
    PostgreSQL keeps its own statistics (autovacuum): nothing to do there.
    """
    if conn.sqlite:
        conn.execute(f"PRAGMA analysis_limit = {ANALYSIS_ROWS}")
        conn.execute("ANALYZE")
        conn.execute("PRAGMA optimize")


def _sqlite_baseline(conn: Connection) -> None:
    """Bring a new or pre-Alembic SQLite home to the baseline without loading Alembic.

    The statements are the ones executors before Alembic ran (all ``IF NOT EXISTS``, plus the
    ``extra`` columns of schema 3): on a new file they make the baseline schema (a test checks
    that it is the one revision ``0005`` makes), on an old home they add what it lacks. Then the
    baseline is stamped, as Alembic's ``stamp`` would. Alembic itself (about 25 MB and 0.4 s of
    imports) is loaded only for revisions after the baseline.
    """
    for statement in statements():
        conn.execute(statement)
    for table in ("executions", "task_runs"):  # schema 3 added ``extra``
        columns = {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}
        if "extra" not in columns:
            conn.execute(f"ALTER TABLE {table} ADD COLUMN extra TEXT NOT NULL DEFAULT '{{}}'")
    conn.execute(
        "CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL,"
        " CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num))"
    )
    conn.execute("INSERT INTO alembic_version (version_num) VALUES (?)", (BASELINE,))


def run_alembic(conn: Connection, command_name: str, target: str) -> None:
    """Run an Alembic command (``upgrade``, ``stamp``...) on ``conn``, inside its transaction."""
    from alembic import command  # only when migrating: alembic is slow to import

    config = _config()
    with conn.alchemy() as alchemy:
        config.attributes["connection"] = alchemy
        getattr(command, command_name)(config, target)


def _config() -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(Path(__file__).parent))
    return config


def _scripts() -> ScriptDirectory:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(_config())


def _known_revisions() -> set[str]:
    return {s.revision for s in _scripts().walk_revisions()}


def script_head() -> str | None:
    """The head revision of ``versions/`` as Alembic reads it (for the test against HEAD)."""
    return _scripts().get_current_head()


def _newer(where: Location, detail: str) -> StoreError:
    return StoreError(
        f"the record store {where} was written by a newer executor ({detail}): "
        "upgrade executor to use it"
    )
