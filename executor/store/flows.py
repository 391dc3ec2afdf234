"""Flows kept by the server, with every revision: what a Subflow and a submitted run resolve to.

Each save of a changed source adds a revision; a delete adds a revision marked ``deleted`` (so
the history stays readable, as Kestra keeps it). The latest revision of a flow is what runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from executor.store.db import Store
from executor.store.records import ts

_COLUMNS = "namespace, id, revision, source, deleted, updated"


@dataclass(frozen=True)
class StoredFlow:
    """One revision of a flow as the server keeps it."""

    namespace: str
    id: str
    revision: int
    source: str
    deleted: bool
    updated: str


def _flow(row: tuple[str, str, int, str, int, str]) -> StoredFlow:
    return StoredFlow(row[0], row[1], int(row[2]), row[3], bool(row[4]), row[5])


def get_flow(
    store: Store,
    namespace: str,
    flow_id: str,
    revision: int | None = None,
    *,
    allow_deleted: bool = False,
) -> StoredFlow | None:
    """The latest revision of a flow (or the one asked for); ``None`` when missing or deleted."""
    sql = f"SELECT {_COLUMNS} FROM flows WHERE namespace = ? AND id = ?"
    args: list[object] = [namespace, flow_id]
    if revision is not None:
        sql += " AND revision = ?"
        args.append(revision)
    rows = store.read(sql + " ORDER BY revision DESC LIMIT 1", args)
    if not rows:
        return None
    found = _flow(rows[0])
    if found.deleted and not allow_deleted:
        return None
    return found


def save_flow(store: Store, namespace: str, flow_id: str, source: str) -> StoredFlow:
    """Store ``source`` as the flow's next revision; an unchanged source keeps its revision."""
    with store.transaction() as conn:
        row = conn.execute(
            f"SELECT {_COLUMNS} FROM flows WHERE namespace = ? AND id = ?"
            " ORDER BY revision DESC LIMIT 1",
            (namespace, flow_id),
        ).fetchone()
        latest = _flow(row) if row else None
        if latest is not None and not latest.deleted and latest.source == source:
            return latest
        revision = latest.revision + 1 if latest else 1
        stamp = ts(datetime.now(UTC))
        conn.execute(
            f"INSERT INTO flows ({_COLUMNS}) VALUES (?, ?, ?, ?, 0, ?)",
            (namespace, flow_id, revision, source, stamp),
        )
    return StoredFlow(namespace, flow_id, revision, source, False, stamp)


def delete_flow(store: Store, namespace: str, flow_id: str) -> bool:
    """Mark a flow deleted (a new revision); ``False`` when there was no live flow."""
    with store.transaction() as conn:
        row = conn.execute(
            f"SELECT {_COLUMNS} FROM flows WHERE namespace = ? AND id = ?"
            " ORDER BY revision DESC LIMIT 1",
            (namespace, flow_id),
        ).fetchone()
        if row is None or row[4]:
            return False
        conn.execute(
            f"INSERT INTO flows ({_COLUMNS}) VALUES (?, ?, ?, ?, 1, ?)",
            (namespace, flow_id, int(row[2]) + 1, row[3], ts(datetime.now(UTC))),
        )
    return True


def list_flows(store: Store, namespace: str | None = None) -> list[StoredFlow]:
    """The latest live revision of every flow (of one namespace), by namespace and id."""
    sql = (
        f"SELECT {_COLUMNS} FROM flows f WHERE revision ="
        " (SELECT max(revision) FROM flows g WHERE g.namespace = f.namespace AND g.id = f.id)"
        " AND deleted = 0"
    )
    args: list[object] = []
    if namespace is not None:
        sql += " AND namespace = ?"
        args.append(namespace)
    return [_flow(row) for row in store.read(sql + " ORDER BY namespace, id", args)]
