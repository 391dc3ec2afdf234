"""The durable queue of server mode: submitted executions wait here, on disk, for a free slot.

A submit writes the execution row (state QUEUED) and its queue row in one transaction, so a
client that got an id back can always see it, and a server that dies keeps the work. A slot
takes the oldest row and, in the same transaction, marks the execution CREATED and owned by the
taking process: from then on, crash recovery (``Store.recover_dead``) judges it like any run.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from executor.host import Owner
from executor.model import Execution, State
from executor.store.concurrency import holding
from executor.store.db import Store
from executor.store.dialect import Connection
from executor.store.records import dumps, execution_record, task_run_record, ts

LimitOf = Callable[[str, str, int | None], int | None]
_COLUMNS = "execution_id, namespace, flow_id, revision, inputs, labels, trigger, submitted"


@dataclass(frozen=True)
class QueuedWork:
    """What a slot needs to start one execution.

    Attributes:
        inputs: the inputs as given (text; a FILE input is the host path of its upload).
        trigger: Kestra's ``trigger`` of the execution (a schedule, a webhook), or ``None``.
    """

    execution_id: str
    namespace: str
    flow_id: str
    revision: int | None
    inputs: dict[str, str]
    labels: dict[str, str]
    trigger: dict[str, Any] | None
    submitted: str


def enqueue(store: Store, execution: Execution, work: QueuedWork, owner: Owner) -> None:
    """Record ``execution`` QUEUED and its work, together (nothing of it when this fails);
    the task runs it holds already (a replay's) with it."""
    record = execution_record(execution, owner)
    with store.transaction() as conn:
        Store.upsert_execution(conn, record)
        for position, run in enumerate(execution.task_runs):
            Store.upsert_task_run(conn, task_run_record(execution.id, position, run))
        insert_work(conn, work)


def insert_work(conn: Connection, work: QueuedWork) -> None:
    """Put ``work`` in the queue inside a caller's transaction."""
    conn.execute(
        f"INSERT INTO queue ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (
            work.execution_id,
            work.namespace,
            work.flow_id,
            work.revision,
            dumps(work.inputs),
            dumps(work.labels),
            dumps(work.trigger) if work.trigger is not None else None,
            work.submitted,
        ),
    )


def take_next(store: Store, owner: Owner, limit_of: LimitOf | None = None) -> QueuedWork | None:
    """The oldest waiting work, removed from the queue; its execution now CREATED by ``owner``.

    Args:
        limit_of: the ``concurrency.limit`` of a flow revision (``None``: unlimited); work of a
            flow with that many executions holding a place waits, and younger work goes first.
    """
    with store.transaction() as conn:
        row = _oldest_free(conn, limit_of)
        if row is None:
            return None
        # The delete is the claim: under the write lock nobody else can have taken it, and
        # should a caller ever run without that lock, a row another process took counts 0.
        taken = conn.execute("DELETE FROM queue WHERE execution_id = ?", (row[0],))
        if taken.rowcount != 1:
            return None
        histories = conn.execute(
            "SELECT histories FROM executions WHERE id = ?", (row[0],)
        ).fetchone()
        history = [*json.loads(histories[0] if histories else "[]")]
        history.append([State.CREATED.value, ts(datetime.now(UTC))])
        conn.execute(
            "UPDATE executions SET state = ?, histories = ?, pid = ?, pid_start = ?, host = ?"
            " WHERE id = ?",
            (State.CREATED.value, dumps(history), owner.pid, owner.start, owner.host, row[0]),
        )
    return QueuedWork(
        execution_id=row[0],
        namespace=row[1],
        flow_id=row[2],
        revision=row[3],
        inputs=json.loads(row[4]),
        labels=json.loads(row[5]),
        trigger=json.loads(row[6]) if row[6] else None,
        submitted=row[7],
    )


def _oldest_free(conn: Connection, limit_of: LimitOf | None) -> Any:
    rows = conn.execute(f"SELECT {_COLUMNS} FROM queue ORDER BY seq")
    try:
        if limit_of is None:
            return rows.fetchone()
        holding_now: dict[tuple[str, str], int] = {}
        for row in rows:
            limit = limit_of(row[1], row[2], row[3])
            if limit is None:
                return row
            flow = (row[1], row[2])
            if flow not in holding_now:
                holding_now[flow] = holding(conn, *flow)
            if holding_now[flow] < limit:
                return row
        return None
    finally:
        rows.close()  # no statement left open when the transaction commits


def withdraw(store: Store, execution_id: str, state: State, reason: str) -> bool:
    """Take work out of the queue before it started, ending its execution ``state``.

    Returns:
        ``False`` when the execution was not waiting (a slot took it, or it never was queued).
    """
    with store.transaction() as conn:
        gone = conn.execute("DELETE FROM queue WHERE execution_id = ?", (execution_id,))
        if gone.rowcount == 0:
            return False
        row = conn.execute(
            "SELECT histories FROM executions WHERE id = ?", (execution_id,)
        ).fetchone()
        stamp = ts(datetime.now(UTC))
        history = [*json.loads(row[0] if row else "[]"), [state.value, stamp]]
        conn.execute(
            "UPDATE executions SET state = ?, end_date = ?, histories = ?, reason = ? WHERE id = ?",
            (state.value, stamp, dumps(history), reason, execution_id),
        )
        end_restarted(conn, execution_id, state, stamp)
    return True


def end_restarted(conn: Connection, execution_id: str, state: State, stamp: str) -> None:
    """End ``state`` the task runs a restart left RESTARTED (it ended before a runner took it),
    so that no task run of an ended execution stays unfinished."""
    rows = conn.execute(
        "SELECT id, histories FROM task_runs WHERE execution_id = ? AND state = ?",
        (execution_id, State.RESTARTED.value),
    ).fetchall()
    for run_id, histories in rows:
        conn.execute(
            "UPDATE task_runs SET state = ?, end_date = ?, histories = ? WHERE id = ?",
            (state.value, stamp, dumps([*json.loads(histories), [state.value, stamp]]), run_id),
        )


def waiting(store: Store) -> int:
    """How many executions wait for a slot."""
    rows = store.read("SELECT count(*) FROM queue")
    return int(rows[0][0])


def delete_execution(store: Store, execution_id: str) -> bool:
    """Remove an execution's record: its row, task runs, attempts, log lines and queue entry.

    Returns:
        ``False`` when there was no such execution.
    """
    with store.transaction() as conn:
        conn.execute("DELETE FROM queue WHERE execution_id = ?", (execution_id,))
        conn.execute(
            "DELETE FROM attempts WHERE task_run_id IN"
            " (SELECT id FROM task_runs WHERE execution_id = ?)",
            (execution_id,),
        )
        conn.execute("DELETE FROM task_runs WHERE execution_id = ?", (execution_id,))
        conn.execute("DELETE FROM log_chunks WHERE execution_id = ?", (execution_id,))
        conn.execute("DELETE FROM resumes WHERE execution_id = ?", (execution_id,))
        gone = conn.execute("DELETE FROM executions WHERE id = ?", (execution_id,))
        return bool(gone.rowcount > 0)
