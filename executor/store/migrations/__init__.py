"""The store's schema, one Alembic history for SQLite and PostgreSQL, applied when a store opens.

Opening a store costs one query when the schema is current (``alembic_version`` at :data:`HEAD`).
Otherwise, under the store's write lock (so two processes never migrate at once):

- an empty database gets every revision;
- a SQLite home made before Alembic (``PRAGMA user_version`` 1 to 5, no ``alembic_version``) is
  brought to schema 5 as those executors did (``legacy.py``), stamped at the baseline revision
  ``0005`` (the same schema) and upgraded from there;
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
from executor.store.migrations.legacy import LEGACY_VERSION, statements

if TYPE_CHECKING:
    from alembic.config import Config

HEAD = "0005"  # the newest revision in versions/ (a test checks that they agree)
BASELINE = "0005"
# What SQLite's user_version says after migrating. Executors from before Alembic open a home of
# user_version 5 as their own; raise this past 5 in a revision they could not use, so they refuse.
SQLITE_USER_VERSION = 5


def ensure_schema(conn: Connection, where: Location) -> None:
    """Bring the database at ``where`` to :data:`HEAD` (nothing to do is one query).

    Raises:
        StoreError: a newer executor's schema, or a migration failed (nothing of it is kept).
    """
    if conn.sqlite:
        version = int(conn.execute("PRAGMA user_version").scalar() or 0)
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
    if not conn.execute(exists, ("alembic_version",)).scalar():
        return None
    rows = conn.execute("SELECT version_num FROM alembic_version").fetchall()
    return str(rows[0][0]) if rows else None


def _migrate(conn: Connection, where: Location) -> None:
    revision = current(conn)  # again, now that the lock is held
    if revision == HEAD:
        return
    if revision is not None and revision not in _known_revisions():
        raise _newer(where, f"revision {revision}, this one knows up to {HEAD}")
    if revision is None and conn.sqlite and _made_before_alembic(conn):
        for statement in statements():
            conn.execute(statement)
        for table in ("executions", "task_runs"):  # schema 3 added ``extra``
            columns = {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}
            if "extra" not in columns:
                conn.execute(f"ALTER TABLE {table} ADD COLUMN extra TEXT NOT NULL DEFAULT '{{}}'")
        _alembic(conn, "stamp", BASELINE)
    _alembic(conn, "upgrade", "head")
    if conn.sqlite:
        conn.execute(f"PRAGMA user_version = {SQLITE_USER_VERSION}")


def _made_before_alembic(conn: Connection) -> bool:
    version = int(conn.execute("PRAGMA user_version").scalar() or 0)
    if version > LEGACY_VERSION:
        return False
    found = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'executions'"
    ).fetchone()
    return version > 0 or found is not None


def _alembic(conn: Connection, command_name: str, target: str) -> None:
    from alembic import command  # only when migrating: alembic is slow to import

    config = _config()
    config.attributes["connection"] = conn.sa
    getattr(command, command_name)(config, target)


def _config() -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(Path(__file__).parent))
    return config


def _known_revisions() -> set[str]:
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(_config())
    return {s.revision for s in script.walk_revisions()}


def script_head() -> str | None:
    """The head revision of ``versions/`` as Alembic reads it (for the test against HEAD)."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(_config()).get_current_head()


def _newer(where: Location, detail: str) -> StoreError:
    return StoreError(
        f"the record store {where} was written by a newer executor ({detail}): "
        "upgrade executor to use it"
    )
