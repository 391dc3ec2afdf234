"""Executions run by workers on other hosts: dispatch, claims, attempts and heartbeats.

The server stays the one source of truth. Dispatching takes the oldest queued work and hands it
to the broker in the same transaction (a broker that refuses leaves it queued). A worker that
receives it *claims* it here before running: the claim says whether to run it (and as which
attempt), drop it (it ended, or was killed before it started) or wait (another worker, still
heartbeating, runs it: a redelivery that came too early). A worker whose heartbeat lapsed has
lost its runs: they are marked FAILED ("worker lost"), and a redelivered message starts them
again as the next attempt, on whichever worker takes it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from executor.host import Owner
from executor.model import Level, LogLine, State
from executor.store.db import Store
from executor.store.dialect import Connection
from executor.store.files.artifacts import Reader
from executor.store.log_chunks import INSERT_CHUNK, Chunker
from executor.store.queue import _COLUMNS, QueuedWork, end_restarted
from executor.store.records import (
    UNFINISHED,
    ExecutionRecord,
    TaskRunRecord,
    Write,
    dumps,
    parse_ts,
    ts,
)

_MAX_DEPTH = 64  # subflows nested deeper than this are not a worker's children

LOST_REASON = "worker lost"


def worker_owner(worker: str) -> Owner:
    """How a worker's execution is recorded as owned: never judged by the server's pid rule."""
    return Owner(0, "", f"worker:{worker}")


@dataclass(frozen=True)
class WorkerInfo:
    """What a worker says of itself in each heartbeat."""

    name: str
    host: str
    engine_id: str
    queues: list[str]
    labels: list[str]
    slots: int
    running: list[str]
    started: str


@dataclass(frozen=True)
class WorkerRow:
    """A worker as the server last heard of it."""

    info: WorkerInfo
    last_seen: datetime


@dataclass(frozen=True)
class Claim:
    """The server's answer to a worker that received an execution.

    Attributes:
        action: ``run``, ``drop`` (ended or killed: acknowledge and forget) or ``wait``
            (a live worker runs it: ask again later).
        attempt: the attempt number to run (1, then 2 after a lost worker...).
        work: what to run.
        histories: the execution's state history so far (``[[state, ts], ...]``).
        note: why (for the worker's log).
    """

    action: str
    attempt: int = 0
    work: QueuedWork | None = None
    histories: list[list[str]] | None = None
    note: str = ""


def _work_row(work: QueuedWork) -> str:
    return dumps(
        {
            "execution_id": work.execution_id,
            "namespace": work.namespace,
            "flow_id": work.flow_id,
            "revision": work.revision,
            "inputs": work.inputs,
            "labels": work.labels,
            "trigger": work.trigger,
            "submitted": work.submitted,
        }
    )


def dispatch_next(
    store: Store,
    route: Callable[[QueuedWork], str],
    send: Callable[[QueuedWork, str], None],
) -> QueuedWork | None:
    """Hand the oldest queued work to the broker (``send``) and remember it as dispatched.

    ``send`` runs inside the transaction: when it raises, the work stays queued.
    """
    with store.transaction() as conn:
        row = conn.execute(f"SELECT {_COLUMNS} FROM queue ORDER BY seq LIMIT 1").fetchone()
        if row is None:
            return None
        work = QueuedWork(
            execution_id=row[0],
            namespace=row[1],
            flow_id=row[2],
            revision=row[3],
            inputs=json.loads(row[4]),
            labels=json.loads(row[5]),
            trigger=json.loads(row[6]) if row[6] else None,
            submitted=row[7],
        )
        queue = route(work)
        taken = conn.execute("DELETE FROM queue WHERE execution_id = ?", (work.execution_id,))
        if taken.rowcount != 1:  # the delete is the claim (see queue.take_next)
            return None
        conn.execute(
            "INSERT INTO dispatched (execution_id, queue, work, dispatched) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (execution_id) DO UPDATE SET queue = excluded.queue,"
            " work = excluded.work, dispatched = excluded.dispatched",
            (work.execution_id, queue, _work_row(work), ts(datetime.now(UTC))),
        )
        send(work, queue)
    return work


def unclaimed(store: Store) -> list[tuple[str, str]]:
    """``(execution_id, queue)`` of what was handed to the broker but no worker claimed yet.

    The database, not the broker, is the record of queued work: when the broker may have lost
    its messages (Redis restarted without persistence), these are sent again. A message that
    was not lost becomes a duplicate, which the claim answers (wait, then drop).
    """
    rows = store.read(
        "SELECT d.execution_id, d.queue FROM dispatched d JOIN executions e"
        " ON e.id = d.execution_id WHERE e.state = ? AND NOT EXISTS"
        " (SELECT 1 FROM worker_runs r WHERE r.execution_id = d.execution_id)"
        " ORDER BY d.dispatched",
        (State.QUEUED.value,),
    )
    return [(row[0], row[1]) for row in rows]


def queues_of(store: Store, execution_ids: list[str]) -> list[tuple[str, str]]:
    """``(execution_id, queue)`` of dispatched executions (to send them again)."""
    found: list[tuple[str, str]] = []
    for execution_id in execution_ids:
        rows = store.read("SELECT queue FROM dispatched WHERE execution_id = ?", (execution_id,))
        found += [(execution_id, rows[0][0])] if rows else []
    return found


def work_of(store: Store, execution_id: str) -> QueuedWork | None:
    """The work of a dispatched execution (``None`` when it was never dispatched)."""
    rows = store.read("SELECT work FROM dispatched WHERE execution_id = ?", (execution_id,))
    return QueuedWork(**json.loads(rows[0][0])) if rows else None


def withdraw_dispatched(store: Store, execution_id: str, state: State, reason: str) -> bool:
    """End a dispatched execution that no worker claimed yet (its message is dropped later)."""
    with store.transaction() as conn:
        if conn.execute(
            "SELECT 1 FROM worker_runs WHERE execution_id = ?", (execution_id,)
        ).fetchone():
            return False
        row = conn.execute(
            "SELECT e.histories FROM executions e JOIN dispatched d ON d.execution_id = e.id"
            " WHERE e.id = ? AND e.state = ?",
            (execution_id, State.QUEUED.value),
        ).fetchone()
        if row is None:
            return False
        stamp = ts(datetime.now(UTC))
        history = [*json.loads(row[0]), [state.value, stamp]]
        conn.execute(
            "UPDATE executions SET state = ?, end_date = ?, histories = ?, reason = ? WHERE id = ?",
            (state.value, stamp, dumps(history), reason, execution_id),
        )
        end_restarted(conn, execution_id, state, stamp)
    return True


def claim(store: Store, execution_id: str, worker: str, lapse: timedelta) -> Claim:
    """Decide whether ``worker`` runs a received execution now, and as which attempt."""
    now = datetime.now(UTC)
    with store.transaction() as conn:
        row = conn.execute(
            "SELECT e.state, e.histories, e.reason, d.work FROM executions e"
            " JOIN dispatched d ON d.execution_id = e.id WHERE e.id = ?",
            (execution_id,),
        ).fetchone()
        if row is None:
            return Claim("drop", note="no such dispatched execution on this server")
        state, histories, reason, work_json = State(row[0]), row[1], row[2], row[3]
        last = conn.execute(
            "SELECT attempt, worker, ended, lost FROM worker_runs WHERE execution_id = ?"
            " ORDER BY attempt DESC LIMIT 1",
            (execution_id,),
        ).fetchone()
        attempt = last[0] + 1 if last else 1
        note = ""
        if last is not None and last[2] is None and last[3] is None:  # someone runs it
            seen = _last_seen(conn, last[1])
            if seen is not None and now - seen <= lapse:
                return Claim("wait", note=f"worker {last[1]} runs attempt {last[0]}")
            _mark_lost(conn, execution_id, last[0], last[1], seen, now)
            state, histories, reason = _state_of(conn, execution_id)
        restartable = state == State.FAILED and (reason or "").startswith(LOST_REASON)
        if state.terminal and not restartable:
            return Claim("drop", note=f"execution already ended {state.value}")
        if last is not None:
            note = f"attempt {attempt} on worker {worker}: attempt {last[0]} ran on {last[1]}"
            if last[3] is not None:
                note += f", which was lost ({last[3]})"
        history = [*json.loads(histories), [State.CREATED.value, ts(now)]]
        owner = worker_owner(worker)
        conn.execute(
            "UPDATE executions SET state = ?, histories = ?, end_date = NULL, reason = NULL,"
            " pid = ?, pid_start = ?, host = ? WHERE id = ?",
            (State.CREATED.value, dumps(history), owner.pid, owner.start, owner.host, execution_id),
        )
        conn.execute(
            "INSERT INTO worker_runs (execution_id, attempt, worker, claimed) VALUES (?, ?, ?, ?)",
            (execution_id, attempt, worker, ts(now)),
        )
        if note:
            _log(conn, execution_id, Level.WARN, note, now)
    return Claim("run", attempt, QueuedWork(**json.loads(work_json)), history, note)


def holds(store: Store, execution_id: str, worker: str, attempt: int) -> bool:
    """Whether ``worker`` runs ``attempt`` of the execution (it may report on it)."""
    rows = store.read(
        "SELECT 1 FROM worker_runs WHERE execution_id = ? AND attempt = ? AND worker = ?"
        " AND ended IS NULL AND lost IS NULL",
        (execution_id, attempt, worker),
    )
    return bool(rows)


def descends_from(store: Store, execution_id: str, root_id: str, parent_id: str | None) -> bool:
    """Whether an execution is ``root_id`` or one of its subflows' (however deep).

    ``parent_id`` is the execution's own parent when it is not recorded yet (its first
    snapshot, coming from the worker that runs ``root_id``).
    """
    seen: set[str] = set()
    current: str | None = execution_id
    while current is not None and current not in seen and len(seen) < _MAX_DEPTH:
        if current == root_id:
            return True
        seen.add(current)
        rows = store.read("SELECT extra FROM executions WHERE id = ?", (current,))
        if rows:
            current = json.loads(rows[0][0] or "{}").get("parentId")
        else:
            current, parent_id = parent_id, None
    return False


def foreign_record(store: Store, execution_id: str, writes: Sequence[Write]) -> str | None:
    """Why the worker that holds ``execution_id`` may not write ``writes`` (``None``: it may).

    A worker reports on the execution it holds and on that execution's subflows, nothing else:
    each execution snapshot, task run and log line must belong to one of them, and a task run
    already recorded must be one of theirs (its snapshot is an upsert by id: it would overwrite
    another execution's task run).
    """
    ours = {execution_id}

    def held(candidate: str, parent: str | None = None) -> bool:
        # a parent named by the snapshot counts only for an execution not recorded yet: a
        # recorded one is judged by its recorded parent (else any id could be taken over)
        if candidate not in ours and (
            descends_from(store, candidate, execution_id, parent)
            or (
                parent in ours
                and not store.read("SELECT 1 FROM executions WHERE id = ?", (candidate,))
            )
        ):
            ours.add(candidate)
        return candidate in ours

    snapshots = [item for item in writes if isinstance(item, ExecutionRecord)]
    for snapshot in snapshots:  # in order: a subflow's first one comes before its task runs
        if not held(snapshot.id, json.loads(snapshot.extra or "{}").get("parentId")):
            return f"execution {snapshot.id} is not a subflow of execution {execution_id}"
    runs: set[str] = set()
    for item in writes:
        if isinstance(item, ExecutionRecord):
            continue
        if not held(item.execution_id):
            what = f"task run {item.id}" if isinstance(item, TaskRunRecord) else "a log line"
            return (
                f"{what} of execution {item.execution_id}: not execution {execution_id}"
                " nor one of its subflows"
            )
        run_id = item.id if isinstance(item, TaskRunRecord) else item.task_run_id
        if run_id:
            runs.add(run_id)
    for run_id, owner in _owners_of_task_runs(store, sorted(runs)):
        if not held(owner):
            return (
                f"task run {run_id} belongs to execution {owner}, not to execution {execution_id}"
            )
    return None


def _owners_of_task_runs(store: Store, run_ids: list[str]) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    for at in range(0, len(run_ids), 500):
        chunk = run_ids[at : at + 500]
        marks = ", ".join("?" for _ in chunk)
        rows = store.read(f"SELECT id, execution_id FROM task_runs WHERE id IN ({marks})", chunk)
        found += [(row[0], row[1]) for row in rows]
    return found


def reader_in(store: Store, claimed: str, execution_id: str) -> Reader | None:
    """``execution_id`` as a reader of stored files, when it is ``claimed`` (a dispatched
    execution) or one of its subflows recorded so far; ``None`` otherwise."""
    if execution_id == claimed:
        work = work_of(store, claimed)
        return Reader(work.namespace, work.flow_id, claimed) if work else None
    if not descends_from(store, execution_id, claimed, None):
        return None
    namespace, flow_id, parent_id = _named(store, execution_id)
    above = _named(store, parent_id) if parent_id else None
    parent = (above[0], above[1], parent_id) if above and parent_id else None
    return Reader(namespace, flow_id, execution_id, parent)


def may_use_namespace(reader: Reader, namespace: str) -> bool:
    """Kestra's rule for what a worker's run may change of a namespace (its KV store, its
    files) and read (its KV, its executions' logs): the run's own namespace, and those below
    it (``company.team`` uses ``company.team`` and ``company.team.data``, not ``company``)."""
    own = reader.namespace
    return namespace == own or namespace.startswith(own + ".")


def namespace_of(store: Store, execution_id: str) -> str | None:
    """The namespace of an execution (``None``: no such execution)."""
    rows = store.read("SELECT namespace FROM executions WHERE id = ?", (execution_id,))
    return str(rows[0][0]) if rows else None


def _named(store: Store, execution_id: str) -> tuple[str, str, str | None]:
    """An execution's namespace, flow id and parent execution id."""
    rows = store.read(
        "SELECT namespace, flow_id, extra FROM executions WHERE id = ?", (execution_id,)
    )
    return rows[0][0], rows[0][1], json.loads(rows[0][2] or "{}").get("parentId")


def end_run(store: Store, execution_id: str, attempt: int) -> None:
    """The attempt reported its end."""
    with store.transaction() as conn:
        conn.execute(
            "UPDATE worker_runs SET ended = ? WHERE execution_id = ? AND attempt = ?",
            (ts(datetime.now(UTC)), execution_id, attempt),
        )


def attempts(store: Store, execution_id: str) -> list[dict[str, Any]]:
    """Every attempt of a worker-run execution: number, worker, claimed, ended, lost."""
    rows = store.read(
        "SELECT attempt, worker, claimed, ended, lost FROM worker_runs"
        " WHERE execution_id = ? ORDER BY attempt",
        (execution_id,),
    )
    keys = ("attempt", "worker", "claimed", "ended", "lost")
    return [dict(zip(keys, row, strict=True)) for row in rows]


def heartbeat(store: Store, info: WorkerInfo) -> None:
    """Record that ``info.name`` is alive now, with what it runs."""
    with store.transaction() as conn:
        conn.execute(
            "INSERT INTO workers (name, host, engine_id, queues, labels, slots,"
            " running, started, last_seen) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (name) DO UPDATE SET host = excluded.host,"
            " engine_id = excluded.engine_id, queues = excluded.queues,"
            " labels = excluded.labels, slots = excluded.slots, running = excluded.running,"
            " started = excluded.started, last_seen = excluded.last_seen",
            (
                info.name,
                info.host,
                info.engine_id,
                dumps(info.queues),
                dumps(info.labels),
                info.slots,
                dumps(info.running),
                info.started,
                ts(datetime.now(UTC)),
            ),
        )


def list_workers(store: Store) -> list[WorkerRow]:
    """Every worker that ever heartbeated, by name."""
    rows = store.read(
        "SELECT name, host, engine_id, queues, labels, slots, running, started, last_seen"
        " FROM workers ORDER BY name"
    )
    return [
        WorkerRow(
            WorkerInfo(
                r[0], r[1], r[2], json.loads(r[3]), json.loads(r[4]), r[5], json.loads(r[6]), r[7]
            ),
            parse_ts(r[8]),
        )
        for r in rows
    ]


def mark_lapsed(store: Store, lapse: timedelta) -> list[str]:
    """Mark FAILED ("worker lost") the runs of workers silent for longer than ``lapse``.

    Returns:
        The ids of the executions marked.
    """
    now = datetime.now(UTC)
    open_runs = store.read(
        "SELECT r.execution_id, r.attempt, r.worker FROM worker_runs r"
        " JOIN executions e ON e.id = r.execution_id"
        " WHERE r.ended IS NULL AND r.lost IS NULL"
        f" AND e.state IN ({', '.join('?' for _ in UNFINISHED)})",
        UNFINISHED,
    )
    marked: list[str] = []
    for execution_id, attempt, worker in open_runs:
        with store.transaction() as conn:
            seen = _last_seen(conn, worker)
            if seen is not None and now - seen <= lapse:
                continue
            if _mark_lost(conn, execution_id, attempt, worker, seen, now):
                marked.append(execution_id)
    return marked


def _last_seen(conn: Connection, worker: str) -> datetime | None:
    row = conn.execute("SELECT last_seen FROM workers WHERE name = ?", (worker,)).fetchone()
    return parse_ts(row[0]) if row else None


def _state_of(conn: Connection, execution_id: str) -> tuple[State, str, str | None]:
    row = conn.execute(
        "SELECT state, histories, reason FROM executions WHERE id = ?", (execution_id,)
    ).fetchone()
    return State(row[0]), row[1], row[2]


def _mark_lost(
    conn: Connection,
    execution_id: str,
    attempt: int,
    worker: str,
    seen: datetime | None,
    now: datetime,
) -> bool:
    since = f"no heartbeat since {ts(seen)}" if seen else "never heartbeated"
    conn.execute(
        "UPDATE worker_runs SET lost = ? WHERE execution_id = ? AND attempt = ?",
        (since, execution_id, attempt),
    )
    reason = f"{LOST_REASON}: {worker} ({since})"
    note = (
        f"{reason}: attempt {attempt} marked FAILED; the broker redelivers the execution"
        " to another worker as a new attempt"
    )
    for child in _unfinished_subflows(conn, execution_id):  # they ran on the same worker
        Store._mark_died(conn, child, reason, f"{reason}: this subflow's execution marked FAILED")
    return Store._mark_died(conn, execution_id, reason, note)


def _unfinished_subflows(conn: Connection, root_id: str) -> list[str]:
    """The unfinished executions started by ``root_id``'s Subflow tasks, however deep."""
    rows = conn.execute(
        f"SELECT id, extra FROM executions WHERE state IN ({', '.join('?' for _ in UNFINISHED)})",
        UNFINISHED,
    ).fetchall()
    parents = {row[0]: json.loads(row[1] or "{}").get("parentId") for row in rows}
    found: list[str] = []
    frontier = {root_id}
    while frontier:
        frontier = {eid for eid, parent in parents.items() if parent in frontier} - set(found)
        found += sorted(frontier)
    return found


def _log(conn: Connection, execution_id: str, level: Level, message: str, when: datetime) -> None:
    chunk = Chunker()
    chunk.add(LogLine(when, execution_id, None, None, None, "executor", level, message))
    conn.executemany(INSERT_CHUNK, chunk.finish())
