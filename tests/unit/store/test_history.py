"""History that stays fast: the searches' filters, resolve_id by an id range, each flow's last
execution in one query, the capped count and the plans SQLite makes of them (a real store, on
SQLite and PostgreSQL)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from executor.errors import NotFoundError, UsageError
from executor.host import Owner
from executor.model import Execution, State, StateHistory
from executor.server.maintenance import Maintenance
from executor.store import search
from executor.store.db import Store
from executor.store.flows import save_flow
from executor.store.local import LocalRecords
from executor.store.records import execution_record
from executor.store.search import ExecutionFilter, SearchPage, search_executions

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def _add(
    store: Store,
    namespace: str,
    flow_id: str,
    minutes: int,
    state: State = State.SUCCESS,
    execution_id: str | None = None,
) -> str:
    """An ended execution that started ``minutes`` after T0."""
    start = T0 + timedelta(minutes=minutes)
    execution = Execution(
        namespace,
        flow_id,
        state=StateHistory(state, [(State.CREATED, start), (state, start + timedelta(seconds=5))]),
    )
    if execution_id is not None:
        execution.id = execution_id
    store.write([execution_record(execution, Owner.current())])
    return execution.id


def _search(store: Store, page: int = 1, size: int = 50, **wanted: Any) -> SearchPage:
    return search_executions(store, ExecutionFilter(**wanted), page=page, size=size)


@pytest.fixture
def store(store_at: Path | str) -> Iterator[Store]:
    with Store(store_at) as opened:
        yield opened


def test_start_date_bounds_return_the_executions_started_between(store: Store) -> None:
    """start_after / start_before (the API's startDate, endDate, timeRange) bound the start."""
    early, middle, late = (_add(store, "ns", "f", m) for m in (0, 60, 120))
    after = T0 + timedelta(minutes=30)
    before = T0 + timedelta(minutes=90)

    assert _search(store, start_after=after).ids == [late, middle]
    assert _search(store, start_before=before).ids == [middle, early]
    found = _search(store, start_after=after, start_before=before)
    assert found.ids == [middle] and found.total == 1 and found.exact
    assert _search(store, start_after=after, namespace="ns", flow_id="f").ids == [late, middle]


def test_namespace_matches_itself_and_below_only(store: Store) -> None:
    """``a.b`` finds a.b and a.b.c, never a.bc, a.b-c or a (a range of the index, byte-wise)."""
    wanted = [
        _add(store, "a.b", "f", 1),
        _add(store, "a.b.c", "g", 2),
        _add(store, "a.b.c.d", "f", 3),
    ]
    for other in ("a.bc", "a.b-c", "a", "a.b_", "b.a.b"):
        _add(store, other, "f", 4)

    found = _search(store, namespace="a.b")

    assert found.ids == wanted[::-1] and found.total == 3
    assert _search(store, namespace="a.b.c").ids == wanted[:0:-1]
    assert _search(store, namespace="a.b", flow_id="f").ids == [wanted[2], wanted[0]]
    assert _search(store, namespace="nothing.here").ids == []


def test_branches_merge_newest_first_and_page(store: Store) -> None:
    """A namespace of several flows: the pages of the merged branches are those of one list."""
    ids = [_add(store, "team", f"f{n % 3}", n) for n in range(10)]
    newest_first = ids[::-1]

    pages = [_search(store, page=p, size=4, namespace="team").ids for p in (1, 2, 3)]

    assert pages == [newest_first[0:4], newest_first[4:8], newest_first[8:10]]
    failed = _add(store, "team", "f1", 20, State.FAILED)
    killed = _add(store, "team", "f2", 21, State.KILLED)
    assert _search(store, namespace="team", states=[State.FAILED]).ids == [failed]
    both = _search(store, namespace="team", states=[State.FAILED, State.KILLED])
    assert both.ids == [killed, failed] and both.total == 2
    assert _search(store, flow_id="f1", states=[State.FAILED, State.SUCCESS], size=3).ids == [
        failed,
        newest_first[2],
        newest_first[5],
    ]


def test_q_matches_an_id_start_or_a_flow_or_namespace_part(store: Store) -> None:
    by_id = _add(store, "zz", "other", 1, execution_id="QQxx1234")
    by_flow = _add(store, "ns", "daily_qq_load", 2)
    by_namespace = _add(store, "qq.team", "f", 3)
    _add(store, "ns", "nothing", 4)

    assert _search(store, q="QQx").ids == [by_id]
    assert _search(store, q="qq").ids == [by_namespace, by_flow]
    assert _search(store, q="QQxx1234", namespace="zz").ids == [by_id]
    assert _search(store, q="no-such-text").ids == []


def test_the_count_stops_past_the_cap(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """Counting stops COUNT_CAP rows past the page: the total then says "more than"."""
    monkeypatch.setattr(search, "COUNT_CAP", 3)
    for n in range(12):
        _add(store, "ns", "f", n, State.FAILED if n < 2 else State.SUCCESS)

    capped = _search(store, size=2)
    assert capped.total == 5 and not capped.exact and len(capped.ids) == 2
    deeper = _search(store, page=4, size=2)
    assert deeper.total == 11 and not deeper.exact
    exact = _search(store, states=[State.FAILED])
    assert exact.total == 2 and exact.exact


def test_resolve_id_by_prefix(store: Store) -> None:
    """The whole id, a unique start, an ambiguous start; ``%`` and ``_`` are plain characters."""
    for execution_id in ("ab_cd", "abXcd", "abXcdE", "ab%ef"):
        _add(store, "ns", "f", 0, execution_id=execution_id)

    assert store.resolve_id("abXcd") == "abXcd"  # a whole id, though another one extends it
    assert store.resolve_id("abXcdE") == "abXcdE"
    assert store.resolve_id("ab_") == "ab_cd"  # not a wildcard
    assert store.resolve_id("ab%") == "ab%ef"
    with pytest.raises(UsageError, match="ambiguous"):
        store.resolve_id("ab")
    with pytest.raises(UsageError, match="ambiguous"):
        store.resolve_id("abX")
    for missing in ("zz", "a_", "%", "ab\x00", "\U0010ffff"):
        with pytest.raises(NotFoundError):
            store.resolve_id(missing)


def test_last_executions_gives_each_flows_newest(store: Store) -> None:
    """One query: each stored flow's newest execution, by exact namespace and flow id."""
    for namespace, flow_id in (("a", "f"), ("a.b", "f"), ("a", "g"), ("a", "never")):
        save_flow(store, namespace, flow_id, f"id: {flow_id}\nnamespace: {namespace}\n")
    _add(store, "a", "f", 1)
    newest_a_f = _add(store, "a", "f", 5, State.FAILED)
    _add(store, "a", "f", 3)
    newest_a_b_f = _add(store, "a.b", "f", 2)
    newest_a_g = _add(store, "a", "g", 9)
    _add(store, "elsewhere", "f", 30)  # not a stored flow

    last = store.last_executions()

    assert {key: e.id for key, e in last.items()} == {
        ("a", "f"): newest_a_f,
        ("a.b", "f"): newest_a_b_f,
        ("a", "g"): newest_a_g,
    }
    assert last[("a", "f")].state == State.FAILED
    one = store.last_executions([("a.b", "f"), ("a", "never")])
    assert {key: e.id for key, e in one.items()} == {("a.b", "f"): newest_a_b_f}


# ----- the plans (SQLite): each search is served by an index, in the order it lists


def _plans(path: Path, wanted: ExecutionFilter) -> list[tuple[str, str]]:
    """Each statement one search runs, with its query plan."""
    statements: list[tuple[str, list[Any]]] = []
    with Store(path) as store:
        original = store.read

        def recording(sql: str, args: Any = ()) -> list[Any]:
            statements.append((sql, list(args)))
            return original(sql, args)

        store.read = recording  # type: ignore[method-assign]
        search_executions(store, wanted, page=1, size=25)
    conn = sqlite3.connect(path)
    try:
        return [
            (sql, "\n".join(row[3] for row in conn.execute("EXPLAIN QUERY PLAN " + sql, args)))
            for sql, args in statements
        ]
    finally:
        conn.close()


@pytest.fixture
def grown(tmp_path: Path) -> Path:
    """A SQLite store with some history, analyzed as the server analyzes it."""
    path = tmp_path / "executor.db"
    with Store(path) as store:
        for n in range(400):
            namespace = f"team{n % 4}" + (".sub" if n % 8 >= 4 else "")
            state = State.FAILED if n % 10 == 0 else State.SUCCESS
            _add(store, namespace, f"flow{n % 20}", n, state)
    Maintenance(LocalRecords(path)).run_once()
    return path


@pytest.mark.parametrize(
    ("wanted", "index"),
    [
        (ExecutionFilter(namespace="team1", flow_id="flow1"), "executions_by_flow"),
        (ExecutionFilter(namespace="team1"), "executions_by_flow"),
        (ExecutionFilter(states=[State.FAILED]), "executions_by_state"),
        (ExecutionFilter(flow_id="flow3"), "executions_by_flow_id"),
        (ExecutionFilter(q="flow1"), "executions_by_flow"),
        (ExecutionFilter(namespace="team1", states=[State.FAILED]), "executions_by_flow_state"),
        (ExecutionFilter(flow_id="flow3", states=[State.FAILED]), "executions_by_flow_state"),
    ],
    ids=["namespace+flow", "namespace", "state", "flowId", "q", "namespace+state", "flow+state"],
)
def test_searches_use_the_index_in_its_order(
    grown: Path, wanted: ExecutionFilter, index: str
) -> None:
    """EXPLAIN QUERY PLAN of each statement: an index, never a table scan, and the page's
    rows come in the index's order (no sort of the matches)."""
    plans = _plans(grown, wanted)

    assert plans, "the search ran no statement"
    for _, plan in plans:
        for line in plan.splitlines():
            assert not (line.startswith("SCAN executions") and "INDEX" not in line), plan
    page_sql, page_plan = next((sql, plan) for sql, plan in plans if "ORDER BY" in sql)
    assert f"USING INDEX {index}" in page_plan or f"USING COVERING INDEX {index}" in page_plan, (
        page_plan
    )
    # one branch: no sort at all; merged branches: only the merge sorts (each branch's rows
    # come in its index's order, at most a page of them), and the branch of ids that start
    # with q (a few rows of the id's index)
    sorts = page_plan.count("USE TEMP B-TREE FOR ORDER BY")
    by_id = "executions_1 (id>? AND id<?)" in page_plan
    assert sorts == int("merged" in page_sql) + int(by_id), page_plan


def test_resolve_id_reads_a_range_of_the_id_index(grown: Path) -> None:
    with Store(grown) as store:
        some = store.read("SELECT id FROM executions LIMIT 1")[0][0]
        assert store.resolve_id(some[:10]) == some
    conn = sqlite3.connect(grown)
    plan = conn.execute(
        "EXPLAIN QUERY PLAN SELECT id FROM executions WHERE id >= ? AND id < ? ORDER BY id LIMIT 6",
        ("a", "b"),
    ).fetchall()
    conn.close()
    assert "SEARCH executions USING COVERING INDEX sqlite_autoindex_executions_1" in plan[0][3]


def test_statistics_are_kept_and_refreshed(tmp_path: Path) -> None:
    """A new store is analyzed; the server's upkeep analyzes it again as it grows."""
    path = tmp_path / "executor.db"
    Store(path).close()

    def stat(index: str) -> str | None:
        conn = sqlite3.connect(path)
        try:
            row = conn.execute("SELECT stat FROM sqlite_stat1 WHERE idx = ?", (index,)).fetchone()
        finally:
            conn.close()
        return row[0] if row else None

    with Store(path) as store:
        assert store.read("SELECT count(*) FROM sqlite_master WHERE name = 'sqlite_stat1'")
        for n in range(30):
            _add(store, "ns", f"f{n % 3}", n)
    before = stat("executions_by_flow")
    upkeep = Maintenance(LocalRecords(path))
    upkeep.run_once()
    after = stat("executions_by_flow")
    assert after is not None and after != before and after.startswith("30 ")


def test_get_executions_reads_a_page_in_the_order_asked(store: Store) -> None:
    """A page's executions, whole (task runs, attempts), in the order of their ids."""
    first, second = _add(store, "ns", "f", 1), _add(store, "ns", "g", 2)

    found = store.get_executions([second, "missing", first])

    assert [s.execution.id for s in found] == [second, first]
    assert found[0].execution.flow_id == "g" and found[1].execution.state.current == State.SUCCESS
    assert store.get_executions([]) == []
