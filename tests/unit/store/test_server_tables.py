"""The server's tables: flow revisions and the durable queue, on a real SQLite file."""

from __future__ import annotations

from pathlib import Path

from executor.host import Owner
from executor.model import Execution, State, StateHistory, now
from executor.store.connection import SCHEMA_VERSION
from executor.store.db import Store
from executor.store.flows import delete_flow, get_flow, list_flows, save_flow
from executor.store.migrations import HEAD
from executor.store.queue import (
    QueuedWork,
    delete_execution,
    enqueue,
    take_next,
    waiting,
    withdraw,
)
from executor.store.search import ExecutionFilter, search_executions


def _queued(store: Store, n: int, owner: Owner, labels: dict[str, str] | None = None) -> str:
    execution = Execution(
        "ns.a", f"f-{n}", state=StateHistory(State.QUEUED, [(State.QUEUED, now())])
    )
    execution.labels = labels or {}
    work = QueuedWork(execution.id, "ns.a", f"f-{n}", 1, {"x": str(n)}, {}, None, "2026-01-01")
    enqueue(store, execution, work, owner)
    return execution.id


def test_flows_keep_revisions_and_deletes(store_at: Path | str) -> None:
    """A changed source is a new revision, an unchanged one is not; a delete hides the flow."""
    with Store(store_at) as store:
        assert save_flow(store, "ns", "f", "a").revision == 1
        assert save_flow(store, "ns", "f", "a").revision == 1
        assert save_flow(store, "ns", "f", "b").revision == 2
        assert get_flow(store, "ns", "f", 1).source == "a"  # type: ignore[union-attr]
        assert [f.id for f in list_flows(store, "ns")] == ["f"]
        assert delete_flow(store, "ns", "f")
        assert get_flow(store, "ns", "f") is None
        assert get_flow(store, "ns", "f", allow_deleted=True).deleted  # type: ignore[union-attr]
        assert not delete_flow(store, "ns", "f")
        assert list_flows(store) == []
        assert save_flow(store, "ns", "f", "b").revision == 4  # back to life, history kept


def test_queue_is_first_in_first_out_and_hands_over_ownership(store_at: Path | str) -> None:
    """Work is taken oldest first; its execution becomes CREATED and owned by the taker."""
    me = Owner.current()
    with Store(store_at) as store:
        first, second = _queued(store, 1, me), _queued(store, 2, me)
        assert store.execution_state(first) == State.QUEUED and waiting(store) == 2
        taken = take_next(store, me)
        assert taken is not None and taken.execution_id == first and taken.inputs == {"x": "1"}
        assert store.execution_state(first) == State.CREATED
        assert withdraw(store, second, State.KILLED, "no")
        assert store.execution_state(second) == State.KILLED
        assert not withdraw(store, first, State.KILLED, "taken already")
        assert take_next(store, me) is None


def test_queued_survives_recovery_of_a_dead_owner(store_at: Path | str) -> None:
    """Crash recovery marks a dead owner's taken work FAILED and leaves QUEUED work alone."""
    gone = Owner(999_999_999, "1", Owner.current().host)  # no such pid: provably gone
    with Store(store_at) as store:
        running, queued = _queued(store, 1, gone), _queued(store, 2, gone)
        assert take_next(store, gone) is not None  # the dead server had taken the first
        assert store.recover_dead() == [running]
        assert store.execution_state(running) == State.FAILED
        assert store.execution_state(queued) == State.QUEUED
        assert waiting(store) == 1


def test_search_filters_and_pages(store_at: Path | str) -> None:
    """Search counts every match and returns one page; labels and text filter."""
    me = Owner.current()
    with Store(store_at) as store:
        ids = [_queued(store, n, me, {"team": "a" if n % 2 else "b"}) for n in range(5)]
        page = search_executions(store, ExecutionFilter(labels={"team": "a"}), page=1, size=1)
        assert page.total == 2 and page.exact and len(page.ids) == 1
        everything = search_executions(store, ExecutionFilter(namespace="ns"), page=1, size=10)
        assert everything.total == 5
        # '-' is never in an id: the text can only match the flow id
        found = search_executions(store, ExecutionFilter(q="f-3"), page=1, size=10)
        assert found.ids == [ids[3]]
        assert delete_execution(store, ids[3]) and not delete_execution(store, ids[3])


def test_schema_has_the_server_and_kv_tables(store_at: Path | str) -> None:
    """The server's tables came with schema 4, the KV store's with 5."""
    with Store(store_at) as store:
        assert SCHEMA_VERSION == 5
        if isinstance(store_at, Path):
            assert store.read("PRAGMA user_version")[0][0] == 5
        for table in ("flows", "queue", "kv", "triggers", "workers", "dispatched"):
            assert store.read(f"SELECT count(*) FROM {table}") == [(0,)]
        assert store.read("SELECT version_num FROM alembic_version") == [(HEAD,)]
