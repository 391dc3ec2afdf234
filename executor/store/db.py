"""The record store: every execution, task run, attempt and log line, in SQLite or PostgreSQL.

By default the database lives at ``$EXECUTOR_HOME/executor.db`` in WAL mode, so readers
(``executor logs --follow``) never block the executor that writes, and several executors on the
same home each write in short ``BEGIN IMMEDIATE`` transactions, waiting (bounded,
``busy_timeout``) for one another instead of failing. With ``EXECUTOR_DATABASE_URL`` it is a
PostgreSQL database; the SQL that differs lives in :mod:`executor.store.dialect`, the schema and
its migrations in :mod:`executor.store.migrations` (applied when a store opens).

A :class:`Store` is one connection and belongs to the thread that opened it: open one per thread.
Every driver error is translated to :class:`~executor.errors.StoreError` here (messages in
:mod:`executor.store.failures`: corrupt, locked, not writable, server unreachable, wrong
password...), and never escapes as a traceback.

Log lines are stored in chunks: consecutive lines of one task attempt, stream and level that
arrive together share one row (``log_chunks``, each line keeping its own timestamp and text, as
JSON arrays), so a task printing a million lines costs thousands of inserts, not a million. A
quiet task's line is a chunk of one, written as it arrives. The ``log_lines`` view shows one row
per line for anyone reading the database with ``sqlite3``.

The executor's pid, the kernel start time of that pid and the host are kept on each execution
row; :meth:`Store.recover_dead` marks an unfinished execution whose executor provably no longer
runs FAILED with the reason ``executor died``.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field, fields, is_dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from executor.errors import NotFoundError, StoreError, StoreUnavailable, UsageError
from executor.host import Owner
from executor.model import (
    Attempt,
    Execution,
    Level,
    LogBatch,
    LogLine,
    State,
    StateHistory,
    TaskRun,
)
from executor.store.dialect import Connection, Location, connect, driver_errors, location_of
from executor.store.failures import describe, is_transient
from executor.store.migrations import current as current_revision
from executor.store.migrations import ensure_schema

# The schema before Alembic (``PRAGMA user_version``): 2: log lines in chunks; 3: extra, resumes;
# 4: server mode's flows, queue, triggers; 5: kv. Alembic's baseline revision is that schema.
SCHEMA_VERSION = 5
DEFAULT_BUSY_TIMEOUT = 10.0
DIED_REASON = "executor died"
# Spelt out in the SQL below. QUEUED is not among them: queued work belongs to no process (it
# waits on disk in the server's queue), so a dead server's queued executions run again.
UNFINISHED = tuple(s.value for s in State if not s.terminal and s != State.QUEUED)

# ----- value objects


@dataclass(frozen=True)
class ExecutionRecord:
    """A snapshot of an execution row, ready to be written (JSON fields already encoded)."""

    id: str
    namespace: str
    flow_id: str
    state: str
    start_date: str
    end_date: str | None
    inputs: str
    histories: str
    images: str
    labels: str
    reason: str | None
    owner: Owner
    extra: str = "{}"


@dataclass(frozen=True)
class AttemptRecord:
    """A snapshot of one attempt of a task run."""

    number: int
    state: str
    start_date: str
    end_date: str | None
    duration: float | None
    exit_code: int | None
    oom_killed: bool
    reason: str | None
    histories: str


@dataclass(frozen=True)
class TaskRunRecord:
    """A snapshot of a task run and its attempts, ready to be written."""

    id: str
    execution_id: str
    position: int
    task_id: str
    task_type: str
    parent_id: str | None
    state: str
    start_date: str
    end_date: str | None
    duration: float | None
    histories: str
    outputs: str
    metrics: str
    output_files: str
    image_id: str | None
    reason: str | None
    stderr_tail: str
    attempts: tuple[AttemptRecord, ...] = ()
    extra: str = "{}"


Write = ExecutionRecord | TaskRunRecord | LogLine | LogBatch


@dataclass(frozen=True)
class ExecutionSummary:
    """One line of ``executor executions``."""

    id: str
    namespace: str
    flow_id: str
    state: State
    start: datetime
    end: datetime | None
    reason: str | None
    owner: Owner

    @property
    def duration(self) -> float | None:
        """Seconds from start to end, ``None`` while it runs."""
        return (self.end - self.start).total_seconds() if self.end else None


@dataclass
class StoredExecution:
    """An execution read back from the store, with who ran it."""

    execution: Execution
    owner: Owner
    task_positions: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class StoredLogLine:
    """A log line read back from the store, with its row id (for ``--follow``)."""

    row_id: int
    line: LogLine


# ----- encoding


def ts(value: datetime) -> str:
    """A timestamp as stored: ISO 8601 in UTC with microseconds (sorts as text)."""
    return value.astimezone(UTC).isoformat(timespec="microseconds")


def parse_ts(text: str) -> datetime:
    """The inverse of :func:`ts`."""
    return datetime.fromisoformat(text)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def from_micros(value: int) -> datetime:
    """A log line's timestamp from its stored form, microseconds since the epoch.

    Integers, not ISO text: exact, and cheap for a million lines (``_Chunker.add``).
    """
    return _EPOCH + timedelta(microseconds=value)


def dumps(value: Any) -> str:
    """Compact JSON; values JSON cannot hold (dates, paths) become strings."""
    return json.dumps(value, default=str, separators=(",", ":"), ensure_ascii=False)


def _histories(history: StateHistory) -> str:
    return dumps([[s.value, ts(t)] for s, t in history.history])


def _state_history(current: str, histories: str) -> StateHistory:
    pairs = [(State(s), parse_ts(t)) for s, t in json.loads(histories)]
    return StateHistory(State(current), pairs or [(State(current), datetime.now(UTC))])


def execution_record(
    execution: Execution, owner: Owner, *, inputs: Any = None, reason: str | None = None
) -> ExecutionRecord:
    """Snapshot an execution (``inputs``/``reason`` override the raw values, e.g. masked)."""
    state = execution.state
    return ExecutionRecord(
        id=execution.id,
        namespace=execution.namespace,
        flow_id=execution.flow_id,
        state=state.current.value,
        start_date=ts(state.start),
        end_date=ts(state.end) if state.end else None,
        inputs=dumps(execution.inputs if inputs is None else inputs),
        histories=_histories(state),
        images=dumps(execution.images),
        labels=dumps(execution.labels),
        reason=execution.reason if reason is None else reason,
        owner=owner,
        extra=dumps(
            {
                k: v
                for k, v in (
                    ("parentId", execution.parent_id),
                    ("trigger", execution.trigger),
                    ("outputs", execution.outputs),
                    ("imageDigests", execution.image_digests),
                    ("flowRevision", execution.flow_revision),
                )
                if v
            }
        ),
    )


def output_files(outputs: dict[str, Any]) -> dict[str, str]:
    """The files a task kept (``outputFiles`` of scripts, ``uris`` of LocalFiles): name -> URI."""
    found: dict[str, str] = {}
    for key in ("outputFiles", "uris"):
        value = outputs.get(key)
        if isinstance(value, dict):
            found.update({str(k): str(v) for k, v in value.items()})
    return found


def task_run_record(
    execution_id: str,
    position: int,
    run: TaskRun,
    *,
    outputs: dict[str, Any] | None = None,
    metrics: list[dict[str, Any]] | None = None,
) -> TaskRunRecord:
    """Snapshot a task run and its attempts (``outputs``/``metrics`` override, e.g. masked)."""
    outputs = run.outputs if outputs is None else outputs
    attempts = tuple(
        AttemptRecord(
            number=a.number,
            state=a.state.current.value,
            start_date=ts(a.state.start),
            end_date=ts(a.state.end) if a.state.end else None,
            duration=a.state.duration,
            exit_code=a.exit_code,
            oom_killed=a.oom_killed,
            reason=a.reason,
            histories=_histories(a.state),
        )
        for a in run.attempts
    )
    return TaskRunRecord(
        id=run.id,
        execution_id=execution_id,
        position=position,
        task_id=run.task_id,
        task_type=run.task_type,
        parent_id=run.parent_task_run_id,
        state=run.state.current.value,
        start_date=ts(run.state.start),
        end_date=ts(run.state.end) if run.state.end else None,
        duration=run.state.duration,
        histories=_histories(run.state),
        outputs=dumps(outputs),
        metrics=dumps(run.metrics if metrics is None else metrics),
        output_files=dumps(output_files(outputs)),
        image_id=run.image_id,
        reason=run.reason,
        stderr_tail=dumps(run.stderr_tail),
        extra=dumps(
            {
                k: v
                for k, v in (
                    ("value", run.value),
                    ("iteration", run.iteration),
                    ("resumeInputs", run.resume_inputs),
                )
                if v is not None
            }
        ),
        attempts=attempts,
    )


def _encodable(record: Any) -> Any:
    """``record`` (a dataclass) with every lone surrogate in its text, nested ones too, replaced."""
    changes: dict[str, Any] = {}
    for item in fields(record):
        value = getattr(record, item.name)
        if type(value) is str:  # not a str enum such as Level
            changes[item.name] = _utf8_safe(value)
        elif is_dataclass(value):
            changes[item.name] = _encodable(value)
        elif isinstance(value, tuple):
            changes[item.name] = tuple(_encodable(v) if is_dataclass(v) else v for v in value)
        elif isinstance(value, list):
            changes[item.name] = [_utf8_safe(v) if type(v) is str else v for v in value]
    return replace(record, **changes)


def _utf8_safe(text: str) -> str:
    """``text`` with surrogate pairs joined and lone surrogates replaced by U+FFFD."""
    return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


# ----- the store


class Store:
    """One connection to the record store; use it only in the thread that opened it.

    Args:
        path: the SQLite database file (its directory is created when missing), or a
            ``postgresql://`` URL (``EXECUTOR_DATABASE_URL``, see ``Settings.db_path``).
        busy_timeout: seconds to wait for another process's lock before giving up.
        migrate: bring the schema up to date now (``False`` only to look at it: ``executor db``).

    Raises:
        StoreError: the directory cannot be created, the server cannot be reached, or the
            database is not a usable store.
    """

    def __init__(
        self, path: Path | str, *, busy_timeout: float = DEFAULT_BUSY_TIMEOUT, migrate: bool = True
    ) -> None:
        self.path = path
        self.busy_timeout = busy_timeout
        try:
            self.where: Location = location_of(path)
        except ValueError as exc:
            raise StoreError(f"EXECUTOR_DATABASE_URL: {exc}") from None
        if self.where.path is not None:
            directory = self.where.path.parent
            try:
                directory.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreError(
                    f"cannot create the state directory {directory}: {exc.strerror or exc}"
                ) from None
        with self._translate():
            self._conn = connect(self.where, busy_timeout)
        try:
            with self._translate():
                self._setup(migrate)
        except StoreError:
            self._conn.close()
            raise

    @classmethod
    def open(
        cls, path: Path | str, *, busy_timeout: float = DEFAULT_BUSY_TIMEOUT, recover: bool = True
    ) -> Store:
        """Open the store and mark executions whose executor died (see :meth:`recover_dead`).

        Args:
            path: the database file or URL.
            busy_timeout: seconds to wait for a lock.
            recover: whether to run crash recovery now.

        Returns:
            The open store.

        Raises:
            StoreError: the store cannot be used.
        """
        store = cls(path, busy_timeout=busy_timeout)
        if recover:
            try:
                store.recover_dead()
            except StoreError:
                store.close()
                raise
        return store

    def _setup(self, migrate: bool) -> None:
        conn = self._conn
        if conn.sqlite:
            conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout * 1000)}")
            mode = conn.scalar("PRAGMA journal_mode = WAL")
            if str(mode).lower() != "wal":
                raise StoreError(f"the record store {self.where} cannot use WAL mode (got {mode})")
            # WAL + NORMAL: a commit survives the process being killed; only power loss may
            # lose the last transactions, and no commit waits for an fsync.
            conn.execute("PRAGMA synchronous = NORMAL")
        if migrate:
            ensure_schema(conn, self.where)

    def schema_revision(self) -> str | None:
        """The Alembic revision of the database (``None``: never migrated), for ``executor db``."""
        with self._translate():
            return current_revision(self._conn)

    @contextmanager
    def transaction(self, *, exclusive: bool = True) -> Iterator[Connection]:
        """A write transaction for the store's other modules (errors become StoreError).

        ``exclusive`` (the default) holds the store's write lock from the start, so a read then
        a write in it see no other writer in between (claims, revisions, compare-and-set).
        """
        with self._translate(), self._transaction(exclusive=exclusive) as conn:
            yield conn

    @property
    def dialect(self) -> Connection:
        """The connection, for its dialect fragments (``json_path``, ``insertion_order``...)."""
        return self._conn

    def read(self, sql: str, args: Sequence[Any] = ()) -> list[Any]:
        """Rows of one query, for the store's other modules (errors become StoreError)."""
        with self._translate():
            return list(self._conn.execute(sql, args).fetchall())

    def close(self) -> None:
        """Close the connection (a checkpoint of the WAL happens when it is the last one)."""
        with suppress(*driver_errors(self.where)):
            self._conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _translate(self) -> Iterator[None]:
        try:
            yield
        except driver_errors(self.where) as exc:
            kind = StoreUnavailable if is_transient(exc, self.where) else StoreError
            raise kind(describe(exc, self.where, self.busy_timeout)) from None

    @contextmanager
    def _transaction(self, *, exclusive: bool = True) -> Iterator[Connection]:
        """A write transaction; ``exclusive`` takes the write lock at once (busy_timeout applies).

        On PostgreSQL a non-exclusive one runs beside other writers (log lines, upserts).
        """
        conn = self._conn
        try:
            conn.begin(exclusive=exclusive or conn.sqlite)
            yield conn
            conn.commit()
        except BaseException:
            # also when BEGIN's lock or COMMIT failed: PostgreSQL would refuse every later
            # statement of an aborted transaction, SQLite would keep the failed one open
            with suppress(*driver_errors(self.where)):
                conn.rollback()
            raise

    # ----- writing

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
            self._write([_encodable(item) for item in writes])

    def _write(self, writes: Sequence[Write]) -> None:
        # upserts and appends only: on PostgreSQL other writers need not wait for it
        with self._translate(), self._transaction(exclusive=False) as conn:
            chunks = _Chunker()
            for item in writes:
                if isinstance(item, LogBatch):
                    chunks.add_batch(item)
                    continue
                if isinstance(item, LogLine):
                    chunks.add(item)
                    continue
                if chunks.rows:
                    conn.executemany(_INSERT_CHUNK, chunks.finish())
                if isinstance(item, ExecutionRecord):
                    self._upsert_execution(conn, item)
                else:
                    self._upsert_task_run(conn, item)
            if chunks.rows or chunks.open:
                conn.executemany(_INSERT_CHUNK, chunks.finish())

    @staticmethod
    def upsert_execution(conn: Connection, r: ExecutionRecord) -> None:
        """Write one execution row inside a caller's transaction (the queue's submit)."""
        Store._upsert_execution(conn, r)

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
        state = self.execution_state(execution_id)
        if state != State.PAUSED:
            raise UsageError(f"execution {execution_id} is {state.value}, not PAUSED")
        with self._translate(), self._transaction() as conn:
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

    # ----- crash recovery

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
                " ('CREATED', 'RUNNING', 'RETRYING', 'PAUSED')",
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
                " IN ('CREATED', 'RUNNING', 'RETRYING', 'PAUSED')",
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
            " ('CREATED', 'RUNNING', 'RETRYING', 'PAUSED')",
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
                " state IN ('CREATED', 'RUNNING', 'RETRYING', 'PAUSED')",
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
        chunk = _Chunker()
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
        conn.executemany(_INSERT_CHUNK, chunk.finish())
        return True

    # ----- reading

    def resolve_id(self, prefix: str) -> str:
        """The full id of the one execution whose id starts with ``prefix``.

        Raises:
            NotFoundError: no execution id starts with it.
            UsageError: the prefix is empty or matches several executions.
        """
        if not prefix:
            raise UsageError("give an execution id (or the start of one)")
        with self._translate():
            rows = self._conn.execute(
                "SELECT id FROM executions WHERE substr(id, 1, ?) = ? ORDER BY start_date DESC"
                " LIMIT 6",
                (len(prefix), prefix),
            ).fetchall()
        if not rows:
            raise NotFoundError(
                f"no execution with id {prefix!r} in {self.where} (see `executor executions`)"
            )
        if len(rows) > 1:
            shown = ", ".join(r[0] for r in rows[:5])
            raise UsageError(
                f"execution id {prefix!r} is ambiguous: it starts {shown}"
                + (", ..." if len(rows) > 5 else "")
                + "; give more characters"
            )
        return str(rows[0][0])

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
            where.append("(namespace = ? OR substr(namespace, 1, ?) = ?)")
            args += [namespace, len(namespace) + 1, namespace + "."]
        if states:
            where.append(f"state IN ({','.join('?' * len(states))})")
            args += [s.value for s in states]
        if since is not None:
            where.append("start_date >= ?")
            args.append(ts(since))
        sql = (
            "SELECT id, namespace, flow_id, state, start_date, end_date, reason, pid,"
            " pid_start, host FROM executions"
        )
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY start_date DESC, " + self._conn.insertion_order + " DESC"
        if limit is not None:
            sql += " LIMIT ?"
            args.append(limit)
        with self._translate():
            rows = self._conn.execute(sql, args).fetchall()
        return [
            ExecutionSummary(
                r[0],
                r[1],
                r[2],
                State(r[3]),
                parse_ts(r[4]),
                parse_ts(r[5]) if r[5] else None,
                r[6],
                Owner(r[7], r[8], r[9]),
            )
            for r in rows
        ]

    def get_execution(self, execution_id: str) -> StoredExecution:
        """The whole execution: task runs in the order they started, with every attempt.

        Raises:
            NotFoundError: no execution has exactly this id.
        """
        with self._translate():
            conn = self._conn
            row = conn.execute(
                "SELECT id, namespace, flow_id, state, inputs, histories, images, labels,"
                " reason, pid, pid_start, host, extra FROM executions WHERE id = ?",
                (execution_id,),
            ).fetchone()
            if row is None:
                raise NotFoundError(f"no execution with id {execution_id!r} in {self.where}")
            execution = Execution(
                namespace=row[1],
                flow_id=row[2],
                inputs=json.loads(row[4]),
                id=row[0],
                state=_state_history(row[3], row[5]),
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
            runs = conn.execute(
                "SELECT id, position, task_id, task_type, parent_id, state, histories, outputs,"
                " metrics, image_id, reason, stderr_tail, extra FROM task_runs"
                " WHERE execution_id = ?"
                " ORDER BY position",
                (execution_id,),
            ).fetchall()
            attempts: dict[str, list[Attempt]] = {}
            for a in conn.execute(
                "SELECT a.task_run_id, a.number, a.state, a.histories, a.exit_code,"
                " a.oom_killed, a.reason FROM attempts a JOIN task_runs t"
                " ON t.id = a.task_run_id WHERE t.execution_id = ? ORDER BY a.number",
                (execution_id,),
            ):
                attempts.setdefault(a[0], []).append(
                    Attempt(a[1], _state_history(a[2], a[3]), a[4], bool(a[5]), a[6])
                )
        positions: dict[str, int] = {}
        for r in runs:
            extra = json.loads(r[12] or "{}")
            execution.task_runs.append(
                TaskRun(
                    task_id=r[2],
                    task_type=r[3],
                    parent_task_run_id=r[4],
                    id=r[0],
                    state=_state_history(r[5], r[6]),
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
            positions[r[0]] = r[1]
        return StoredExecution(execution, Owner(row[9], row[10], row[11]), positions)

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


CHUNK_LINES = 500
_INSERT_CHUNK = (
    "INSERT INTO log_chunks (execution_id, task_id, task_run_id, attempt, stream,"
    " level, lines, first_ts_us, ts_us, messages)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


class _Chunker:
    """Groups consecutive lines of the same task attempt, stream and level into chunk rows.

    This is the hot path of a loud task: a few attribute reads and two appends per line.
    """

    def __init__(self) -> None:
        self.rows: list[tuple[Any, ...]] = []
        self.open = False
        self._key: tuple[Any, ...] = ()
        self._stamps: list[int] = []
        self._messages: list[str] = []
        self._last: Any = None
        self._last_us = 0

    def add(self, line: LogLine) -> None:
        key = (
            line.execution_id,
            line.task_run_id,
            line.attempt,
            line.stream,
            line.level,
            line.task_id,
        )
        if key != self._key or len(self._messages) >= CHUNK_LINES:
            self._close()
            self._key = key
            self.open = True
        stamp = line.timestamp
        if stamp is not self._last:  # lines of one batch share their timestamp object
            self._last, self._last_us = stamp, round(stamp.timestamp() * 1_000_000)
        self._stamps.append(self._last_us)
        self._messages.append(line.message)

    def add_batch(self, batch: LogBatch) -> None:
        """Lines that arrived together: appended to the open chunk (same key) in slices."""
        key = (
            batch.execution_id,
            batch.task_run_id,
            batch.attempt,
            batch.stream,
            batch.level,
            batch.task_id,
        )
        if key != self._key:
            self._close()
            self._key = key
            self.open = True
        stamp = batch.timestamp
        if stamp is not self._last:
            self._last, self._last_us = stamp, round(stamp.timestamp() * 1_000_000)
        messages, start = batch.messages, 0
        while start < len(messages):
            if len(self._messages) >= CHUNK_LINES:
                self._close()
                self._key = key
                self.open = True
            end = start + CHUNK_LINES - len(self._messages)
            piece = messages[start:end]
            self._messages.extend(piece)
            self._stamps.extend([self._last_us] * len(piece))
            start = end

    def _close(self) -> None:
        if not self.open:
            return
        execution_id, run_id, attempt, stream, level, task_id = self._key
        self.rows.append(
            (
                execution_id,
                task_id,
                run_id,
                attempt,
                stream,
                level.value,
                len(self._messages),
                self._stamps[0],
                json.dumps(self._stamps, separators=(",", ":")),
                json.dumps(self._messages, ensure_ascii=False),
            )
        )
        self._stamps, self._messages = [], []
        self.open = False
        self._key = ()

    def finish(self) -> list[tuple[Any, ...]]:
        """The chunk rows so far (the open chunk closed), and a fresh start."""
        self._close()
        rows, self.rows = self.rows, []
        return rows
