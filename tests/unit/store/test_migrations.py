"""The schema under Alembic: homes from before it, newer databases, and the PostgreSQL errors."""

from __future__ import annotations

import multiprocessing
import sqlite3
from pathlib import Path

import psycopg
import pytest
import sqlalchemy as sa

from executor.errors import StoreError, StoreUnavailable
from executor.host import Owner
from executor.model import Execution, State, StateHistory, now
from executor.store.db import Store
from executor.store.dialect import SqliteConnection
from executor.store.flows import save_flow
from executor.store.migrations import HEAD, run_alembic, script_head
from executor.store.queue import QueuedWork, enqueue, take_next, waiting
from executor.store.triggers import TriggerState, claim_tick, save_state
from tests.conftest import DATA
from tests.unit.store.sample import ended_execution, lines_for, record

V5_SCHEMA = (DATA / "store" / "schema-v5.sql").read_text()


def _v5_home(db: Path) -> None:
    """A home as today's executor made it before Alembic: schema 5, one execution in it."""
    db.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(db)
    conn.executescript(V5_SCHEMA)
    conn.execute("PRAGMA user_version = 5")
    conn.execute(
        "INSERT INTO executions (id, namespace, flow_id, state, start_date, inputs, histories,"
        " images, labels, pid, pid_start, host) VALUES ('old1', 'ns', 'f', 'SUCCESS',"
        " '2026-01-01T00:00:00.000000+00:00', '{}', '[]', '{}', '{}', 1, '0', 'elsewhere')"
    )
    conn.execute(
        "INSERT INTO log_chunks (execution_id, stream, level, lines, first_ts_us, ts_us,"
        " messages) VALUES ('old1', 'stdout', 'INFO', 2, 1, '[1,2]', '[\"one\",\"two\"]')"
    )
    conn.commit()
    conn.close()


def test_the_head_constant_is_alembics_head() -> None:
    """HEAD (what opening a store compares with) is the newest revision in versions/."""
    assert script_head() == HEAD


def test_a_home_made_before_alembic_is_stamped_and_keeps_its_records(tmp_path: Path) -> None:
    """A v5 SQLite file from before Alembic opens as is: stamped at the baseline, data intact."""
    db = tmp_path / "home" / "executor.db"
    _v5_home(db)
    with Store(db) as store:
        assert store.get_execution("old1").execution.state.current == State.SUCCESS
        assert [r.line.message for r in store.logs("old1")] == ["one", "two"]
        record(db, ended_execution())  # and it takes new records
        assert len(store.list_executions()) == 2
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT version_num FROM alembic_version").fetchall() == [(HEAD,)]
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 5
    assert conn.execute(
        "SELECT message FROM log_lines WHERE execution_id = 'old1' ORDER BY ts_us"
    ).fetchall() == [
        ("one",),
        ("two",),
    ]
    conn.close()


def test_a_fresh_sqlite_schema_matches_the_one_before_alembic(tmp_path: Path) -> None:
    """Tables, columns, keys and indexes of a new home equal those of a v5 home once opened, and
    those that Alembic's revisions make (a new home gets the later revisions without Alembic:
    SQLITE_WITHOUT_ALEMBIC)."""

    def shape(db: Path) -> dict[str, object]:
        conn = sqlite3.connect(db)
        tables = [
            r[0]
            for r in conn.execute(
                "SELECT name FROM sqlite_master WHERE type IN ('table', 'view')"
                " AND name NOT IN ('alembic_version', 'sqlite_sequence')"
                " AND name NOT LIKE 'sqlite_stat%' ORDER BY name"
            )
        ]
        found: dict[str, object] = {}
        for table in tables:
            columns = conn.execute(f"PRAGMA table_info({table})").fetchall()
            # (name, type, not null, default, pk); a key column is NOT NULL now, where SQLite
            # let the old TEXT PRIMARY KEYs (by a legacy quirk) be NULL: nothing wrote one
            found[table] = [(c[1], c[2], c[3] or c[5] > 0, c[4], c[5]) for c in columns]
            found[table + " indexes"] = sorted(
                tuple(r[2] for r in conn.execute(f"PRAGMA index_info({i[1]})"))
                for i in conn.execute(f"PRAGMA index_list({table})")
            )
        conn.close()
        return found

    old, new = tmp_path / "old" / "executor.db", tmp_path / "new" / "executor.db"
    by_alembic = tmp_path / "alembic.db"
    _v5_home(old)
    Store(old).close()  # the v5 home, migrated
    Store(new).close()
    raw = sqlite3.connect(by_alembic, isolation_level=None)
    conn = SqliteConnection(raw)
    conn.begin(exclusive=True)
    run_alembic(conn, "upgrade", "head")  # what the revisions themselves make
    conn.commit()
    raw.close()
    assert shape(new) == shape(old) == shape(by_alembic)


def test_a_database_of_a_newer_executor_is_refused(store_at: Path | str) -> None:
    """An Alembic revision this executor does not know: one StoreError saying to upgrade."""
    Store(store_at).close()
    with Store(store_at) as store, store.transaction() as conn:
        conn.execute("UPDATE alembic_version SET version_num = '9999'")
    with pytest.raises(StoreError, match=r"newer executor .* upgrade executor") as err:
        Store(store_at)
    assert err.value.exit_code == 4


def test_an_unreachable_server_is_named_without_its_password() -> None:
    """Nothing listens at the URL's port: the message names host:port and hides the password."""
    url = "postgresql://someone:s3cret-pw@127.0.0.1:9/records"
    with pytest.raises(StoreError) as err:
        Store(url, busy_timeout=2)
    message = str(err.value)
    assert "cannot reach PostgreSQL at 127.0.0.1:9" in message
    assert isinstance(err.value, StoreUnavailable)  # worth trying again: it may come up
    assert "is the server running" in message
    assert "s3cret-pw" not in message


def test_a_missing_database_says_to_create_it(postgres_admin_url: str) -> None:
    """A server that answers but has no such database: the message says how to create it."""
    url = postgres_admin_url.rsplit("/", 1)[0] + "/no_such_records"
    with pytest.raises(StoreError, match=r"'no_such_records' does not exist .*createdb"):
        Store(url)


def test_a_wrong_password_is_reported_as_such(postgres_url: str) -> None:
    """A password the server refuses: the message says so, names the user, and never shows it."""
    given = sa.make_url(postgres_url)
    assert given.password, "the test server must require passwords (scripts/ensure-postgres.sh)"
    wrong = given.set(password="wrong-one").render_as_string(hide_password=False)
    with pytest.raises(StoreError) as err:
        Store(wrong)
    assert "refused the password of user 'postgres'" in str(err.value)
    assert "wrong-one" not in str(err.value) and given.password not in str(err.value)


def _take_all(url: str, name: str, out: multiprocessing.Queue[tuple[str, str]]) -> None:
    with Store(url) as store:
        while (work := take_next(store, Owner.current())) is not None:
            out.put((name, work.execution_id))
    out.put((name, ""))


def test_two_processes_never_take_the_same_queued_execution(postgres_url: str) -> None:
    """Two processes draining one PostgreSQL queue at once: every item taken exactly once."""
    ids = []
    with Store(postgres_url) as store:
        for n in range(60):
            e = Execution("ns.q", "f", state=StateHistory(State.QUEUED, [(State.QUEUED, now())]))
            work = QueuedWork(e.id, "ns.q", "f", 1, {"n": str(n)}, {}, None, "2026-01-01")
            enqueue(store, e, work, Owner.current())
            ids.append(e.id)
    context = multiprocessing.get_context("spawn")
    out: multiprocessing.Queue[tuple[str, str]] = context.Queue()
    procs = [context.Process(target=_take_all, args=(postgres_url, n, out)) for n in "ab"]
    for p in procs:
        p.start()
    taken: dict[str, list[str]] = {"a": [], "b": []}
    done = 0
    while done < 2:
        name, execution_id = out.get(timeout=120)
        if execution_id:
            taken[name].append(execution_id)
        else:
            done += 1
    for p in procs:
        p.join(30)
    assert not set(taken["a"]) & set(taken["b"])
    assert sorted(taken["a"] + taken["b"]) == sorted(ids)
    with Store(postgres_url) as store:
        assert waiting(store) == 0
        assert {store.execution_state(i) for i in ids} == {State.CREATED}


def test_a_tick_is_claimed_once(store_at: Path | str) -> None:
    """Compare-and-set of a schedule's tick: the second claim of the same tick loses."""
    stamp = "2026-01-01T00:00:00.000000+00:00"
    state = TriggerState(
        "ns", "f", "t", "Schedule", "* * * * *", "sig", None, stamp, None, False, None, stamp
    )
    with Store(store_at) as store:
        save_state(store, state)
        first = claim_tick(store, state, "2026-01-01T00:01:00+00:00", "2026-01-01T00:02:00+00:00")
        again = claim_tick(store, state, "2026-01-01T00:01:00+00:00", "2026-01-01T00:02:00+00:00")
        assert first is not None and again is None
        assert claim_tick(store, first, "b", "c") is not None


def test_log_lines_view_reads_every_line(store_at: Path | str) -> None:
    """The log_lines convenience view has one row per stored line, on either database."""
    e = ended_execution()
    record(store_at, e)
    with Store(store_at) as store:
        rows = store.read(
            "SELECT message FROM log_lines WHERE execution_id = ? ORDER BY chunk_id, line_in_chunk",
            (e.id,),
        )
    assert [r[0] for r in rows] == [line.message for line in lines_for(e)]


def test_a_write_lock_held_too_long_is_reported_as_locked(store_at: Path | str) -> None:
    """Another process holding the write lock past busy_timeout: StoreError 'locked', on both
    databases (BEGIN IMMEDIATE on SQLite, the advisory lock on PostgreSQL)."""
    Store(store_at).close()
    holder = Store(store_at)
    waiter = Store(store_at, busy_timeout=0.3)
    try:
        with holder.transaction(), pytest.raises(StoreError, match="locked by another process"):
            save_flow(waiter, "ns", "f", "source")
        assert save_flow(waiter, "ns", "f", "source").revision == 1  # free again
    finally:
        waiter.close()
        holder.close()


def test_a_dropped_connection_is_one_error_then_reconnects(postgres_url: str) -> None:
    """The server ends the store's connection (a restart): that statement is one StoreError
    saying the server cannot be reached, and the next one runs on a new connection."""
    with Store(postgres_url) as store:
        with psycopg.connect(postgres_url, autocommit=True) as admin:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        with pytest.raises(StoreUnavailable, match="cannot reach PostgreSQL"):
            store.read("SELECT 1")
        assert store.read("SELECT 1") == [(1,)]
        assert save_flow(store, "ns", "f", "after").revision == 1


def test_the_sqlite_fast_path_stops_where_the_chain_differs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A revision listed for the path without Alembic that does not follow the one before is
    left to Alembic: the home still ends at HEAD with every revision's schema."""
    from executor.store import migrations

    monkeypatch.setattr(migrations, "SQLITE_WITHOUT_ALEMBIC", (("0006", "other", ()),))
    db = tmp_path / "executor.db"
    Store(db).close()
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("SELECT version_num FROM alembic_version").fetchall() == [(HEAD,)]
        indexes = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='index'")}
    finally:
        conn.close()
    assert {"executions_by_flow", "executions_by_flow_state"} <= indexes
