"""Reading records back: executions (one, or a filtered list), their owners and log lines."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from executor.errors import NotFoundError, UsageError
from executor.host import Owner
from executor.model import Attempt, Execution, Level, LogLine, State, TaskRun
from executor.store.connection import Connected
from executor.store.dialect import Connection
from executor.store.records import (
    ExecutionSummary,
    StoredExecution,
    StoredLogLine,
    from_micros,
    parse_ts,
    state_history,
    ts,
)

_SUMMARY_COLUMNS = (
    "id, namespace, flow_id, state, start_date, end_date, reason, pid, pid_start, host"
)


def _summary(r: Sequence[Any]) -> ExecutionSummary:
    return ExecutionSummary(
        r[0],
        r[1],
        r[2],
        State(r[3]),
        parse_ts(r[4]),
        parse_ts(r[5]) if r[5] else None,
        r[6],
        Owner(r[7], r[8], r[9]),
    )


def prefix_upper(prefix: str) -> str | None:
    """The first string after every string that starts with ``prefix`` (``None``: there is
    none), so ``value >= prefix AND value < prefix_upper(prefix)`` is "starts with"."""
    chars = list(prefix)
    while chars:
        code = ord(chars[-1]) + 1
        if 0xD800 <= code <= 0xDFFF:  # surrogates are no characters: skip them
            code = 0xE000
        if code <= 0x10FFFF:
            chars[-1] = chr(code)
            return "".join(chars)
        chars.pop()
    return None


def _storable(text: str) -> bool:
    """Whether a value could be stored at all (no NUL, valid UTF-8): others match nothing."""
    if "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def namespace_clause(sql: Connection, namespace: str) -> tuple[str, list[Any]]:
    """SQL (and its arguments) true for ``namespace`` and every namespace below it.

    One range of the namespace index, ``[a.b, a.b/)`` (``/`` follows ``.``), holds them; the
    rest of the clause drops the neighbours that range also holds (``a.b-c``).
    """
    column = sql.bytewise("namespace")
    return (
        f"({column} >= ? AND {column} < ? AND ({column} = ? OR {column} >= ?))",
        [namespace, namespace + "/", namespace, namespace + "."],
    )


class Queries(Connected):
    """The reads of a :class:`~executor.store.db.Store`."""

    def resolve_id(self, prefix: str) -> str:
        """The full id of the one execution whose id starts with ``prefix``.

        A range of the id's index (``id >= prefix AND id < the next prefix``) finds it: a few
        index entries read whatever the size of the history, and no character of the prefix is
        a wildcard.

        Raises:
            NotFoundError: no execution id starts with it.
            UsageError: the prefix is empty or matches several executions.
        """
        if not prefix:
            raise UsageError("give an execution id (or the start of one)")
        rows: list[Any] = []
        if _storable(prefix):
            column = self._conn.bytewise("id")
            sql = f"SELECT id FROM executions WHERE {column} >= ?"
            args: list[Any] = [prefix]
            upper = prefix_upper(prefix)
            if upper is not None:
                sql += f" AND {column} < ?"
                args.append(upper)
            with self._translate():
                rows = self._conn.execute(f"{sql} ORDER BY {column} LIMIT 6", args).fetchall()
        if not rows:
            raise NotFoundError(
                f"no execution with id {prefix!r} in {self.where} (see `executor executions`)"
            )
        if len(rows) > 1 and rows[0][0] != prefix:
            shown = ", ".join(r[0] for r in rows[:5])
            raise UsageError(
                f"execution id {prefix!r} is ambiguous: it starts {shown}"
                + (", ..." if len(rows) > 5 else "")
                + "; give more characters"
            )
        return str(rows[0][0])

    def last_executions(
        self, flows: Sequence[tuple[str, str]] | None = None
    ) -> dict[tuple[str, str], ExecutionSummary]:
        """The newest execution of each flow, by (namespace, flow id), in one query.

        Args:
            flows: the flows to look at; ``None``: every flow the server keeps (its ``flows``
                table), as the Flows page lists them.

        Each flow's newest execution is the first entry of its range of ``executions_by_flow``
        (namespace, flow_id, start_date): one index lookup per flow, whatever the history's size.
        """
        if flows is not None and not flows:
            return {}
        conn = self._conn
        if flows is None:
            wanted = "SELECT DISTINCT namespace AS ns, id AS flow FROM flows"
            args: list[Any] = []
        else:
            wanted = " UNION ALL ".join(["SELECT ? AS ns, ? AS flow"] * len(flows))
            args = [value for pair in flows for value in pair]
        order = "x.start_date DESC, x." + conn.insertion_order + " DESC"
        newest = (
            "SELECT x.id FROM executions x"
            f" WHERE {conn.bytewise('x.namespace')} = w.ns AND x.flow_id = w.flow"
            f" ORDER BY {order} LIMIT 1"
        )
        sql = (
            f"SELECT {_SUMMARY_COLUMNS} FROM executions"
            f" WHERE id IN (SELECT ({newest}) FROM ({wanted}) w)"
        )
        with self._translate():
            rows = conn.execute(sql, args).fetchall()
        found = [_summary(r) for r in rows]
        return {(e.namespace, e.flow_id): e for e in found}

    def list_executions(
        self,
        *,
        flow: str | None = None,
        namespace: str | None = None,
        states: Sequence[State] = (),
        since: datetime | None = None,
        limit: int | None = None,
    ) -> list[ExecutionSummary]:
        """Executions, newest first, filtered.

        Args:
            flow: only this flow id.
            namespace: only this namespace or a namespace below it (``a.b`` matches ``a.b.c``).
            states: only executions in one of these states.
            since: only executions started at or after this time.
            limit: at most this many.

        Returns:
            The matching executions.
        """
        where: list[str] = []
        args: list[Any] = []
        if flow:
            where.append("flow_id = ?")
            args.append(flow)
        if namespace:
            clause, clause_args = namespace_clause(self._conn, namespace)
            where.append(clause)
            args += clause_args
        if states:
            where.append(f"state IN ({','.join('?' * len(states))})")
            args += [s.value for s in states]
        if since is not None:
            where.append("start_date >= ?")
            args.append(ts(since))
        sql = f"SELECT {_SUMMARY_COLUMNS} FROM executions"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY start_date DESC, " + self._conn.insertion_order + " DESC"
        if limit is not None:
            sql += " LIMIT ?"
            args.append(limit)
        with self._translate():
            rows = self._conn.execute(sql, args).fetchall()
        return [_summary(r) for r in rows]

    def get_execution(self, execution_id: str) -> StoredExecution:
        """The whole execution: task runs in the order they started, with every attempt.

        Raises:
            NotFoundError: no execution has exactly this id.
        """
        found = self.get_executions([execution_id])
        if not found:
            raise NotFoundError(f"no execution with id {execution_id!r} in {self.where}")
        return found[0]

    def get_executions(self, execution_ids: Sequence[str]) -> list[StoredExecution]:
        """Whole executions, in the order of ``execution_ids`` (those that exist), read in three
        queries however many there are (a page of a search: not three queries per execution)."""
        if not execution_ids:
            return []
        marks = ",".join("?" * len(execution_ids))
        ids = list(execution_ids)
        with self._translate():
            conn = self._conn
            rows = conn.execute(
                "SELECT id, namespace, flow_id, state, inputs, histories, images, labels,"
                " reason, pid, pid_start, host, extra FROM executions"
                f" WHERE id IN ({marks})",
                ids,
            ).fetchall()
            runs = conn.execute(
                "SELECT id, position, task_id, task_type, parent_id, state, histories, outputs,"
                " metrics, image_id, reason, stderr_tail, extra, execution_id FROM task_runs"
                f" WHERE execution_id IN ({marks}) ORDER BY execution_id, position",
                ids,
            ).fetchall()
            attempts: dict[str, list[Attempt]] = {}
            for a in conn.execute(
                "SELECT a.task_run_id, a.number, a.state, a.histories, a.exit_code,"
                " a.oom_killed, a.reason FROM attempts a JOIN task_runs t"
                f" ON t.id = a.task_run_id WHERE t.execution_id IN ({marks})"
                " ORDER BY a.task_run_id, a.number",
                ids,
            ):
                attempts.setdefault(a[0], []).append(
                    Attempt(a[1], state_history(a[2], a[3]), a[4], bool(a[5]), a[6])
                )
        stored: dict[str, StoredExecution] = {}
        for row in rows:
            execution = Execution(
                namespace=row[1],
                flow_id=row[2],
                inputs=json.loads(row[4]),
                id=row[0],
                state=state_history(row[3], row[5]),
                images=json.loads(row[6]),
                reason=row[8],
                labels=json.loads(row[7]),
            )
            extra = json.loads(row[12] or "{}")
            execution.parent_id = extra.get("parentId")
            execution.trigger = extra.get("trigger")
            execution.outputs = extra.get("outputs") or {}
            execution.image_digests = extra.get("imageDigests") or {}
            execution.flow_revision = extra.get("flowRevision")
            execution.original_id = extra.get("originalId")
            execution.flow_file = extra.get("flowFile")
            stored[row[0]] = StoredExecution(execution, Owner(row[9], row[10], row[11]), {})
        for r in runs:
            owner = stored.get(r[13])
            if owner is None:
                continue
            extra = json.loads(r[12] or "{}")
            owner.execution.task_runs.append(
                TaskRun(
                    task_id=r[2],
                    task_type=r[3],
                    parent_task_run_id=r[4],
                    id=r[0],
                    state=state_history(r[5], r[6]),
                    attempts=attempts.get(r[0], []),
                    outputs=json.loads(r[7]),
                    metrics=json.loads(r[8]),
                    image_id=r[9],
                    reason=r[10],
                    stderr_tail=json.loads(r[11]),
                    value=extra.get("value"),
                    iteration=extra.get("iteration"),
                    resume_inputs=extra.get("resumeInputs"),
                )
            )
            owner.task_positions[r[0]] = r[1]
        return [stored[i] for i in execution_ids if i in stored]

    def execution_state(self, execution_id: str) -> State:
        """The current state of one execution (cheap; for polling).

        Raises:
            NotFoundError: no execution has exactly this id.
        """
        with self._translate():
            row = self._conn.execute(
                "SELECT state FROM executions WHERE id = ?", (execution_id,)
            ).fetchone()
        if row is None:
            raise NotFoundError(f"no execution with id {execution_id!r} in {self.where}")
        return State(row[0])

    def owner(self, execution_id: str) -> Owner:
        """Who runs (or ran) an execution.

        Raises:
            NotFoundError: no execution has exactly this id.
        """
        with self._translate():
            row = self._conn.execute(
                "SELECT pid, pid_start, host FROM executions WHERE id = ?", (execution_id,)
            ).fetchone()
        if row is None:
            raise NotFoundError(f"no execution with id {execution_id!r} in {self.where}")
        return Owner(row[0], row[1], row[2])

    def logs(
        self,
        execution_id: str,
        *,
        task_id: str | None = None,
        after: int = 0,
        limit: int | None = None,
    ) -> list[StoredLogLine]:
        """Log lines of one execution in the order they were written.

        Args:
            execution_id: the execution.
            task_id: only lines of this task.
            after: only lines stored after the chunk with this row id (for following; lines
                of a chunk are always read together, and a chunk never grows once written).
            limit: at most this many chunks (each up to ``CHUNK_LINES`` lines).

        Returns:
            The lines, each with the row id of its chunk.
        """
        sql = (
            "SELECT id, ts_us, task_id, task_run_id, attempt, stream, level, messages"
            " FROM log_chunks WHERE execution_id = ? AND id > ?"
        )
        args: list[Any] = [execution_id, after]
        if task_id is not None:
            sql += " AND task_id = ?"
            args.append(task_id)
        sql += " ORDER BY id"
        if limit is not None:
            sql += " LIMIT ?"
            args.append(limit)
        with self._translate():
            rows = self._conn.execute(sql, args).fetchall()
        lines: list[StoredLogLine] = []
        for row_id, stamps, task, run_id, attempt, stream, level_name, messages in rows:
            level = Level(level_name)
            lines.extend(
                StoredLogLine(
                    row_id,
                    LogLine(
                        from_micros(stamp),
                        execution_id,
                        task,
                        run_id,
                        attempt,
                        stream,
                        level,
                        message,
                    ),
                )
                for stamp, message in zip(json.loads(stamps), json.loads(messages), strict=True)
            )
        return lines

    def count_logs(self, execution_id: str) -> int:
        """How many log lines an execution has."""
        with self._translate():
            row = self._conn.execute(
                "SELECT coalesce(sum(lines), 0) FROM log_chunks WHERE execution_id = ?",
                (execution_id,),
            ).fetchone()
        return int(row[0])
