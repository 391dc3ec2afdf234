"""Driver errors (sqlite3, psycopg, SQLAlchemy) as one StoreError message that says what to do.

The one place where the databases' own exceptions are read: :func:`describe` is called by the
store's ``_translate`` boundary. Messages never hold the password of a database URL (they show
:class:`~executor.store.dialect.Location`, which hides it, and the driver's own first line, which
never carries it).
"""

from __future__ import annotations

import sqlite3
import sys

from executor.store.dialect import Location

URL_VARIABLE = "EXECUTOR_DATABASE_URL"

# What PostgreSQL and libpq say when the server is away, restarting, or dropped the connection
_UNREACHABLE = (
    "connection refused",
    "could not translate host name",
    "timeout expired",
    "no route to host",
    "network is unreachable",
    "connection timed out",
    "could not connect",
    "name or service not known",
    "server closed the connection",
    "terminating connection",
    "the database system is shutting down",
    "the database system is starting up",
    "the database system is in recovery mode",
    "connection is closed",
    "consuming input failed",
    "connection failed",
)


def describe(exc: BaseException, where: Location, timeout: float) -> str:
    """One line saying what went wrong with the store at ``where`` and what to do."""
    alchemy = sys.modules.get("sqlalchemy")  # loaded only when PostgreSQL or a migration is
    if alchemy is not None and isinstance(exc, alchemy.exc.TimeoutError):
        return (
            f"the record store {where} gave no free connection within {timeout:g}s "
            "(too many at once); try again"
        )
    cause = getattr(exc, "orig", None) or exc  # SQLAlchemy's DBAPIError wraps the driver's
    if where.path is not None:
        return _sqlite(cause, where.path, timeout)
    return _postgres(cause, where, timeout)


def is_transient(exc: BaseException, where: Location) -> bool:
    """Whether the failure may go away by itself: the server is away or restarting, the
    connection was lost, or another process holds the lock. Trying again is worth it; a corrupt,
    read-only or full store, a wrong password or a missing database are not (nor are bugs)."""
    alchemy = sys.modules.get("sqlalchemy")
    if alchemy is not None and isinstance(exc, alchemy.exc.TimeoutError):
        return True  # no free connection in the pool: the others are waiting for the server
    if alchemy is not None and getattr(exc, "connection_invalidated", False):
        return True  # SQLAlchemy saw the connection die under a statement
    cause = getattr(exc, "orig", None) or exc
    lowered = str(cause).lower()
    if where.path is not None:
        return "locked" in lowered or "busy" in lowered
    return (
        any(part in lowered for part in _UNREACHABLE)
        or "lock timeout" in lowered
        or "deadlock detected" in lowered
    )


def _sqlite(exc: BaseException, path: object, timeout: float) -> str:
    text = str(exc)
    lowered = text.lower()
    parent = getattr(path, "parent", path)
    if "locked" in lowered or "busy" in lowered:
        return (
            f"the record store {path} is locked by another process "
            f"(waited {timeout:g}s); try again when it is done"
        )
    if "unable to open" in lowered:
        return f"cannot open the record store {path}: is {parent} an existing, writable directory?"
    if "readonly" in lowered or "read-only" in lowered:
        return f"the record store {path} is read-only: make it and {parent} writable"
    if "not a database" in lowered or "malformed" in lowered or "corrupt" in lowered:
        return (
            f"the record store {path} is corrupt ({text}); move it aside and a new one is started"
        )
    if "disk" in lowered and "full" in lowered:
        return f"the record store {path} cannot grow: the disk is full"
    if not isinstance(exc, sqlite3.Error):
        text = f"{type(exc).__name__}: {text}"
    return f"the record store {path} failed: {text}"


def _postgres(exc: BaseException, where: Location, timeout: float) -> str:
    text = str(exc).strip()
    first = text.splitlines()[0] if text else type(exc).__name__
    lowered = text.lower()
    user = (where.url.username if where.url is not None else None) or "?"
    database = where.url.database if where.url is not None else None
    address = where.address
    if "password authentication failed" in lowered or "no password supplied" in lowered:
        return (
            f"PostgreSQL at {address} refused the password of user {user!r}: "
            f"check the user and password in {URL_VARIABLE}"
        )
    if f'database "{database}" does not exist' in text:
        return (
            f"the database {database!r} does not exist on PostgreSQL at {address}: "
            f"create it (createdb {database}) or fix {URL_VARIABLE}"
        )
    if "role" in lowered and "does not exist" in lowered:
        return f"PostgreSQL at {address} has no user {user!r}: create it or fix {URL_VARIABLE}"
    if any(part in lowered for part in _UNREACHABLE):
        reason = first.rsplit(" failed: ", 1)[-1].strip()
        return (
            f"cannot reach PostgreSQL at {address} ({reason}): is the server running, "
            f"and does {URL_VARIABLE} name the right host and port?"
        )
    if "lock timeout" in lowered or "deadlock detected" in lowered:
        return (
            f"the record store {where} is locked by another process "
            f"(waited {timeout:g}s); try again when it is done"
        )
    if "permission denied" in lowered:
        return (
            f"the record store {where} refused user {user!r}: {first}; "
            "grant it the rights to create and write tables in that database"
        )
    return f"the record store {where} failed: {first}"
