"""Flow-level concurrency in the queue: QUEUE waits for a place, CANCEL and FAIL end at once."""

from __future__ import annotations

from pathlib import Path

import pytest

from executor.model import State
from executor.server.queue import ExecutionQueue, Submission
from executor.settings import Settings
from executor.store.db import Store
from executor.store.flows import save_flow
from executor.store.queue import take_next, withdraw
from executor.store.records import execution_record


def limited(flow_id: str, behavior: str | None) -> str:
    concurrency = f"concurrency:\n  limit: 1\n  behavior: {behavior}\n" if behavior else ""
    return (
        f"id: {flow_id}\nnamespace: company.team\n{concurrency}"
        "tasks:\n  - id: say\n    type: io.kestra.plugin.core.log.Log\n    message: hi\n"
    )


@pytest.fixture
def queue(tmp_path: Path) -> ExecutionQueue:
    queue = ExecutionQueue(Settings(home=tmp_path), workers=1)
    with Store(queue.settings.db_path) as store:
        for flow_id, behavior in [
            ("queued", "QUEUE"),
            ("cancelled", "CANCEL"),
            ("failed", "FAIL"),
            ("free", None),
        ]:
            save_flow(store, "company.team", flow_id, limited(flow_id, behavior))
    return queue


def submit(queue: ExecutionQueue, flow_id: str) -> State:
    return queue.submit(Submission("company.team", flow_id)).state.current


def take(queue: ExecutionQueue) -> str | None:
    with Store(queue.settings.db_path) as store:
        work = take_next(store, queue.owner, queue._limit_of)
    return work.flow_id if work else None


def test_queue_behavior_keeps_the_extra_execution_queued_until_a_place_frees(
    queue: ExecutionQueue,
) -> None:
    """limit 1, QUEUE: the second waits while the first runs; younger work of others goes first."""
    first = queue.submit(Submission("company.team", "queued"))
    second = queue.submit(Submission("company.team", "queued"))
    submit(queue, "free")
    assert take(queue) == "queued"
    assert take(queue) == "free"  # skips the waiting one
    assert take(queue) is None
    with Store(queue.settings.db_path) as store:
        assert store.execution_state(second.id) == State.QUEUED
        store_execution = store.get_execution(first.id).execution
        store_execution.state.to(State.SUCCESS)
        with store.transaction() as conn:
            Store.upsert_execution(conn, execution_record(store_execution, queue.owner))
    assert take(queue) == "queued"


@pytest.mark.parametrize(("flow_id", "ended"), [("cancelled", "CANCELLED"), ("failed", "FAILED")])
def test_cancel_and_fail_end_the_extra_execution_at_once(
    queue: ExecutionQueue, flow_id: str, ended: str
) -> None:
    """limit 1, CANCEL or FAIL: a second execution while one is active ends so, never queued."""
    assert submit(queue, flow_id) == State.QUEUED
    extra = queue.submit(Submission("company.team", flow_id))
    assert extra.state.current.value == ended
    assert extra.reason == "the flow's concurrency limit (1) is reached (behavior " + (
        "CANCEL)" if ended == "CANCELLED" else "FAIL)"
    )
    with Store(queue.settings.db_path) as store:
        recorded = store.get_execution(extra.id).execution
        assert recorded.state.current.value == ended
        assert [s.value for s, _ in recorded.state.history] == ["CREATED", ended]
    assert take(queue) == flow_id
    assert take(queue) is None  # the refused one was never queued


def test_a_place_freed_by_an_ended_execution_admits_the_next(queue: ExecutionQueue) -> None:
    """Once the active execution ended, the next one is queued again."""
    first = queue.submit(Submission("company.team", "cancelled"))
    with Store(queue.settings.db_path) as store:
        assert withdraw(store, first.id, State.SUCCESS, "done")
    assert submit(queue, "cancelled") == State.QUEUED
