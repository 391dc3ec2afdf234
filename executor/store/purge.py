"""Purging history: ended executions with their task runs, attempts, log lines and stored files;
log lines alone (``PurgeExecutions``, ``PurgeLogs``, ``executor purge``, the server's retention).

A purge never touches an execution that has not ended (CREATED, RUNNING, PAUSED, QUEUED...):
only those in a terminal state, ended before the selection's date. It works in batches of
:data:`BATCH` executions, each removed in its own short transaction, so the executions running
meanwhile keep writing (on SQLite the write lock is held for one batch at a time; on PostgreSQL
the rows removed are rows nobody writes). A batch's stored files go first, then its rows: a
purge cut short leaves rows whose files are gone, never files that nothing leads to, and the
next purge finishes the job.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from executor.errors import UsageError
from executor.model import Level, State
from executor.store.connection import Connected
from executor.store.dialect import Connection
from executor.store.records import ts

BATCH = 500  # executions per transaction
LOG_BATCH = 5000  # log chunks per transaction
FILE_THREADS = 4  # executions whose files are removed at once
TERMINAL: tuple[str, ...] = tuple(state.value for state in State if state.terminal)
_TERMINAL_SQL = "(" + ", ".join(f"'{state}'" for state in TERMINAL) + ")"  # our enum's values


def _marks(count: int) -> str:
    return ",".join("?" * count)


def _namespace_clause(
    namespace: str, exact: bool, column: str = "namespace"
) -> tuple[str, list[Any]]:
    """The namespace, and with ``exact`` false the namespaces below it too (``a.b`` matches
    ``a.b.c``, not ``a.bc``): a range, so an index on the column can serve it."""
    if exact:
        return f"{column} = ?", [namespace]
    # '/' sorts right after '.': every name that starts with "namespace." is in the range
    return f"({column} = ? OR ({column} >= ? AND {column} < ?))", [
        namespace,
        namespace + ".",
        namespace + "/",
    ]


def terminal_states(names: Sequence[str], where: str) -> tuple[State, ...]:
    """The states named (Kestra's names; ``CANCELED`` too), each a terminal one.

    Raises:
        UsageError: a name is no state, or names one that has not ended (never purged).
    """
    found: list[State] = []
    for name in names:
        text = str(name).strip().upper()
        text = "CANCELLED" if text == "CANCELED" else text
        try:
            state = State(text)
        except ValueError:
            known = ", ".join(TERMINAL)
            raise UsageError(f"{where}: {name!r} is not a state (one of {known})") from None
        if not state.terminal:
            raise UsageError(
                f"{where}: {state.value} executions have not ended and are never purged"
                f" (purgeable states: {', '.join(TERMINAL)})"
            )
        found.append(state)
    return tuple(found)


@dataclass(frozen=True)
class ExecutionSelection:
    """Which ended executions a purge takes (Kestra's PurgeExecutions filters).

    Attributes:
        ended_before: only executions ended at or before this time (``endDate``).
        started_after: only executions started at or after this time (``startDate``).
        namespace: only this namespace and those below it; with ``flow_id``, exactly this one.
        flow_id: only this flow (needs ``namespace``).
        states: only these terminal states; none: every terminal state.
    """

    ended_before: datetime
    started_after: datetime | None = None
    namespace: str | None = None
    flow_id: str | None = None
    states: tuple[State, ...] = ()

    def __post_init__(self) -> None:
        if self.flow_id is not None and self.namespace is None:
            raise UsageError("a flow id needs its namespace to purge its executions")
        unfinished = [s.value for s in self.states if not s.terminal]
        if unfinished:
            raise UsageError(f"{', '.join(unfinished)} executions are never purged")

    def where(self) -> tuple[str, list[Any]]:
        """The SQL condition on ``executions`` and its arguments."""
        end = ts(self.ended_before)
        # start_date <= end: ended before means started before too, and start_date is indexed
        clauses = [
            "start_date <= ?",
            "end_date IS NOT NULL",
            "end_date <= ?",
            f"state IN {_TERMINAL_SQL}",
        ]
        args: list[Any] = [end, end]
        if self.started_after is not None:
            clauses.append("start_date >= ?")
            args.append(ts(self.started_after))
        if self.namespace is not None:
            clause, more = _namespace_clause(self.namespace, exact=self.flow_id is not None)
            clauses.append(clause)
            args += more
        if self.flow_id is not None:
            clauses.append("flow_id = ?")
            args.append(self.flow_id)
        if self.states:
            clauses.append(f"state IN ({_marks(len(self.states))})")
            args += [s.value for s in self.states]
        return " AND ".join(clauses), args


@dataclass(frozen=True)
class PurgeParts:
    """What of each execution goes (Kestra's ``purgeExecution``, ``purgeLog``...).

    Metrics live in their task runs' rows: they go with the execution whatever ``metrics``
    says; ``metrics`` alone empties them and keeps the rest.
    """

    executions: bool = True
    logs: bool = True
    metrics: bool = True
    files: bool = True


@dataclass
class PurgeCounts:
    """What a purge removed (or, in a dry run, would remove)."""

    executions: int = 0
    logs: int = 0  # log lines
    files: int = 0
    metrics: int = 0

    def add(self, other: PurgeCounts) -> None:
        self.executions += other.executions
        self.logs += other.logs
        self.files += other.files
        self.metrics += other.metrics


@dataclass(frozen=True)
class LogSelection:
    """Which log lines ``PurgeLogs`` takes. Lines of an execution that has not ended stay.

    Attributes:
        before: only lines written at or before this time (``endDate``).
        after: only lines written at or after this time (``startDate``).
        namespace: only lines of executions of this namespace and those below it (with
            ``flow_id``: exactly this one).
        flow_id: only lines of this flow's executions (needs ``namespace``).
        execution_id: only lines of this execution.
        levels: only lines of these levels; none: every level.
    """

    before: datetime
    after: datetime | None = None
    namespace: str | None = None
    flow_id: str | None = None
    execution_id: str | None = None
    levels: tuple[Level, ...] = ()

    def __post_init__(self) -> None:
        if self.flow_id is not None and self.namespace is None:
            raise UsageError("a flow id needs its namespace to purge its logs")

    def takes(self, execution: tuple[str, str, str] | None) -> bool:
        """Whether lines of ``execution`` (namespace, flow id, state; ``None``: its record is
        gone) are taken."""
        if execution is None:  # lines left by a purge that kept them: their namespace is gone
            return self.namespace is None
        namespace, flow_id, state = execution
        if state not in TERMINAL:
            return False
        if self.flow_id is not None:
            return namespace == self.namespace and flow_id == self.flow_id
        if self.namespace is not None:
            return namespace == self.namespace or namespace.startswith(self.namespace + ".")
        return True


class ExecutionFiles(Protocol):
    """What a purge needs of the artifact store (``store.api.ArtifactStore`` has it)."""

    def execution_files(self, namespace: str, flow_id: str, execution_id: str) -> list[str]: ...

    def purge(self, namespace: str, flow_id: str, execution_id: str) -> list[str]: ...


@dataclass(frozen=True)
class _Key:
    id: str
    namespace: str
    flow_id: str
    start_date: str


@dataclass
class _Counted(PurgeCounts):
    ids: list[str] = field(default_factory=list)  # the executions of the batch that ended


def _micros(moment: datetime) -> int:
    return round(moment.timestamp() * 1_000_000)


class Purges(Connected):
    """The purges of a :class:`~executor.store.db.Store`."""

    def purge_executions(
        self,
        selection: ExecutionSelection,
        parts: PurgeParts,
        files: ExecutionFiles | None,
        *,
        dry_run: bool = False,
        batch: int = BATCH,
    ) -> PurgeCounts:
        """Remove what ``parts`` names of the executions ``selection`` takes, ``batch`` at a time.

        Args:
            selection: which executions (only ended ones, always).
            parts: rows, log lines, metrics, stored files.
            files: where their stored files are (``parts.files``).
            dry_run: count only; nothing is removed.
            batch: executions per transaction.

        Raises:
            StoreError: the store cannot be read or written (batches done before stay done).
        """
        counts = PurgeCounts()
        after: _Key | None = None
        # removing a file tree waits on the file system's journal, one directory at a time:
        # a few threads, each on its own execution's tree, make it several times faster
        with ThreadPoolExecutor(FILE_THREADS, thread_name_prefix="purge-files") as pool:
            while True:
                page = self._page(selection, after, batch)
                if not page:
                    return counts
                after = page[-1]
                if parts.files and files is not None:
                    drop = files.execution_files if dry_run else files.purge
                    found = pool.map(
                        drop,
                        [k.namespace for k in page],
                        [k.flow_id for k in page],
                        [k.id for k in page],
                    )
                    counts.files += sum(len(uris) for uris in found)
                counts.add(self._rows(page, parts, dry_run))

    def _page(self, selection: ExecutionSelection, after: _Key | None, limit: int) -> list[_Key]:
        condition, args = selection.where()
        if after is not None:  # keyset paging: rows kept (a dry run) are not read again
            condition += " AND (start_date > ? OR (start_date = ? AND id > ?))"
            args += [after.start_date, after.start_date, after.id]
        rows = self.read(
            f"SELECT id, namespace, flow_id, start_date FROM executions WHERE {condition}"
            " ORDER BY start_date, id LIMIT ?",
            [*args, limit],
        )
        return [_Key(*row) for row in rows]

    def _rows(self, page: list[_Key], parts: PurgeParts, dry_run: bool) -> PurgeCounts:
        ids = [key.id for key in page]
        if dry_run:
            with self._translate():
                return self._counted(self.dialect, ids, parts)
        with self.transaction(exclusive=False) as conn:
            counts = self._counted(conn, ids, parts)
            ids = counts.ids
            if not ids:
                return counts
            marks = _marks(len(ids))
            if parts.logs:
                conn.execute(f"DELETE FROM log_chunks WHERE execution_id IN ({marks})", ids)
            if parts.executions:
                conn.execute(
                    "DELETE FROM attempts WHERE task_run_id IN"
                    f" (SELECT id FROM task_runs WHERE execution_id IN ({marks}))",
                    ids,
                )
                for table in ("task_runs", "resumes", "queue", "dispatched", "worker_runs"):
                    conn.execute(f"DELETE FROM {table} WHERE execution_id IN ({marks})", ids)
                conn.execute(f"DELETE FROM executions WHERE id IN ({marks})", ids)
            elif parts.metrics and counts.metrics:
                conn.execute(
                    f"UPDATE task_runs SET metrics = '[]' WHERE execution_id IN ({marks})"
                    " AND metrics <> '[]'",
                    ids,
                )
        return counts

    @staticmethod
    def _counted(conn: Connection, ids: list[str], parts: PurgeParts) -> _Counted:
        """What ``parts`` of the executions ``ids`` hold; only those that ended are counted
        (asked again in the purge's transaction: whatever happened since the page was read)."""
        counts = _Counted()
        counts.ids = [
            row[0]
            for row in conn.execute(
                f"SELECT id FROM executions WHERE id IN ({_marks(len(ids))})"
                f" AND state IN {_TERMINAL_SQL}",
                ids,
            ).fetchall()
        ]
        ids = counts.ids
        if not ids:
            return counts
        marks = _marks(len(ids))
        if parts.logs:
            counts.logs = int(
                conn.execute(
                    "SELECT coalesce(sum(lines), 0) FROM log_chunks"
                    f" WHERE execution_id IN ({marks})",
                    ids,
                ).fetchone()[0]
            )
        if parts.metrics:
            counts.metrics = sum(
                len(json.loads(row[0] or "[]"))
                for row in conn.execute(
                    f"SELECT metrics FROM task_runs WHERE execution_id IN ({marks})", ids
                ).fetchall()
            )
        if parts.executions:
            counts.executions = len(ids)
        return counts

    def purge_logs(
        self, selection: LogSelection, *, dry_run: bool = False, batch: int = LOG_BATCH
    ) -> int:
        """Remove the log lines ``selection`` takes, ``batch`` chunks at a time; how many lines.

        Lines are kept in chunks of lines written together (one task attempt, stream and
        level, within one write): a chunk goes when its first line is in the window.

        Raises:
            StoreError: the store cannot be read or written (batches done before stay done).
        """
        removed = 0
        after: tuple[int, int] | None = None
        while True:
            page = self._log_page(selection, after, batch)
            if not page:
                return removed
            after = (page[-1][1], page[-1][0])
            owners = self._owners({row[2] for row in page})
            taken = [row for row in page if selection.takes(owners.get(row[2]))]
            if not taken:
                continue
            removed += sum(row[3] for row in taken)
            if dry_run:
                continue
            with self.transaction(exclusive=False) as conn:
                ids = [row[0] for row in taken]
                conn.execute(f"DELETE FROM log_chunks WHERE id IN ({_marks(len(ids))})", ids)

    def _log_page(
        self, selection: LogSelection, after: tuple[int, int] | None, limit: int
    ) -> list[tuple[int, int, str, int]]:
        clauses = ["first_ts_us <= ?"]
        args: list[Any] = [_micros(selection.before)]
        if selection.after is not None:
            clauses.append("first_ts_us >= ?")
            args.append(_micros(selection.after))
        if selection.execution_id is not None:
            clauses.append("execution_id = ?")
            args.append(selection.execution_id)
        if selection.levels:
            clauses.append(f"level IN ({_marks(len(selection.levels))})")
            args += [level.value for level in selection.levels]
        if after is not None:
            clauses.append("(first_ts_us > ? OR (first_ts_us = ? AND id > ?))")
            args += [after[0], after[0], after[1]]
        rows = self.read(
            "SELECT id, first_ts_us, execution_id, lines FROM log_chunks"
            f" WHERE {' AND '.join(clauses)} ORDER BY first_ts_us, id LIMIT ?",
            [*args, limit],
        )
        return [(int(r[0]), int(r[1]), str(r[2]), int(r[3])) for r in rows]

    def _owners(self, execution_ids: set[str]) -> dict[str, tuple[str, str, str]]:
        ids = sorted(execution_ids)
        rows = self.read(
            "SELECT id, namespace, flow_id, state FROM executions"
            f" WHERE id IN ({_marks(len(ids))})",
            ids,
        )
        return {row[0]: (row[1], row[2], row[3]) for row in rows}
