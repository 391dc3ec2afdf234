"""The SQLite record store: round trips, queries, crash recovery and its failure modes."""

from __future__ import annotations

import socket
import sqlite3
import subprocess
import threading
import time
from pathlib import Path

import pytest

from executor.errors import NotFoundError, StoreError, StoreUnavailable, UsageError
from executor.host import Owner
from executor.model import Attempt, Level, LogBatch, LogLine, State, now
from executor.store.db import Store
from executor.store.records import DIED_REASON, UNFINISHED, execution_record, task_run_record
from tests.unit.store.sample import at, ended_execution, lines_for, record, running_execution


@pytest.fixture
def db(store_at: Path | str) -> Path | str:
    """A store on SQLite (a path in a directory that does not exist yet), then on PostgreSQL."""
    return store_at


@pytest.fixture
def sqlite_db(tmp_path: Path) -> Path:
    """A SQLite database path in a directory that does not exist yet (SQLite-only behaviour)."""
    return tmp_path / "home" / "executor.db"


def dead_owner() -> Owner:
    """An owner on this host whose process has exited."""
    proc = subprocess.Popen(["true"])
    proc.wait()
    return Owner(proc.pid, "12345", socket.gethostname())


def test_execution_round_trips_in_kestra_shape(db: Path) -> None:
    """What is read back gives exactly the JSON `run --json` printed: states, attempts, outputs."""
    e = ended_execution()
    record(db, e)
    with Store(db) as store:
        stored = store.get_execution(e.id)
    assert stored.execution.to_json() == e.to_json()
    assert stored.owner == Owner.current()
    fails = stored.execution.task_run("fails")
    assert [a.exit_code for a in fails.attempts] == [3, 137]
    assert fails.attempts[1].oom_killed
    assert fails.stderr_tail == ["boom", "out of memory"]


def test_store_uses_wal_and_creates_its_directory(sqlite_db: Path) -> None:
    """Opening creates the home directory and a WAL-mode database other processes can read."""
    Store(sqlite_db).close()
    conn = sqlite3.connect(sqlite_db)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")} >= {
        "executions",
        "task_runs",
        "attempts",
        "log_chunks",
    }


def test_log_lines_keep_task_attempt_stream_level_and_order(db: Path) -> None:
    """Lines come back in write order with their task, attempt, stream, level and timestamp."""
    e = ended_execution()
    record(db, e)
    with Store(db) as store:
        back = [r.line for r in store.logs(e.id)]
        only_fails = [r.line.message for r in store.logs(e.id, task_id="fails")]
        first_two = store.logs(e.id, limit=2)
        after = [r.line.message for r in store.logs(e.id, after=first_two[-1].row_id)]
    assert back == lines_for(e)
    assert only_fails == ["boom"]
    assert after == ["boom", "execution ended"]


def test_a_burst_of_lines_is_chunked_and_read_back_exactly(db: Path) -> None:
    """Many lines in one batch take few rows, yet come back line by line, in order, exactly."""
    e = running_execution()
    run = e.task_runs[0]
    burst = [
        LogLine(
            now(),
            e.id,
            "sleeper",
            run.id,
            1,
            "stdout" if n % 100 else "stderr",
            Level.INFO if n % 100 else Level.ERROR,
            f"line {n} ünï\ttab",
        )
        for n in range(2000)
    ]
    burst.append(LogLine(now(), e.id, None, None, None, "executor", Level.WARN, "two\nlines"))
    record(db, e, lines=burst)
    with Store(db) as store:
        back = store.logs(e.id)
        chunks = store._conn.execute("SELECT count(*) FROM log_chunks").fetchone()[0]
        per_line = store._conn.execute(
            "SELECT message, stream FROM log_lines ORDER BY chunk_id, line_in_chunk"
        ).fetchall()
        assert store.count_logs(e.id) == 2001
        following = store.logs(e.id, after=back[1000].row_id)
    assert [r.line for r in back] == burst
    assert chunks < 60
    assert per_line == [(line.message, line.stream) for line in burst]
    assert following[0].line == burst[[r.row_id for r in back].index(following[0].row_id)]
    assert [r.line for r in following] == burst[-len(following) :]


def test_id_prefix_resolves_only_when_unambiguous(db: Path) -> None:
    """A unique prefix finds the execution; an ambiguous one and an unknown one say so."""
    a, b = ended_execution("a"), ended_execution("b")
    a.id, b.id = "abcXYZ000000000000000a", "abdXYZ000000000000000b"
    record(db, a)
    record(db, b)
    with Store(db) as store:
        assert store.resolve_id("abc") == a.id
        assert store.resolve_id(b.id) == b.id
        with pytest.raises(UsageError, match="ambiguous"):
            store.resolve_id("ab")
        with pytest.raises(NotFoundError, match="no execution with id 'zzz'") as err:
            store.resolve_id("zzz")
        assert err.value.exit_code == 4
        with pytest.raises(UsageError):
            store.resolve_id("")


def test_underscore_in_a_prefix_is_not_a_wildcard(db: Path) -> None:
    """Ids contain '_' and '-': a prefix matches them literally, not as a LIKE pattern."""
    a, b = ended_execution("a"), ended_execution("b")
    a.id, b.id = "a_c000000000000000000a", "abc000000000000000000b"
    record(db, a)
    record(db, b)
    with Store(db) as store:
        assert store.resolve_id("a_") == a.id


def test_listing_is_newest_first_and_filters(db: Path) -> None:
    """Executions list newest first and filter by flow, namespace (and below), state and age."""
    old = ended_execution("etl", "company.team", start=0)
    new = ended_execution("etl", "company.team.sub", start=100)
    other = ended_execution("report", "other", start=50)
    running = running_execution()
    for e in (old, new, other, running):
        record(db, e, lines=[])
    with Store(db) as store:
        assert [s.id for s in store.list_executions()][:3] == [running.id, new.id, other.id]
        assert {s.id for s in store.list_executions(flow="etl")} == {old.id, new.id}
        assert {s.id for s in store.list_executions(namespace="company.team")} == {old.id, new.id}
        assert [s.id for s in store.list_executions(namespace="company.team.sub")] == [new.id]
        assert [s.id for s in store.list_executions(namespace="company.tea")] == []
        assert [s.id for s in store.list_executions(states=[State.RUNNING])] == [running.id]
        assert [s.id for s in store.list_executions(since=at(40), flow="etl")] == [new.id]
        assert len(store.list_executions(limit=2)) == 2
        listed = store.list_executions(flow="report")[0]
        assert listed.state == State.FAILED and listed.duration == pytest.approx(1.6)


def test_dead_executor_marks_execution_failed_and_keeps_logs(db: Path) -> None:
    """An unfinished execution whose pid is gone ends FAILED 'executor died'; its lines stay."""
    e = running_execution()
    line = LogLine(now(), e.id, "sleeper", e.task_runs[0].id, 1, "stdout", Level.INFO, "tick")
    record(db, e, owner=dead_owner(), lines=[line])
    with Store.open(db) as store:
        stored = store.get_execution(e.id).execution
        messages = [r.line.message for r in store.logs(e.id)]
    assert stored.state.current == State.FAILED
    assert stored.reason == DIED_REASON
    assert stored.state.end is not None
    run = stored.task_runs[0]
    assert run.state.current == State.FAILED and run.reason == DIED_REASON
    assert run.attempts[0].state.current == State.FAILED
    assert messages[0] == "tick"
    assert DIED_REASON in messages[-1]


def test_live_reused_and_foreign_owners_are_judged_correctly(db: Path) -> None:
    """A live owner is kept, a reused pid (other start time) is gone, another host is not judged."""
    alive, reused, foreign = running_execution("a"), running_execution("b"), running_execution("c")
    me = Owner.current()
    record(db, alive, owner=me, lines=[])
    record(db, reused, owner=Owner(me.pid, "1", me.host), lines=[])
    record(db, foreign, owner=Owner(dead_owner().pid, "1", "another-host"), lines=[])
    with Store(db) as store:
        assert store.recover_dead() == [reused.id]
        assert store.recover_dead() == []
        assert store.execution_state(alive.id) == State.RUNNING
        assert store.execution_state(foreign.id) == State.RUNNING


def test_corrupt_database_is_one_clear_store_error(sqlite_db: Path) -> None:
    """A file that is not a database gives StoreError (exit 4) naming the file and what to do."""
    sqlite_db.parent.mkdir(parents=True)
    sqlite_db.write_bytes(b"this is not sqlite at all, just some text " * 200)
    with pytest.raises(StoreError, match="corrupt") as err:
        Store.open(sqlite_db)
    assert err.value.exit_code == 4
    assert str(sqlite_db) in str(err.value) and "move it aside" in str(err.value)


def test_home_that_cannot_be_created_is_a_store_error(tmp_path: Path) -> None:
    """A state directory that cannot be made (a file is in the way) is StoreError, not OSError."""
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(StoreError, match="cannot create the state directory"):
        Store(blocker / "home" / "executor.db")


def test_read_only_database_is_a_store_error(sqlite_db: Path) -> None:
    """A database opened read-only refuses writes with a StoreError that says read-only."""
    record(sqlite_db, ended_execution())
    store = Store(sqlite_db)
    store._conn.execute("PRAGMA query_only = ON")
    with pytest.raises(StoreError, match="is read-only") as err:
        store.write([execution_record(running_execution(), Owner.current())])
    assert not isinstance(err.value, StoreUnavailable)  # trying again would not help
    store.close()


def test_locked_database_is_waited_for_then_reported(sqlite_db: Path) -> None:
    """A lock held briefly is waited for; one held past busy_timeout gives StoreError 'locked'."""
    Store(sqlite_db).close()
    holder = sqlite3.connect(sqlite_db, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN EXCLUSIVE")
    e = ended_execution()
    store = Store(sqlite_db, busy_timeout=0.3)
    started = time.monotonic()
    with pytest.raises(StoreError, match="locked by another process") as err:
        store.write([execution_record(e, Owner.current())])
    assert time.monotonic() - started >= 0.25
    assert err.value.exit_code == 4
    assert isinstance(err.value, StoreUnavailable)  # a recorder tries again
    store.close()

    patient = Store(sqlite_db, busy_timeout=10)
    threading.Timer(0.5, lambda: holder.execute("COMMIT")).start()
    patient.write([execution_record(e, Owner.current())])
    assert patient.execution_state(e.id) == State.FAILED
    patient.close()
    holder.close()


def test_newer_schema_is_refused(sqlite_db: Path) -> None:
    """A database from a newer executor is not silently misread."""
    Store(sqlite_db).close()
    conn = sqlite3.connect(sqlite_db)
    conn.execute("PRAGMA user_version = 99")
    conn.commit()
    conn.close()
    with pytest.raises(StoreError, match="newer executor"):
        Store(sqlite_db)


def test_concurrent_writers_lose_nothing(db: Path) -> None:
    """Eight connections writing lines at once (as eight executors would) lose no line."""
    Store(db).close()
    executions = [running_execution(f"f{i}") for i in range(8)]
    errors: list[BaseException] = []

    def write(index: int) -> None:
        e = executions[index]
        try:
            with Store(db) as store:
                store.write([execution_record(e, Owner.current())])
                for batch in range(20):
                    store.write(
                        [
                            LogLine(
                                now(), e.id, None, None, None, "stdout", Level.INFO, f"{batch}-{n}"
                            )
                            for n in range(50)
                        ]
                    )
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    with Store(db) as store:
        assert [store.count_logs(e.id) for e in executions] == [1000] * 8


def test_task_run_updates_replace_state_and_add_attempts(db: Path) -> None:
    """Writing a task run again updates its state and adds its new attempts, no duplicates."""
    e = running_execution()
    run = e.task_runs[0]
    record(db, e, lines=[])
    run.attempts[0].state.to(State.FAILED)
    run.attempts[0].exit_code = 1
    run.state.to(State.RETRYING)
    second = Attempt(2)
    second.state.to(State.RUNNING)
    second.state.to(State.SUCCESS)
    second.exit_code = 0
    run.attempts.append(second)
    run.state.to(State.SUCCESS)
    with Store(db) as store:
        store.write([task_run_record(e.id, 0, run)])
        back = store.get_execution(e.id).execution.task_runs
    assert len(back) == 1
    assert [(a.number, a.state.current, a.exit_code) for a in back[0].attempts] == [
        (1, State.FAILED, 1),
        (2, State.SUCCESS, 0),
    ]
    assert [s for s, _ in back[0].state.history][-3:] == [
        State.RUNNING,
        State.RETRYING,
        State.SUCCESS,
    ]


def test_unfinished_states_match_the_sql() -> None:
    """The states spelt out in the recovery SQL are exactly the non-terminal ones (a restarted
    execution or task run whose runner died is recovered like a running one)."""
    assert set(UNFINISHED) == {"CREATED", "RUNNING", "RETRYING", "PAUSED", "RESTARTED"}


def test_unknown_execution_is_not_found(db: Path) -> None:
    """Asking for an execution that is not there raises NotFoundError (exit 4)."""
    with Store(db) as store, pytest.raises(NotFoundError):
        store.get_execution("missing")


def test_batches_are_stored_as_chunks_line_for_line(db: Path) -> None:
    """Lines that arrived together (one LogBatch) come back as the same lines, in order, with
    a batch larger than a chunk split over rows and consecutive batches of one key merged."""
    e = running_execution()
    run = e.task_runs[0]
    stamp = now()

    def batch(stream: str, messages: list[str]) -> LogBatch:
        level = Level.ERROR if stream == "stderr" else Level.INFO
        return LogBatch(stamp, e.id, "sleeper", run.id, 1, stream, level, messages)

    batches = [
        batch("stdout", [f"out {n}" for n in range(1200)]),
        batch("stdout", ["more out"]),
        batch("stderr", ["err ünï", "err 2"]),
        batch("stdout", [f"tail {n}" for n in range(3)]),
    ]
    record(db, e, lines=batches)
    expected = [line for b in batches for line in b.lines()]
    with Store(db) as store:
        back = store.logs(e.id)
        sizes = [row[0] for row in store._conn.execute("SELECT lines FROM log_chunks ORDER BY id")]
    assert [r.line for r in back] == expected
    assert sizes == [500, 500, 201, 2, 3]
