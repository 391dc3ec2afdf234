"""What Flow triggers keep in the store: ended executions to look at, fires, preconditions met.

The server notes an execution's end (``note_ended``) where it learns of it (a slot's run, a
worker's records, a run declared lost); the Flow trigger pass (``server/flow_triggers.py``)
takes those notes oldest first and marks each once every trigger has looked at it, so an end
noted before a crash is still looked at after the restart, and an end told twice is looked at
once (notes are forgotten a day later). A fire is claimed (``claim_fire``)
before its execution is submitted: an upstream end starts a downstream flow at most once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from executor.store.db import Store
from executor.store.dialect import Connection

_TRIGGER = "namespace = ? AND flow_id = ? AND trigger_id = ?"


def note_ended(conn: Connection, execution_id: str, ended: str) -> None:
    """Note that an execution ended (inside the caller's transaction; noting twice is fine)."""
    conn.execute(
        "INSERT INTO trigger_events (execution_id, ended) VALUES (?, ?)"
        " ON CONFLICT (execution_id) DO NOTHING",
        (execution_id, ended),
    )


def note_ended_now(store: Store, execution_id: str, ended: str) -> None:
    with store.transaction() as conn:
        note_ended(conn, execution_id, ended)


def pending(store: Store, limit: int = 500) -> list[tuple[str, str]]:
    """Ended executions no Flow trigger has looked at yet, oldest end first: each id with when
    its end was noted."""
    rows = store.read(
        "SELECT execution_id, ended FROM trigger_events WHERE looked = 0"
        " ORDER BY ended, execution_id LIMIT ?",
        (limit,),
    )
    return [(str(row[0]), str(row[1])) for row in rows]


def done(store: Store, execution_id: str) -> None:
    """Flow triggers looked at this end: told again (a worker's batch sent twice), it is not
    looked at again."""
    with store.transaction() as conn:
        conn.execute("UPDATE trigger_events SET looked = 1 WHERE execution_id = ?", (execution_id,))


def forget_looked(store: Store, before: str) -> None:
    """Forget the ends looked at that are older than ``before`` (nobody tells those twice)."""
    with store.transaction() as conn:
        conn.execute("DELETE FROM trigger_events WHERE looked = 1 AND ended < ?", (before,))


def claim_fire(store: Store, upstream_id: str, key: tuple[str, str, str], fired: str) -> bool:
    """Claim the start of ``key``'s flow by ``upstream_id``: ``False`` when it was claimed."""
    with store.transaction() as conn:
        moved = conn.execute(
            "INSERT INTO trigger_fires (upstream_id, namespace, flow_id, trigger_id, fired)"
            " VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            (upstream_id, *key, fired),
        )
        return bool(moved.rowcount == 1)


def fired_execution(store: Store, upstream_id: str, key: tuple[str, str, str], id_: str) -> None:
    with store.transaction() as conn:
        conn.execute(
            f"UPDATE trigger_fires SET execution_id = ? WHERE upstream_id = ? AND {_TRIGGER}",
            (id_, upstream_id, *key),
        )


def fires_of(store: Store, upstream_id: str) -> list[tuple[str, str, str, str | None]]:
    """What ``upstream_id`` started: (namespace, flow id, trigger id, execution id)."""
    rows = store.read(
        "SELECT namespace, flow_id, trigger_id, execution_id FROM trigger_fires"
        " WHERE upstream_id = ? ORDER BY namespace, flow_id, trigger_id",
        (upstream_id,),
    )
    return [(str(r[0]), str(r[1]), str(r[2]), r[3]) for r in rows]


@dataclass(frozen=True)
class Mark:
    """A precondition met: by which execution, when."""

    condition: str
    upstream_id: str
    date: str


def marks(store: Store, key: tuple[str, str, str]) -> list[Mark]:
    rows = store.read(
        f"SELECT condition, upstream_id, date FROM trigger_marks WHERE {_TRIGGER}"
        " ORDER BY condition",
        key,
    )
    return [Mark(str(r[0]), str(r[1]), str(r[2])) for r in rows]


def mark(store: Store, key: tuple[str, str, str], met: Sequence[Mark]) -> None:
    """Record preconditions met (a later execution replaces an earlier one's mark)."""
    with store.transaction() as conn:
        for one in met:
            conn.execute(
                "INSERT INTO trigger_marks (namespace, flow_id, trigger_id, condition,"
                " upstream_id, date) VALUES (?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (namespace, flow_id, trigger_id, condition)"
                " DO UPDATE SET upstream_id = excluded.upstream_id, date = excluded.date",
                (*key, one.condition, one.upstream_id, one.date),
            )


def clear_marks(store: Store, key: tuple[str, str, str]) -> None:
    with store.transaction() as conn:
        conn.execute(f"DELETE FROM trigger_marks WHERE {_TRIGGER}", key)
