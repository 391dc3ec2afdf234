"""Crash recovery: unfinished executions whose executor provably no longer runs end FAILED.

The executor's pid, the kernel start time of that pid and the host are kept on each execution
row; :meth:`Recovery.recover_dead` marks an unfinished execution whose executor is gone FAILED
with the reason ``executor died``, its unfinished task runs and attempts too, and says so in an
``executor`` log line.
"""

from __future__ import annotations

import json
import socket
from datetime import UTC, datetime

from executor.host import Owner
from executor.model import Level, LogLine, State
from executor.store.connection import Connected
from executor.store.dialect import Connection
from executor.store.log_chunks import INSERT_CHUNK, Chunker
from executor.store.records import DIED_REASON, UNFINISHED, UNFINISHED_SQL, dumps, parse_ts, ts


class Recovery(Connected):
    """The crash recovery of a :class:`~executor.store.db.Store`."""

    def recover_dead(self, hostname: str | None = None) -> list[str]:
        """Mark FAILED ("executor died") every unfinished execution whose executor is gone.

        Only executions started on this host are judged; their logs are kept, and an
        ``executor`` log line says what happened. Unfinished task runs and attempts fail too.

        Args:
            hostname: the host to judge for (default: this one).

        Returns:
            The ids of the executions marked.

        Raises:
            StoreError: the store cannot be read or written.
        """
        host = hostname or socket.gethostname()
        with self._translate():
            rows = self._conn.execute(
                "SELECT id, pid, pid_start, host FROM executions WHERE host = ? AND state IN"
                f" {UNFINISHED_SQL}",
                (host,),
            ).fetchall()
        dead = [row[0] for row in rows if Owner(row[1], row[2], row[3]).is_gone(host)]
        marked: list[str] = []
        for execution_id in dead:
            with self._translate(), self._transaction() as conn:
                if self._mark_died(conn, execution_id):
                    marked.append(execution_id)
        return marked

    def unfinished_of(self, owner: Owner) -> list[str]:
        """Ids of the unfinished executions recorded as run by ``owner`` (QUEUED ones aside)."""
        with self._translate():
            rows = self._conn.execute(
                "SELECT id FROM executions WHERE pid = ? AND pid_start = ? AND host = ? AND state"
                f" IN {UNFINISHED_SQL}",
                (owner.pid, owner.start, owner.host),
            ).fetchall()
        return [str(row[0]) for row in rows]

    def end_lost(self, execution_id: str, state: State, reason: str, note: str) -> bool:
        """End an unfinished execution that nothing runs any more ``state`` (FAILED, KILLED),
        with its unfinished task runs and attempts; ``note`` is the log line that says why.

        Returns:
            ``False`` when it had ended meanwhile (or no longer exists).
        """
        with self._translate(), self._transaction() as conn:
            return self._mark_died(conn, execution_id, reason, note, state)

    @staticmethod
    def _mark_died(
        conn: Connection,
        execution_id: str,
        reason: str = DIED_REASON,
        note: str | None = None,
        state: State = State.FAILED,
    ) -> bool:
        """Mark an unfinished execution, its task runs and attempts ``state`` with ``reason``.

        ``note`` is the ``executor`` log line that says why (default: the dead pid).
        """
        row = conn.execute(
            "SELECT state, histories, pid FROM executions WHERE id = ?", (execution_id,)
        ).fetchone()
        if row is None or row[0] not in UNFINISHED:
            return False  # another process recovered it first, or it ended meanwhile
        when = datetime.now(UTC)
        stamp = ts(when)
        failed = state.value

        def ended(histories: str) -> str:
            return dumps([*json.loads(histories), [failed, stamp]])

        conn.execute(
            "UPDATE executions SET state = ?, end_date = ?, histories = ?, reason = ? WHERE id = ?",
            (failed, stamp, ended(row[1]), reason, execution_id),
        )
        runs = conn.execute(
            "SELECT id, histories, start_date FROM task_runs WHERE execution_id = ? AND state IN"
            f" {UNFINISHED_SQL}",
            (execution_id,),
        ).fetchall()
        for run_id, histories, start in runs:
            conn.execute(
                "UPDATE task_runs SET state = ?, end_date = ?, duration = ?,"
                " histories = ?, reason = ? WHERE id = ?",
                (
                    failed,
                    stamp,
                    (when - parse_ts(start)).total_seconds(),
                    ended(histories),
                    reason,
                    run_id,
                ),
            )
            attempts = conn.execute(
                "SELECT number, histories, start_date FROM attempts WHERE task_run_id = ? AND"
                f" state IN {UNFINISHED_SQL}",
                (run_id,),
            ).fetchall()
            for number, a_histories, a_start in attempts:
                conn.execute(
                    "UPDATE attempts SET state = ?, end_date = ?, duration = ?,"
                    " histories = ?, reason = ? WHERE task_run_id = ? AND number = ?",
                    (
                        failed,
                        stamp,
                        (when - parse_ts(a_start)).total_seconds(),
                        ended(a_histories),
                        reason,
                        run_id,
                        number,
                    ),
                )
        chunk = Chunker()
        chunk.add(
            LogLine(
                when,
                execution_id,
                None,
                None,
                None,
                "executor",
                Level.ERROR,
                note or f"{DIED_REASON} (pid {row[2]} no longer runs): execution marked FAILED",
            )
        )
        conn.executemany(INSERT_CHUNK, chunk.finish())
        return True
