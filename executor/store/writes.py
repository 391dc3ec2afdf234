"""Writing records: snapshots upserted and log lines appended in one transaction, in order;
and the resumes asked of paused executions."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime

from executor.errors import NotFoundError, UsageError
from executor.model import LogBatch, LogLine, State
from executor.store.connection import Connected
from executor.store.dialect import Connection
from executor.store.log_chunks import INSERT_CHUNK, Chunker
from executor.store.records import (
    ExecutionRecord,
    TaskRunRecord,
    Write,
    dumps,
    encodable,
    ts,
)


class RecordWrites(Connected):
    """The writes of a :class:`~executor.store.db.Store`."""

    def write(self, writes: Sequence[Write]) -> None:
        """Write a batch of snapshots and log lines in one transaction, in order.

        Args:
            writes: execution and task-run snapshots (upserted) and log lines (appended).

        Raises:
            StoreError: the batch could not be written (nothing of it was).
        """
        if not writes:
            return
        try:
            self._write(writes)
        except UnicodeEncodeError:
            # A lone surrogate (a "\udXXX" escape in a flow, a surrogate-escaped argument) is
            # not UTF-8, so SQLite cannot take it: store U+FFFD in its place, lose nothing else.
            self._write([encodable(item) for item in writes])

    def _write(self, writes: Sequence[Write]) -> None:
        # upserts and appends only: on PostgreSQL other writers need not wait for it
        with self._translate(), self._transaction(exclusive=False) as conn:
            chunks = Chunker()
            for item in writes:
                if isinstance(item, LogBatch):
                    chunks.add_batch(item)
                    continue
                if isinstance(item, LogLine):
                    chunks.add(item)
                    continue
                if chunks.rows:
                    conn.executemany(INSERT_CHUNK, chunks.finish())
                if isinstance(item, ExecutionRecord):
                    self._upsert_execution(conn, item)
                else:
                    self._upsert_task_run(conn, item)
            if chunks.rows or chunks.open:
                conn.executemany(INSERT_CHUNK, chunks.finish())

    @staticmethod
    def upsert_execution(conn: Connection, r: ExecutionRecord) -> None:
        """Write one execution row inside a caller's transaction (the queue's submit)."""
        RecordWrites._upsert_execution(conn, r)

    @staticmethod
    def _upsert_execution(conn: Connection, r: ExecutionRecord) -> None:
        conn.execute(
            "INSERT INTO executions (id, namespace, flow_id, state, start_date, end_date, inputs,"
            " histories, images, labels, reason, pid, pid_start, host, extra)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (id) DO UPDATE SET state = excluded.state,"
            " end_date = excluded.end_date, inputs = excluded.inputs,"
            " histories = excluded.histories, images = excluded.images,"
            " labels = excluded.labels, reason = excluded.reason, extra = excluded.extra",
            (
                r.id,
                r.namespace,
                r.flow_id,
                r.state,
                r.start_date,
                r.end_date,
                r.inputs,
                r.histories,
                r.images,
                r.labels,
                r.reason,
                r.owner.pid,
                r.owner.start,
                r.owner.host,
                r.extra,
            ),
        )

    @staticmethod
    def upsert_task_run(conn: Connection, r: TaskRunRecord) -> None:
        """Write one task run and its attempts inside a caller's transaction (a restart)."""
        RecordWrites._upsert_task_run(conn, r)

    @staticmethod
    def _upsert_task_run(conn: Connection, r: TaskRunRecord) -> None:
        conn.execute(
            "INSERT INTO task_runs (id, execution_id, position, task_id, task_type, parent_id,"
            " state, start_date, end_date, duration, histories, outputs, metrics, output_files,"
            " image_id, reason, stderr_tail, extra) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?,"
            " ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET state = excluded.state,"
            " end_date = excluded.end_date, duration = excluded.duration,"
            " histories = excluded.histories, outputs = excluded.outputs,"
            " metrics = excluded.metrics, output_files = excluded.output_files,"
            " image_id = excluded.image_id, reason = excluded.reason,"
            " stderr_tail = excluded.stderr_tail, extra = excluded.extra",
            (
                r.id,
                r.execution_id,
                r.position,
                r.task_id,
                r.task_type,
                r.parent_id,
                r.state,
                r.start_date,
                r.end_date,
                r.duration,
                r.histories,
                r.outputs,
                r.metrics,
                r.output_files,
                r.image_id,
                r.reason,
                r.stderr_tail,
                r.extra,
            ),
        )
        conn.executemany(
            "INSERT INTO attempts (task_run_id, number, state, start_date, end_date, duration,"
            " exit_code, oom_killed, reason, histories) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (task_run_id, number) DO UPDATE SET state = excluded.state,"
            " end_date = excluded.end_date, duration = excluded.duration,"
            " exit_code = excluded.exit_code, oom_killed = excluded.oom_killed,"
            " reason = excluded.reason, histories = excluded.histories",
            [
                (
                    r.id,
                    a.number,
                    a.state,
                    a.start_date,
                    a.end_date,
                    a.duration,
                    a.exit_code,
                    int(a.oom_killed),
                    a.reason,
                    a.histories,
                )
                for a in r.attempts
            ],
        )

    # ----- resuming a paused execution

    def request_resume(self, execution_id: str, inputs: dict[str, str]) -> None:
        """Ask the process running a PAUSED execution to go on, with ``onResume`` inputs.

        Raises:
            NotFoundError: no such execution.
            UsageError: the execution is not PAUSED.
        """
        with self._translate(), self._transaction() as conn:
            # read and written under the write lock: a run resumed meanwhile is not asked again
            row = conn.execute(
                "SELECT state FROM executions WHERE id = ?", (execution_id,)
            ).fetchone()
            if row is None:
                raise NotFoundError(f"no execution with id {execution_id!r} in {self.where}")
            if row[0] != State.PAUSED.value:
                raise UsageError(f"execution {execution_id} is {row[0]}, not PAUSED")
            conn.execute(
                "INSERT INTO resumes (execution_id, inputs, requested) VALUES (?, ?, ?)"
                " ON CONFLICT (execution_id) DO UPDATE SET inputs = excluded.inputs,"
                " requested = excluded.requested",
                (execution_id, dumps(inputs), ts(datetime.now(UTC))),
            )

    def take_resume(self, execution_id: str) -> dict[str, str] | None:
        """The pending resume request of an execution (removed as it is read), or ``None``."""
        with self._translate(), self._transaction() as conn:
            row = conn.execute(
                "SELECT inputs FROM resumes WHERE execution_id = ?", (execution_id,)
            ).fetchone()
            if row is None:
                return None
            conn.execute("DELETE FROM resumes WHERE execution_id = ?", (execution_id,))
        found: dict[str, str] = json.loads(row[0])
        return found
