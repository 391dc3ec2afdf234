"""Flow-level ``concurrency`` in the store: how many executions of a flow hold a slot.

An execution holds one of its flow's ``concurrency.limit`` places from the moment a slot takes it
(CREATED) until it ends; while QUEUED it waits for one. Executions run by ``executor run`` on the
same home count too: they share the engine the limit protects.
"""

from __future__ import annotations

from executor.host import Owner
from executor.model import Execution, State
from executor.store.db import Store
from executor.store.dialect import Connection
from executor.store.records import UNFINISHED, UNFINISHED_SQL, execution_record

_ACTIVE = "(" + ", ".join(f"'{state}'" for state in (*UNFINISHED, State.QUEUED.value)) + ")"


def holding(conn: Connection, namespace: str, flow_id: str) -> int:
    """Executions of the flow that took their place and have not ended (inside a transaction)."""
    row = conn.execute(
        f"SELECT count(*) FROM executions WHERE namespace = ? AND flow_id = ?"
        f" AND state IN {UNFINISHED_SQL}",
        (namespace, flow_id),
    ).fetchone()
    return int(row[0])


def active(store: Store, namespace: str, flow_id: str) -> int:
    """Executions of the flow that have not ended, queued ones included."""
    rows = store.read(
        f"SELECT count(*) FROM executions WHERE namespace = ? AND flow_id = ?"
        f" AND state IN {_ACTIVE}",
        (namespace, flow_id),
    )
    return int(rows[0][0])


def record_ended(store: Store, execution: Execution, owner: Owner) -> None:
    """Record an execution that ended before it was queued (a concurrency CANCEL or FAIL)."""
    with store.transaction() as conn:
        Store.upsert_execution(conn, execution_record(execution, owner))
