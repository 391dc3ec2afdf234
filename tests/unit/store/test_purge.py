"""Purging history on a real store (SQLite, then PostgreSQL): what a selection takes goes with its
task runs, attempts, log lines and files, and nothing else does."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest

from executor.errors import UsageError
from executor.host import Owner
from executor.model import Execution, Level, LogLine, State
from executor.store.db import Store
from executor.store.files.artifacts import LocalArtifactStore
from executor.store.files.namespaces import LocalNamespaceStore
from executor.store.kv_sql import KvTable
from executor.store.purge import (
    ExecutionSelection,
    LogSelection,
    PurgeParts,
    terminal_states,
)
from tests.unit.store.sample import (
    T0,
    at,
    ended_execution,
    lines_for,
    record,
    running_execution,
)

DAY = 86_400.0


def _ended(namespace: str, flow_id: str, day: float, state: State = State.FAILED) -> Execution:
    """An execution of ``namespace.flow_id`` that started and ended ``day`` days after T0."""
    e = ended_execution(flow_id, namespace, start=day * DAY)
    if state != State.FAILED:
        e.state.current = state
        e.state.history[-1] = (state, e.state.history[-1][1])
    return e


def _unfinished(state: State, namespace: str, day: float) -> Execution:
    """An execution that started ``day`` days after T0 and has not ended (no end date)."""
    e = running_execution()
    e.namespace = namespace
    e.state.history = [(State.CREATED, at(day * DAY)), (state, at(day * DAY + 1))]
    e.state.current = state
    return e


class History:
    """A store and an artifact store holding executions of several namespaces, states and dates,
    each with log lines and one stored file."""

    def __init__(self, store_at: Path | str, root: Path) -> None:
        self.db = store_at
        self.files = LocalArtifactStore(root / "artifacts")
        self.executions: dict[str, Execution] = {}

    def add(self, name: str, e: Execution) -> Execution:
        start = e.state.start
        if e.state.current.terminal:  # the sample's lines, moved to when this one ran
            lines = [
                replace(line, timestamp=line.timestamp + (start - T0)) for line in lines_for(e)
            ]
        else:  # an ERROR line, as old as the ended ones' and in every window they are in
            second = start + timedelta(seconds=1)
            lines = [LogLine(second, e.id, None, None, None, "executor", Level.ERROR, "going")]
        record(self.db, e, Owner(999_999, "0", "gone-host"), lines)  # nobody recovers it
        prefix = self.files.prefix(e.namespace, e.flow_id, e.id, "t", "run")
        self.files.write(prefix, "out.txt", [name.encode()])
        self.executions[name] = e
        return e

    def left(self) -> set[str]:
        """The names of the executions whose row is still there."""
        with Store(self.db) as store:
            ids = {s.id for s in store.list_executions()}
        return {name for name, e in self.executions.items() if e.id in ids}

    def with_files(self) -> set[str]:
        return {
            name
            for name, e in self.executions.items()
            if self.files.execution_files(e.namespace, e.flow_id, e.id)
        }

    def lines(self, name: str) -> int:
        with Store(self.db) as store:
            return store.count_logs(self.executions[name].id)

    def rows(self, table: str, name: str) -> int:
        e = self.executions[name]
        with Store(self.db) as store:
            if table == "attempts":
                sql = (
                    "SELECT count(*) FROM attempts WHERE task_run_id IN"
                    " (SELECT id FROM task_runs WHERE execution_id = ?)"
                )
            else:
                sql = f"SELECT count(*) FROM {table} WHERE execution_id = ?"
            return int(store.read(sql, [e.id])[0][0])


@pytest.fixture
def history(store_at: Path | str, tmp_path: Path) -> History:
    h = History(store_at, tmp_path)
    h.add("old", _ended("company.sales", "orders", 0))
    h.add("old_success", _ended("company.sales", "report", 1, State.SUCCESS))
    h.add("old_child_ns", _ended("company.sales.eu", "orders", 2, State.KILLED))
    h.add("old_sibling_ns", _ended("company.salesforce", "orders", 2))
    h.add("old_other_ns", _ended("other", "orders", 3))
    h.add("recent", _ended("company.sales", "orders", 40))
    h.add("old_running", _unfinished(State.RUNNING, "company.sales", 1))
    h.add("old_paused", _unfinished(State.PAUSED, "company.sales", 1))
    h.add("old_created", _unfinished(State.CREATED, "company.sales", 1))
    return h


def _before(days: float) -> ExecutionSelection:
    return ExecutionSelection(ended_before=T0 + timedelta(days=days), namespace="company.sales")


def test_a_purge_removes_rows_logs_and_files_of_what_it_selects_and_nothing_else(
    history: History, tmp_path: Path
) -> None:
    """Ended executions of company.sales (and below) ended before day 10 go, with every row,
    line and file of theirs; the recent one, the unfinished ones, another namespace (also one
    that only starts with the same letters), namespace files and KV stay."""
    kv = KvTable(history.db)
    kv.put("company.sales", "cursor", "STRING", "42")
    kv.close()
    source = tmp_path / "src"
    source.mkdir()
    (source / "query.sql").write_text("select 1")
    namespaces = LocalNamespaceStore(tmp_path / "namespaces")
    namespaces.push("company.sales", source)
    gone = {"old", "old_success", "old_child_ns"}
    lines = sum(history.lines(name) for name in gone)
    kept_lines = {name: history.lines(name) for name in history.executions if name not in gone}

    with Store(history.db) as store:
        counts = store.purge_executions(_before(10), PurgeParts(), history.files)

    assert (counts.executions, counts.logs, counts.files) == (3, lines, 3)
    assert counts.metrics == 3  # one metric in each sample execution's task runs
    assert history.left() == set(history.executions) - gone
    assert history.with_files() == set(history.executions) - gone
    for name in gone:
        for table in ("task_runs", "attempts", "log_chunks"):
            assert history.rows(table, name) == 0, (table, name)
    for name, count in kept_lines.items():
        assert history.lines(name) == count, name
        assert history.rows("task_runs", name) > 0, name
    kv = KvTable(history.db)
    assert kv.get("company.sales", "cursor").value == "42"
    kv.close()
    assert namespaces.read("company.sales", "query.sql") == b"select 1"


def test_the_filters_take_what_kestra_takes(history: History) -> None:
    """flowId with its namespace is that namespace only; states and startDate narrow it."""
    with Store(history.db) as store:
        flow = ExecutionSelection(
            T0 + timedelta(days=10), namespace="company.sales", flow_id="orders"
        )
        assert store.purge_executions(flow, PurgeParts(), None).executions == 1
        assert "old" not in history.left() and "old_child_ns" in history.left()
        by_state = ExecutionSelection(
            T0 + timedelta(days=10), states=terminal_states(["killed"], "states")
        )
        assert store.purge_executions(by_state, PurgeParts(), None).executions == 1
        assert "old_child_ns" not in history.left()
        window = ExecutionSelection(T0 + timedelta(days=2.5), started_after=T0 + timedelta(days=2))
        assert store.purge_executions(window, PurgeParts(), None).executions == 1
        assert history.left() == {
            "old_success",
            "old_other_ns",
            "recent",
            "old_running",
            "old_paused",
            "old_created",
        }
    # without files given, the files stay
    assert "old" in history.with_files()


def test_a_dry_run_counts_in_batches_and_removes_nothing(history: History) -> None:
    """Paged two at a time, a dry run counts all three and every row and file stays."""
    before = (history.left(), history.with_files())
    with Store(history.db) as store:
        counts = store.purge_executions(
            _before(10), PurgeParts(), history.files, dry_run=True, batch=2
        )
        assert (counts.executions, counts.files) == (3, 3)
        assert counts.logs == sum(history.lines(n) for n in ("old", "old_success", "old_child_ns"))
        assert (history.left(), history.with_files()) == before
        # and for real, two at a time: every batch its own transaction, all three go
        assert store.purge_executions(_before(10), PurgeParts(), history.files, batch=2) == counts
    assert history.left() == before[0] - {"old", "old_success", "old_child_ns"}


def test_parts_keep_what_they_are_told_to_keep(history: History) -> None:
    """purgeExecution false: rows stay, lines and files go; metrics alone empties them."""
    parts = PurgeParts(executions=False, metrics=False)
    with Store(history.db) as store:
        counts = store.purge_executions(_before(0.5), parts, history.files)
        assert (counts.executions, counts.files, counts.metrics) == (0, 1, 0)
        assert counts.logs > 0
        assert "old" in history.left() and "old" not in history.with_files()
        assert history.lines("old") == 0
        only_metrics = PurgeParts(executions=False, logs=False, files=False)
        assert store.purge_executions(_before(0.5), only_metrics, history.files).metrics == 1
        e = store.get_execution(history.executions["old"].id).execution
        assert [run.metrics for run in e.task_runs] == [[], [], []]
        assert history.rows("task_runs", "old") == 3


def test_purge_logs_takes_lines_by_date_level_and_namespace(history: History) -> None:
    """PurgeLogs: only the lines in the window, of the levels asked, of ended executions of the
    namespace; lines left by a purge that kept them (their execution gone) go with no namespace."""
    old = history.executions["old"]
    running = history.executions["old_running"]
    with Store(history.db) as store:
        errors = LogSelection(
            before=T0 + timedelta(days=10), namespace="company.sales", levels=(Level.ERROR,)
        )
        taken = store.purge_logs(errors, batch=2)
        assert taken == 2 * 3  # two ERROR lines in each of the three ended executions of sales
        assert [line.line.level for line in store.logs(old.id)] == [Level.INFO, Level.INFO]
        assert store.count_logs(running.id) == 1  # not ended: its ERROR line is kept
        # a window of the first fifth of a second of "old": its first line only
        window = LogSelection(before=at(0.2), after=at(0.0))
        assert store.purge_logs(window) == 1
        assert [line.line.message for line in store.logs(old.id)] == ["hello from first"]
        # rows purged, lines kept: they can still be purged, by a selection without namespace
        store.purge_executions(_before(0.5), PurgeParts(logs=False), None)
        assert store.count_logs(old.id) == 1
        assert store.purge_logs(LogSelection(before=at(1), namespace="company.sales")) == 0
        assert store.purge_logs(LogSelection(before=at(1)), dry_run=True) == 1
        assert store.count_logs(old.id) == 1
        assert store.purge_logs(LogSelection(before=at(1))) == 1
        assert store.count_logs(old.id) == 0
        assert store.count_logs(running.id) == 1


def test_selections_refuse_what_would_purge_too_much() -> None:
    """A flow id without its namespace, an unfinished state, an unknown one: one clear error."""
    with pytest.raises(UsageError, match="needs its namespace"):
        ExecutionSelection(T0, flow_id="orders")
    with pytest.raises(UsageError, match="RUNNING executions have not ended"):
        terminal_states(["SUCCESS", "RUNNING"], "'states'")
    with pytest.raises(UsageError, match="'NOPE' is not a state"):
        terminal_states(["NOPE"], "'states'")
    assert terminal_states(["canceled"], "s") == (State.CANCELLED,)
    with pytest.raises(UsageError, match="needs its namespace"):
        LogSelection(T0, flow_id="orders")


def test_an_execution_s_files_are_those_under_its_prefix(tmp_path: Path) -> None:
    """Purging e1's files leaves e10's (a prefix of the id is another execution)."""
    files = LocalArtifactStore(tmp_path)
    files.write(files.prefix("a", "f", "e1", "t", "r"), "x", [b"1"])
    files.write(files.prefix("a", "f", "e10", "t", "r"), "x", [b"2"])
    assert files.purge("a", "f", "e1") == ["kestra:///a/f/executions/e1/tasks/t/r/x"]
    assert files.execution_files("a", "f", "e10") == ["kestra:///a/f/executions/e10/tasks/t/r/x"]


def test_a_worker_s_stores_refuse_to_purge_the_server_s_records(tmp_path: Path) -> None:
    """A run held by a worker reaches the server's records, which it may not purge: one clear
    message saying where purges run, before anything is asked of the server."""
    from executor.services import services
    from executor.settings import Settings
    from executor.store.api import Held

    held = Held(server="http://127.0.0.1:9", token="t", worker="w", execution_id="e", attempt=1)
    remote = services(Settings(home=tmp_path), held)
    with pytest.raises(UsageError, match="a worker cannot purge the server's executions"):
        remote.records.purge(ExecutionSelection(T0), PurgeParts(), remote.artifacts)
    with pytest.raises(UsageError, match="EXECUTOR_SERVER_RETENTION"):
        remote.records.purge_logs(LogSelection(T0))
