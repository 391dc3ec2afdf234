"""Dispatch, claims, attempts and heartbeats of workers on other hosts, on a real SQLite file;
and the records' JSON form that carries a worker's snapshots to the server."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from executor.errors import UsageError
from executor.host import Owner
from executor.model import (
    Execution,
    Level,
    LogBatch,
    LogLine,
    State,
    StateHistory,
    TaskRun,
    now,
)
from executor.store.db import Store
from executor.store.queue import QueuedWork, enqueue, waiting
from executor.store.records import execution_record, task_run_record
from executor.store.wire import decode, encode
from executor.store.workers import (
    WorkerInfo,
    attempts,
    claim,
    dispatch_next,
    heartbeat,
    holds,
    mark_lapsed,
    queues_of,
    unclaimed,
    withdraw_dispatched,
)

LAPSE = timedelta(seconds=30)


def _dispatched(store: Store, sent: list[tuple[str, str]]) -> str:
    execution = Execution("ns.a", "f", state=StateHistory(State.QUEUED, [(State.QUEUED, now())]))
    work = QueuedWork(execution.id, "ns.a", "f", 1, {"x": "1"}, {}, None, "2026-01-01")
    enqueue(store, execution, work, Owner.current())
    dispatch_next(store, lambda w: "gpu", lambda w, q: sent.append((w.execution_id, q)))
    return execution.id


def _beat(store: Store, name: str, running: list[str]) -> None:
    heartbeat(store, WorkerInfo(name, "h", "engine", ["default"], [], 1, running, "t"))


def test_a_broker_that_refuses_leaves_the_work_queued(store_at: Path | str) -> None:
    with Store(store_at) as store:
        execution = Execution(
            "ns.a", "f", state=StateHistory(State.QUEUED, [(State.QUEUED, now())])
        )
        work = QueuedWork(execution.id, "ns.a", "f", 1, {}, {}, None, "2026-01-01")
        enqueue(store, execution, work, Owner.current())

        def refuse(work: QueuedWork, queue: str) -> None:
            raise ConnectionError("broker down")

        with pytest.raises(ConnectionError):
            dispatch_next(store, lambda w: "default", refuse)
        assert waiting(store) == 1
        sent: list[tuple[str, str]] = []
        dispatch_next(store, lambda w: "default", lambda w, q: sent.append((w.execution_id, q)))
        assert sent == [(execution.id, "default")] and waiting(store) == 0


def test_claims_run_wait_then_restart_after_a_lost_worker(store_at: Path | str) -> None:
    sent: list[tuple[str, str]] = []
    with Store(store_at) as store:
        eid = _dispatched(store, sent)
        assert sent == [(eid, "gpu")]
        _beat(store, "w1", [])
        first = claim(store, eid, "w1", LAPSE)
        assert (first.action, first.attempt) == ("run", 1)
        assert first.work is not None and first.work.inputs == {"x": "1"}
        assert store.execution_state(eid) == State.CREATED
        assert holds(store, eid, "w1", 1) and not holds(store, eid, "w2", 1)
        # a redelivery while w1 heartbeats: wait
        _beat(store, "w2", [])
        assert claim(store, eid, "w2", LAPSE).action == "wait"
        # w1 falls silent: the lapse marks the run FAILED, then a redelivery restarts it
        assert mark_lapsed(store, timedelta(0)) == [eid]
        assert store.execution_state(eid) == State.FAILED
        _beat(store, "w2", [])
        second = claim(store, eid, "w2", LAPSE)
        assert (second.action, second.attempt) == ("run", 2)
        assert "attempt 1 ran on w1, which was lost" in second.note
        assert store.execution_state(eid) == State.CREATED
        assert not holds(store, eid, "w1", 1) and holds(store, eid, "w2", 2)
        runs = attempts(store, eid)
        assert [(r["attempt"], r["worker"], r["lost"] is not None) for r in runs] == [
            (1, "w1", True),
            (2, "w2", False),
        ]


def test_what_no_worker_claimed_is_known_to_send_again(store_at: Path | str) -> None:
    with Store(store_at) as store:
        first, second, third = (_dispatched(store, []) for _ in range(3))
        _beat(store, "w1", [])
        assert claim(store, first, "w1", LAPSE).action == "run"
        assert withdraw_dispatched(store, third, State.KILLED, "killed through the API")
        # claimed and ended ones are not sent again; the unclaimed one is, on its queue
        assert unclaimed(store) == [(second, "gpu")]
        assert queues_of(store, [first, "no-such-id"]) == [(first, "gpu")]


def test_an_ended_or_withdrawn_execution_is_dropped(store_at: Path | str) -> None:
    with Store(store_at) as store:
        eid = _dispatched(store, [])
        assert withdraw_dispatched(store, eid, State.KILLED, "killed through the API")
        assert store.execution_state(eid) == State.KILLED
        assert claim(store, eid, "w1", LAPSE).action == "drop"
        assert claim(store, "no-such-id", "w1", LAPSE).action == "drop"


def test_records_survive_their_json_form(store_at: Path | str) -> None:
    execution = Execution("ns.a", "f", {"x": 1})
    run = TaskRun("t", "io.kestra.plugin.core.log.Log")
    run.outputs = {"value": [1, "two"]}
    line = LogLine(datetime.now(UTC), execution.id, "t", run.id, 1, "stdout", Level.WARN, "é ok")
    writes = [
        execution_record(execution, Owner(0, "", "worker:w1")),
        task_run_record(execution.id, 0, run),
        line,
    ]
    decoded = decode(json.loads(json.dumps(encode(writes))))
    assert decoded == writes
    with Store(store_at) as store:
        store.write(decoded)
        assert store.get_execution(execution.id).execution.inputs == {"x": 1}
    with pytest.raises(UsageError, match="record 0: not a snapshot"):
        decode([{"kind": "nonsense"}])


def test_a_batch_of_lines_travels_as_its_lines(store_at: Path | str) -> None:
    """A LogBatch (lines a task printed together) reaches the server line for line, in order."""
    execution = Execution("ns.a", "f", {})
    batch = LogBatch(
        datetime.now(UTC), execution.id, "t", "run1", 1, "stdout", Level.INFO, ["one", "two"]
    )
    decoded = decode(
        json.loads(json.dumps(encode([execution_record(execution, Owner.current()), batch])))
    )
    assert [w.message for w in decoded if isinstance(w, LogLine)] == ["one", "two"]
    with Store(store_at) as store:
        store.write(decoded)
        assert [s.line.message for s in store.logs(execution.id)] == ["one", "two"]


def test_a_lost_workers_subflows_end_failed_with_its_run(store_at: Path | str) -> None:
    with Store(store_at) as store:
        eid = _dispatched(store, [])
        _beat(store, "w1", [])
        assert claim(store, eid, "w1", LAPSE).action == "run"
        owner = Owner.current()
        made: list[Execution] = []
        for parent in (eid, None):  # a subflow's execution, and an unrelated one
            execution = Execution("ns.a", "child")
            execution.state.to(State.RUNNING)
            execution.parent_id = parent
            made.append(execution)
        grandchild = Execution("ns.a", "grandchild")
        grandchild.state.to(State.PAUSED)
        grandchild.parent_id = made[0].id
        store.write([execution_record(e, owner) for e in (*made, grandchild)])
        assert mark_lapsed(store, timedelta(0)) == [eid]
        assert store.execution_state(made[0].id) == State.FAILED
        assert store.execution_state(grandchild.id) == State.FAILED
        assert store.execution_state(made[1].id) == State.RUNNING
