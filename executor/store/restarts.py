"""Recording a restart: the execution's new state, its task runs kept and dropped, in one go.

The state is checked in the same transaction, so two restarts asked at once start one run; the
server's restart also queues the work there (it waits for a slot, or a worker, like any
submission), ``executor restart`` takes it as its own at once.
"""

from __future__ import annotations

from collections.abc import Sequence

from executor.errors import NotFoundError
from executor.host import Owner
from executor.model import Execution, State
from executor.store.db import Store
from executor.store.queue import QueuedWork, insert_work
from executor.store.records import execution_record, task_run_record

RESTARTABLE = (State.FAILED.value, State.KILLED.value)


def record_restart(
    store: Store,
    execution: Execution,
    dropped: Sequence[str],
    owner: Owner,
    work: QueuedWork | None = None,
) -> State | None:
    """Write ``execution`` as restarted: ``dropped`` task runs (and their attempts) removed, the
    others written as they now are; queued as ``work`` when given.

    Returns:
        ``None`` once recorded; the state the stored execution was found in when it is not
        FAILED or KILLED (someone restarted it meanwhile): nothing was written.

    Raises:
        NotFoundError: no such execution.
    """
    with store.transaction() as conn:
        row = conn.execute("SELECT state FROM executions WHERE id = ?", (execution.id,)).fetchone()
        if row is None:
            raise NotFoundError(f"Execution '{execution.id}' not found")
        if row[0] not in RESTARTABLE:
            return State(row[0])
        for run_id in dropped:
            conn.execute("DELETE FROM attempts WHERE task_run_id = ?", (run_id,))
            conn.execute("DELETE FROM task_runs WHERE id = ?", (run_id,))
        Store.upsert_execution(conn, execution_record(execution, owner))
        # the owner is written on insert only: a restart changes who runs it
        conn.execute(
            "UPDATE executions SET pid = ?, pid_start = ?, host = ? WHERE id = ?",
            (owner.pid, owner.start, owner.host, execution.id),
        )
        for position, run in enumerate(execution.task_runs):
            Store.upsert_task_run(conn, task_run_record(execution.id, position, run))
        if work is not None:
            insert_work(conn, work)
    return None
